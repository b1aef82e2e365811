//! PostgreSQL: `RETURNING`, row locks by primary key, write transactions retried on
//! serialization failures and deadlocks, and migrations under an advisory lock.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel::QueryResult;
use diesel_migrations::{embed_migrations, EmbeddedMigrations};

use super::apply_migrations;
use crate::message::{NewMessage, StoredMessage};
use crate::operations::MarkFilter;
use crate::retry::{is_nested, retrying_transaction, OutermostTransaction};
use crate::schema::direct_message_conversations as conv;
use crate::schema::direct_messages as dm;
use crate::schema::UtcTimestamp;
use crate::{Message, MessageId, Result, UserId};

/// The connection type the shared operations are mounted for.
type Conn = diesel::PgConnection;

// The shared operations, compiled for `Conn`: one text, mounted once per backend.
#[allow(clippy::duplicate_mod)]
#[path = "../operations/queries.rs"]
mod operations;

crate::connection::inbox_connection!(Conn);

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// The key of the session advisory lock `run_migrations` holds ("directmessages" in ASCII,
/// truncated), so that instances starting together migrate one after the other.
const MIGRATION_LOCK: i64 = 0x6469_7265_6374_6d73;

/// PostgreSQL's transactions need nothing beyond `BEGIN` and `COMMIT`.
impl OutermostTransaction for Conn {}

/// Statements are cached by Diesel as usual.
fn statement<Q>(query: Q) -> Q {
    query
}

/// Applies the migrations under a session advisory lock, so instances starting together
/// migrate one after the other. Inside the caller's transaction the lock is the
/// transaction's own, so it cannot outlive a failure there.
fn migrate(conn: &mut Conn) -> Result<()> {
    if is_nested(conn)? {
        diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
            .bind::<BigInt, _>(MIGRATION_LOCK)
            .execute(conn)?;
        return apply_migrations(conn, MIGRATIONS);
    }
    diesel::sql_query("SELECT pg_advisory_lock($1)")
        .bind::<BigInt, _>(MIGRATION_LOCK)
        .execute(conn)?;
    let applied = apply_migrations(conn, MIGRATIONS);
    let unlocked = diesel::sql_query("SELECT pg_advisory_unlock($1)")
        .bind::<BigInt, _>(MIGRATION_LOCK)
        .execute(conn);
    applied?;
    unlocked?;
    Ok(())
}

/// Runs `f` in a transaction retried on serialization failures and deadlocks (a savepoint
/// inside the caller's own).
fn write_transaction<T>(conn: &mut Conn, f: impl FnMut(&mut Conn) -> Result<T>) -> Result<T> {
    retrying_transaction(conn, f)
}

super::returning_hooks!();

/// The message as last committed: at READ COMMITTED every statement sees it.
fn find_current(conn: &mut Conn, id: MessageId) -> QueryResult<Option<StoredMessage>> {
    operations::find_stored(conn, id)
}

super::row_lock_hook!();
