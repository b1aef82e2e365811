//! PostgreSQL: `RETURNING`, row locks by primary key, write transactions retried on
//! serialization failures and deadlocks, and migrations under an advisory lock.

use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel::sql_types::BigInt;
use diesel_migrations::{embed_migrations, EmbeddedMigrations};

use super::{apply_migrations, retrying_transaction, InboxConnection};
use crate::queries::prelude::*;
use crate::retry::OutermostTransaction;

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// The key of the session advisory lock `run_migrations` holds ("directmessages" in ASCII,
/// truncated), so that instances starting together migrate one after the other.
const MIGRATION_LOCK: i64 = 0x6469_7265_6374_6d73;

/// PostgreSQL's transactions need nothing beyond `BEGIN` and `COMMIT`.
impl OutermostTransaction for PgConnection {}

/// Statements are cached by Diesel as usual.
fn statement<Q>(query: Q) -> Q {
    query
}

super::own_store!(PgConnection);

impl Store for PgConnection {
    // Inside the caller's transaction the lock is the transaction's own, so it cannot
    // outlive a failure there.
    fn migrate(&mut self) -> Result<()> {
        if crate::retry::is_nested(self)? {
            diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
                .bind::<BigInt, _>(MIGRATION_LOCK)
                .execute(self)?;
            return apply_migrations(self, MIGRATIONS);
        }
        diesel::sql_query("SELECT pg_advisory_lock($1)")
            .bind::<BigInt, _>(MIGRATION_LOCK)
            .execute(self)?;
        let applied = apply_migrations(self, MIGRATIONS);
        let unlocked = diesel::sql_query("SELECT pg_advisory_unlock($1)")
            .bind::<BigInt, _>(MIGRATION_LOCK)
            .execute(self);
        applied?;
        unlocked?;
        Ok(())
    }

    fn write_transaction<T>(&mut self, f: impl FnMut(&mut Self) -> Result<T>) -> Result<T> {
        retrying_transaction(self, f)
    }

    super::returning_hooks!();

    // READ COMMITTED: every statement sees what was committed before it.
    fn find_current(&mut self, id: MessageId) -> QueryResult<Option<StoredMessage>> {
        self.find_stored(id)
    }

    fn lock_conversation(&mut self, lo: UserId, hi: UserId) -> QueryResult<bool> {
        conv::table
            .find((lo, hi))
            .select(conv::owner_id)
            .for_update()
            .get_result::<UserId>(self)
            .optional()
            .map(|row| row.is_some())
    }

    crate::queries::shared_queries!(PgConnection);
}
