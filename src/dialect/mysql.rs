//! MySQL and MariaDB: no `RETURNING`, so an insert reads its row back by
//! `LAST_INSERT_ID()` on the same connection and a mark-read locks what it will change
//! first; write transactions run at READ COMMITTED and are retried on deadlocks and
//! Galera conflicts; every statement is prepared afresh; migrations hold `GET_LOCK`.

use chrono::{DateTime, Utc};
use diesel::connection::{AnsiTransactionManager, SimpleConnection};
use diesel::mysql::Mysql;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::result::DatabaseErrorKind;
use diesel::sql_types::{Integer, Text};
use diesel::QueryResult;
use diesel_migrations::{embed_migrations, EmbeddedMigrations};

use super::apply_migrations;
use crate::message::{NewMessage, StoredMessage};
use crate::operations::MarkFilter;
use crate::operations::MARK_CHUNK;
use crate::retry::{end_transaction, retrying_transaction, OutermostTransaction};
use crate::schema::direct_message_conversations as conv;
use crate::schema::direct_messages as dm;
use crate::schema::UtcTimestamp;
use crate::{Error, Message, MessageId, Result, UserId};

/// The connection type the shared operations are mounted for.
type Conn = diesel::MysqlConnection;

// The shared operations, compiled for `Conn`: one text, mounted once per backend.
#[allow(clippy::duplicate_mod)]
#[path = "../operations/queries.rs"]
mod operations;

crate::connection::inbox_connection!(Conn);

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/mysql");

/// The name of the lock `run_migrations` holds, and how long it waits for it (seconds).
const MIGRATION_LOCK: &str = "directmessages.migrations";
const MIGRATION_LOCK_WAIT_SECONDS: i32 = 300;

diesel::define_sql_function! {
    /// The id the last INSERT on this connection generated.
    fn last_insert_id() -> diesel::sql_types::Unsigned<diesel::sql_types::BigInt>;
}

diesel::define_sql_function! {
    /// Takes a named lock of the server for this session: 1, or 0 after `timeout` seconds.
    fn get_lock(name: Text, timeout: Integer) -> Nullable<Integer>;
}

diesel::define_sql_function! {
    /// Releases a lock taken with `get_lock`.
    fn release_lock(name: Text) -> Nullable<Integer>;
}

/// What begins the inbox's own transactions on MySQL, one statement at a time (the C
/// client waits forever for the rest of a multi-statement batch that a `KILL QUERY` cut
/// off halfway).
///
/// - `autocommit = 0` and a guard savepoint: on MariaDB Galera, a transaction aborted by a
///   conflicting write from another node can be rolled back without the client ever being
///   told (the abort lands between two statements of a prepared-statement exchange), and
///   every later statement would then commit on its own: half a send, a counter moved for
///   a message left unread. With autocommit off, those statements pile up in a new
///   transaction instead, and the guard savepoint, which only the original transaction
///   has, tells the two apart before COMMIT. (With autocommit off, the savepoint also
///   opens the transaction: no `BEGIN` is needed.)
/// - READ COMMITTED: every statement sees what committed before it (as on PostgreSQL),
///   and InnoDB takes no gap locks, which at REPEATABLE READ make unrelated new
///   conversations wait on and deadlock with each other.
const BEGIN: [&str; 2] = [
    "SET autocommit = 0",
    "SET TRANSACTION ISOLATION LEVEL READ COMMITTED",
];
/// The statement that opens the transaction, as Diesel records it.
const GUARD: &str = "SAVEPOINT directmessages_guard";
/// What ends a failed one, and then gives the session back its autocommit.
const ROLLBACK: [&str; 2] = ["ROLLBACK", "SET autocommit = 1"];

impl OutermostTransaction for Conn {
    fn outermost<T>(&mut self, f: &mut impl FnMut(&mut Self) -> Result<T>) -> Result<T> {
        let result = BEGIN
            .iter()
            .try_for_each(|sql| self.batch_execute(sql))
            .and_then(|()| AnsiTransactionManager::begin_transaction_sql(self, GUARD))
            .map_err(Error::from)
            .and_then(|()| f(self).map_err(|e| explain_failure(self, e)))
            .and_then(|value| {
                commit_guarded(self)?;
                Ok(value)
            });
        // After a commit, the session only needs its autocommit back; after a failure, or
        // if that was cut off, the transaction is rolled back first.
        let committed = result.is_ok();
        end_transaction(self, |conn, attempt| {
            if committed && attempt == 0 {
                conn.batch_execute("SET autocommit = 1").is_ok()
            } else {
                ROLLBACK.iter().all(|sql| conn.batch_execute(sql).is_ok())
            }
        });
        result
    }
}

/// The error to report for a failed body: when the transaction is no longer the one
/// [`GUARD`] opened, whatever went wrong (a row the transaction itself wrote "not found")
/// followed from a silent abort, and the body is run again.
fn explain_failure(conn: &mut Conn, error: Error) -> Error {
    if crate::retry::is_transient(&error) {
        return error;
    }
    match conn.batch_execute("ROLLBACK TO SAVEPOINT directmessages_guard") {
        Ok(()) => error,
        Err(lost) => transaction_lost(&lost),
    }
}

