//! MySQL's guarded transaction: how a transaction of the inbox's begins, commits and
//! rolls back, so that one Galera aborted between two statements is rolled back and run
//! again, never half committed.

use diesel::result::DatabaseErrorKind;
use diesel::QueryResult;

use super::execution::{self, RunQueryDsl};
use super::Conn;
use crate::{Error, Result};

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
pub(super) const BEGIN: [&str; 2] = [
    "SET autocommit = 0",
    "SET TRANSACTION ISOLATION LEVEL READ COMMITTED",
];
/// The statement that opens the transaction, as Diesel records it.
pub(super) const GUARD: &str = "SAVEPOINT directmessages_guard";
/// What ends a failed one, and then gives the session back its autocommit.
pub(super) const ROLLBACK: [&str; 2] = ["ROLLBACK", "SET autocommit = 1"];

/// Sends one statement of the guarded transaction's control (no binds, no result) in the
/// fewest round trips the flavour allows: prepared where Diesel's blocking connection
/// would wrap a batch in switching multi-statement support on and off (three round trips
/// where a statement prepared, executed and closed costs two), as one query on the async
/// connection. Either way it is one statement, never a batch (see [`BEGIN`]).
pub(super) async fn control(conn: &mut Conn, sql: &'static str) -> QueryResult<()> {
    if execution::PREPARED_CONTROL {
        diesel::sql_query(sql).execute(conn).await.map(drop)
    } else {
        execution::batch_execute(conn, sql).await
    }
}

/// Takes the [`GUARD`] savepoint, which opens the transaction, and records it in the
/// connection's transaction status (as `begin_with` does, with the savepoint sent by
/// [`control`]).
pub(super) async fn open_guard(conn: &mut Conn) -> QueryResult<()> {
    if !execution::PREPARED_CONTROL {
        return execution::begin_with(conn, GUARD).await;
    }
    control(conn, GUARD).await?;
    match execution::status(conn) {
        diesel::connection::TransactionManagerStatus::Valid(status) => status
            .change_transaction_depth(diesel::connection::TransactionDepthChange::IncreaseDepth),
        diesel::connection::TransactionManagerStatus::InError => {
            Err(diesel::result::Error::BrokenTransactionManager)
        }
    }
}

/// The error to report for a failed body: when the transaction is no longer the one
/// [`GUARD`] opened, whatever went wrong (a row the transaction itself wrote "not found")
/// followed from a silent abort, and the body is run again.
pub(super) async fn explain_failure(conn: &mut Conn, error: Error) -> Error {
    if crate::retry::is_transient(&error) {
        return error;
    }
    match execution::batch_execute(conn, "ROLLBACK TO SAVEPOINT directmessages_guard").await {
        Ok(()) => error,
        Err(lost) => transaction_lost(&lost),
    }
}

/// The transient error of a transaction that a conflicting one aborted without telling.
pub(super) fn transaction_lost(cause: &diesel::result::Error) -> Error {
    Error::Database(diesel::result::Error::DatabaseError(
        DatabaseErrorKind::SerializationFailure,
        Box::new(format!(
            "the transaction was aborted by a conflicting one and rolled back ({cause}); \
             try restarting transaction"
        )),
    ))
}

/// Commits the inbox's transaction if it is still the one [`GUARD`] opened, by switching
/// autocommit back on, which commits it. That statement is a prepared one, so that a
/// deadlock or a Galera certification conflict reported at commit keeps its error code
/// (1213 on the blocking client; the async client's is recognized by its message) and is
/// retried.
pub(super) async fn commit_guarded(conn: &mut Conn) -> Result<()> {
    if let Err(lost) = control(conn, "RELEASE SAVEPOINT directmessages_guard").await {
        return Err(transaction_lost(&lost));
    }
    // Turning autocommit back on commits the transaction: one round trip for both.
    diesel::sql_query("SET autocommit = 1")
        .execute(conn)
        .await?;
    Ok(())
}
