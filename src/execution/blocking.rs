//! The blocking flavour: the shared `async` text on Diesel's own connections.
//!
//! Every future this flavour hands out has done its work when it is created, so the
//! operation built from them never waits: [`run`] polls it once, on the caller's thread,
//! and fails loudly if it is not done.

use std::future::{ready, Future, Ready};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, TransactionManager, TransactionManagerStatus};
use diesel::query_dsl::methods::ExecuteDsl;
use diesel::query_dsl::LoadQuery;
use diesel::{Connection, QueryResult};

/// Runs an operation of the blocking flavour to its end on this thread.
///
/// The rule this flavour rests on: shared operations await nothing but the connection
/// (statements, transaction control) and `sleep`, whose futures here are all ready when
/// created, so the first poll completes the operation. A future that is not ready (a
/// timer, a channel, a lock of tokio's) would never be woken here: rather than spin, the
/// call panics at once, naming the rule, so a break of it shows in the first test that
/// runs the operation.
pub(crate) fn run<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!(
            "a blocking inbox operation awaited a future that was not ready: shared \
             operations may await only the connection and `execution::sleep`"
        ),
    }
}

/// Diesel's `RunQueryDsl`, with each result handed out as a ready future.
pub(crate) trait RunQueryDsl<Conn>: diesel::RunQueryDsl<Conn> + Sized {
    /// Runs the statement; the number of rows it changed.
    fn execute(self, conn: &mut Conn) -> Ready<QueryResult<usize>>
    where
        Conn: Connection,
        Self: ExecuteDsl<Conn>,
    {
        ready(diesel::RunQueryDsl::execute(self, conn))
    }

    /// Runs the query; every row.
    fn load<'query, U>(self, conn: &mut Conn) -> Ready<QueryResult<Vec<U>>>
    where
        Self: LoadQuery<'query, Conn, U>,
    {
        ready(diesel::RunQueryDsl::load(self, conn))
    }

    /// Runs the query; its first row, `NotFound` without one.
    fn get_result<'query, U>(self, conn: &mut Conn) -> Ready<QueryResult<U>>
    where
        Self: LoadQuery<'query, Conn, U>,
    {
        ready(diesel::RunQueryDsl::get_result(self, conn))
    }
}

impl<T: diesel::RunQueryDsl<Conn>, Conn> RunQueryDsl<Conn> for T {}

/// The connections of this flavour whose transactions the operations drive.
pub(crate) trait Conn: Connection<TransactionManager = AnsiTransactionManager> {}

impl<C: Connection<TransactionManager = AnsiTransactionManager>> Conn for C {}

/// Opens a transaction, or a savepoint inside one.
pub(crate) fn begin<C: Conn>(conn: &mut C) -> Ready<QueryResult<()>> {
    ready(AnsiTransactionManager::begin_transaction(conn))
}

/// Opens the outermost transaction with `sql` (e.g. `BEGIN IMMEDIATE`).
pub(crate) fn begin_with<C: Conn>(conn: &mut C, sql: &str) -> Ready<QueryResult<()>> {
    ready(AnsiTransactionManager::begin_transaction_sql(conn, sql))
}

/// Commits the innermost transaction or savepoint.
pub(crate) fn commit<C: Conn>(conn: &mut C) -> Ready<QueryResult<()>> {
    ready(AnsiTransactionManager::commit_transaction(conn))
}

/// Rolls back the innermost transaction or savepoint.
pub(crate) fn rollback<C: Conn>(conn: &mut C) -> Ready<QueryResult<()>> {
    ready(AnsiTransactionManager::rollback_transaction(conn))
}

/// Diesel's record of the connection's transactions.
pub(crate) fn status<C: Conn>(conn: &mut C) -> &mut TransactionManagerStatus {
    AnsiTransactionManager::transaction_manager_status_mut(conn)
}

/// Runs SQL without binds or results.
pub(crate) fn batch_execute<C: Conn>(conn: &mut C, sql: &str) -> Ready<QueryResult<()>> {
    ready(conn.batch_execute(sql))
}

/// Whether MySQL's transaction control is cheaper prepared than sent as a batch: yes here,
/// where `batch_execute` switches the connection's multi-statement support on and off
/// around the batch, three round trips in all.
#[cfg_attr(not(feature = "mysql"), allow(dead_code))]
pub(crate) const PREPARED_CONTROL: bool = true;

/// Whether a caller can abandon an operation halfway (by dropping its future): not on
/// this flavour, whose calls run to the end on the caller's thread.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))] // read by PostgreSQL's send
pub(crate) const CANCELLABLE: bool = false;

/// Diesel's migration harness on `conn`: every connection of this flavour has one.
pub(crate) fn harness<C: crate::migrations::Harness>(
    conn: &mut C,
) -> Option<&mut dyn crate::migrations::Harness> {
    Some(conn)
}

/// Whether the running operation must keep each statement inside a transaction: never on
/// this flavour, whose statements Diesel sends unnamed, in one exchange, when the
/// connection's statement cache is off (see [`uncached`]).
pub(crate) fn pinned() -> bool {
    false
}

/// Turns off the connection's prepared-statement cache: each statement then goes as one
/// unnamed exchange, which a pooler in transaction mode keeps on one server connection.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) fn uncached<C: Connection>(conn: &mut C) {
    conn.set_prepared_statement_cache_size(diesel::connection::CacheSize::Disabled);
}

/// Waits on this thread.
pub(crate) fn sleep(duration: Duration) -> Ready<()> {
    std::thread::sleep(duration);
    ready(())
}

/// SQLite's connection, for the dialect mounted below.
#[cfg(feature = "sqlite")]
type SqliteConn = diesel::SqliteConnection;
#[cfg(feature = "sqlite")]
crate::connection::inbox_connection!(SqliteConn);
#[cfg(feature = "sqlite")]
#[path = "../dialect/sqlite.rs"]
mod sqlite;

/// PostgreSQL's connection, for the dialect mounted below.
#[cfg(feature = "postgres")]
type PgConn = diesel::PgConnection;
#[cfg(feature = "postgres")]
crate::connection::inbox_connection!(PgConn);
#[cfg(feature = "postgres")]
#[path = "../dialect/postgres.rs"]
mod postgres;

/// MySQL's connection, for the dialect mounted below.
#[cfg(feature = "mysql")]
type MysqlConn = diesel::MysqlConnection;
#[cfg(feature = "mysql")]
crate::connection::inbox_connection!(MysqlConn);
#[cfg(feature = "mysql")]
#[path = "../dialect/mysql/mod.rs"]
mod mysql;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operation_of_ready_futures_completes_in_one_poll() {
        let value = run(async {
            sleep(Duration::from_millis(1)).await;
            ready(41).await + 1
        });
        assert_eq!(value, 42);
    }

    #[test]
    #[should_panic(expected = "may await only the connection")]
    fn an_operation_that_awaits_a_future_not_ready_panics_naming_the_rule() {
        /// Pending on its first poll, as a timer or a channel would be.
        struct NotYet(bool);
        impl Future for NotYet {
            type Output = ();
            fn poll(mut self: std::pin::Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
                if std::mem::replace(&mut self.0, true) {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            }
        }
        run(async {
            ready(()).await; // a statement, say
            NotYet(false).await
        });
    }
}