/// The transient error of a transaction that a conflicting one aborted without telling.
fn transaction_lost(cause: &diesel::result::Error) -> Error {
    Error::Database(diesel::result::Error::DatabaseError(
        DatabaseErrorKind::SerializationFailure,
        Box::new(format!(
            "the transaction was aborted by a conflicting one and rolled back ({cause}); \
             try restarting transaction"
        )),
    ))
}

/// Commits the inbox's transaction if it is still the one [`GUARD`] opened. The COMMIT is
/// a prepared statement, so that a deadlock or a Galera certification conflict reported
/// at commit keeps its error code (1213) and is retried.
fn commit_guarded(conn: &mut Conn) -> Result<()> {
    if let Err(lost) = conn.batch_execute("RELEASE SAVEPOINT directmessages_guard") {
        return Err(transaction_lost(&lost));
    }
    diesel::sql_query("COMMIT").execute(conn)?;
    Ok(())
}

/// Applies the migrations holding `GET_LOCK`, so instances starting together migrate one
/// after the other (DDL commits at once on MySQL, so no transaction could).
fn migrate(conn: &mut Conn) -> Result<()> {
    let locked: Option<i32> = statement(diesel::select(get_lock(
        MIGRATION_LOCK,
        MIGRATION_LOCK_WAIT_SECONDS,
    )))
    .get_result(conn)?;
    if locked != Some(1) {
        return Err(Error::Migration(format!(
            "another connection held the migration lock for {MIGRATION_LOCK_WAIT_SECONDS} s"
        )));
    }
    let applied = apply_migrations(conn, MIGRATIONS);
    let released =
        statement(diesel::select(release_lock(MIGRATION_LOCK))).get_result::<Option<i32>>(conn);
    applied?;
    released?;
    Ok(())
}

/// Runs `f` in a guarded transaction retried on deadlocks and Galera conflicts (a
/// savepoint inside the caller's own).
fn write_transaction<T>(conn: &mut Conn, f: impl FnMut(&mut Conn) -> Result<T>) -> Result<T> {
    retrying_transaction(conn, f)
}

/// Inserts a message and reads its row back by `LAST_INSERT_ID()`. Called inside the write
/// transaction of `send`, so the row read back is ours and never "the newest row", which
/// another writer may own.
fn insert_message(conn: &mut Conn, new: &NewMessage<'_>) -> QueryResult<Message> {
    statement(diesel::insert_into(dm::table).values(new)).execute(conn)?;
    let id: u64 = statement(diesel::select(last_insert_id())).get_result(conn)?;
    let id = MessageId::try_from(id)
        .map_err(|e| diesel::result::Error::DeserializationError(Box::new(e)))?;
    statement(dm::table.find(id).select(Message::as_select()).limit(1)).get_result(conn)
}

/// Marks read the messages `filter` selects and returns exactly the ones it changed: the
/// rows are locked first, so the UPDATE changes exactly the ones read; ids are bound in
/// chunks, however many messages a flooded user has.
fn mark_read_returning(
    conn: &mut Conn,
    filter: MarkFilter<Mysql>,
    at: DateTime<Utc>,
) -> QueryResult<Vec<Message>> {
    let ids: Vec<MessageId> = statement(
        dm::table
            .filter(filter)
            .select(dm::id)
            .order(dm::id.asc())
            .for_update(),
    )
    .load(conn)?;
    let mut marked = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(MARK_CHUNK) {
        statement(
            diesel::update(dm::table.filter(dm::id.eq_any(chunk)))
                .set(dm::read_at.eq(UtcTimestamp(at))),
        )
        .execute(conn)?;
        marked.extend(
            statement(
                dm::table
                    .filter(dm::id.eq_any(chunk))
                    .select(Message::as_select()),
            )
            .load::<Message>(conn)?,
        );
    }
    Ok(marked)
}

/// The message as last committed: a locking read sees it even inside a caller's
/// REPEATABLE READ transaction, which reads from the snapshot of its first read.
fn find_current(conn: &mut Conn, id: MessageId) -> QueryResult<Option<StoredMessage>> {
    statement(
        dm::table
            .find(id)
            .select(StoredMessage::as_select())
            .for_update(),
    )
    .get_result(conn)
    .optional()
}

super::row_lock_hook!();

/// The inbox's statements on MySQL: prepared afresh each time, never taken from Diesel's
/// statement cache.
fn statement<Q>(query: Q) -> Fresh<Q> {
    Fresh(query)
}

/// A statement Diesel must not keep in its prepared-statement cache.
///
/// When a statement is interrupted (`max_statement_time`, `KILL QUERY`, a deadlock
/// detected after the server began its result set), the MySQL/MariaDB C client leaves that
/// prepared statement in a state where its next execution waits for a reply that never
/// comes: a cached statement would hang the connection for good. A statement prepared
/// afresh and closed after use is unaffected.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fresh<Q>(Q);

impl<Q: Query> Query for Fresh<Q> {
    type SqlType = Q::SqlType;
}

impl<Q> QueryId for Fresh<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: QueryFragment<Mysql>> QueryFragment<Mysql> for Fresh<Q> {
    fn walk_ast<'b>(&'b self, mut pass: AstPass<'_, 'b, Mysql>) -> QueryResult<()> {
        pass.unsafe_to_cache_prepared();
        self.0.walk_ast(pass)
    }
}

impl<Q, Conn> RunQueryDsl<Conn> for Fresh<Q> {}
