//! The async flavour: the shared `async` text on diesel-async's connections.

use std::time::Duration;

use diesel::connection::TransactionManagerStatus;
use diesel::QueryResult;
use diesel_async::{AnsiTransactionManager, AsyncConnection, TransactionManager};

pub(crate) use diesel_async::RunQueryDsl;

/// The connections of this flavour whose transactions the operations drive.
pub(crate) trait Conn: AsyncConnection<TransactionManager = AnsiTransactionManager> {}

impl<C: AsyncConnection<TransactionManager = AnsiTransactionManager>> Conn for C {}

/// Opens a transaction, or a savepoint inside one.
pub(crate) async fn begin<C: Conn>(conn: &mut C) -> QueryResult<()> {
    AnsiTransactionManager::begin_transaction(conn).await
}

/// Opens the outermost transaction with `sql`.
pub(crate) async fn begin_with<C: Conn>(conn: &mut C, sql: &str) -> QueryResult<()> {
    AnsiTransactionManager::begin_transaction_sql(conn, sql).await
}

/// Commits the innermost transaction or savepoint.
pub(crate) async fn commit<C: Conn>(conn: &mut C) -> QueryResult<()> {
    AnsiTransactionManager::commit_transaction(conn).await
}

/// Rolls back the innermost transaction or savepoint.
pub(crate) async fn rollback<C: Conn>(conn: &mut C) -> QueryResult<()> {
    AnsiTransactionManager::rollback_transaction(conn).await
}

/// diesel-async's record of the connection's transactions.
pub(crate) fn status<C: Conn>(conn: &mut C) -> &mut TransactionManagerStatus {
    AnsiTransactionManager::transaction_manager_status_mut(conn)
}

/// Runs SQL without binds or results.
pub(crate) async fn batch_execute<C: Conn>(conn: &mut C, sql: &str) -> QueryResult<()> {
    diesel_async::SimpleAsyncConnection::batch_execute(conn, sql).await
}

/// Whether MySQL's transaction control is cheaper prepared than sent as a batch: no here,
/// where a batch is one query, one round trip.
#[cfg_attr(not(feature = "mysql"), allow(dead_code))]
pub(crate) const PREPARED_CONTROL: bool = false;

/// Whether a caller can abandon an operation halfway: yes, by dropping its future.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))] // read by PostgreSQL's send
pub(crate) const CANCELLABLE: bool = true;

/// Diesel's migration harness on `conn`: none on this flavour (see `crate::migrations`).
pub(crate) fn harness<C>(_: &mut C) -> Option<&mut dyn crate::migrations::Harness> {
    None
}

/// Whether the running operation must keep each statement inside a transaction (see
/// `execution::pin`).
pub(crate) fn pinned() -> bool {
    super::PINNED.try_with(|_| ()).is_ok()
}

/// Turns off the connection's prepared-statement cache (see `pinned`).
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) fn uncached<C: AsyncConnection>(conn: &mut C) {
    conn.set_prepared_statement_cache_size(diesel::connection::CacheSize::Disabled);
}

/// Waits without holding the thread (tokio's timer).
pub(crate) async fn sleep(duration: Duration) {
    tokio::time::sleep(duration).await;
}

/// PostgreSQL's async connection, for the dialect mounted below.
#[cfg(feature = "postgres")]
type PgConn = diesel_async::AsyncPgConnection;
#[cfg(feature = "postgres")]
crate::connection::async_inbox_connection!(PgConn);
#[cfg(feature = "postgres")]
#[path = "../dialect/postgres.rs"]
mod postgres;

/// MySQL's async connection, for the dialect mounted below.
#[cfg(feature = "mysql")]
type MysqlConn = diesel_async::AsyncMysqlConnection;
#[cfg(feature = "mysql")]
crate::connection::async_inbox_connection!(MysqlConn);
#[cfg(feature = "mysql")]
#[path = "../dialect/mysql/mod.rs"]
mod mysql;
