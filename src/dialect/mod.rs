//! The only place that knows SQLite from PostgreSQL from MySQL: one file per backend that
//! implements the contract of the shared text (`Dialect` in `src/queries/dialect.rs`):
//! how a statement is prepared, how a transaction of the inbox's begins, ends and is run
//! again, how writes return their rows (`Writes`: `returning.rs` for SQLite and
//! PostgreSQL, MySQL's own), how a conversation is locked (`row_lock.rs` for PostgreSQL and
//! MySQL), the search index's statements, and how migrations are serialized.
//!
//! Each execution flavour (`src/execution`) mounts each dialect file with `#[path]`,
//! naming its connection type (`PgConn`, …); the dialect file in turn mounts the shared
//! text (`src/queries/`) next to its `Hooks`. What does not depend on the connection type
//! is compiled once, here: MySQL's statement forms (`mysql_statements.rs`), PostgreSQL's
//! one-statement send (`postgres_send.rs`), SQLite's pool settings (`sqlite_pool.rs`),
//! async PostgreSQL connections for a pooler in transaction mode (`postgres_pooler.rs`).
//! SQLite's async connection runs the blocking operations on a blocking thread
//! (`sqlite_async.rs`).

#[cfg(feature = "mysql")]
pub(crate) mod mysql_statements;
#[cfg(all(feature = "postgres", feature = "diesel-async"))]
mod postgres_pooler;
#[cfg(feature = "postgres")]
pub(crate) mod postgres_send;
#[cfg(all(feature = "sqlite", feature = "diesel-async"))]
mod sqlite_async;
#[cfg(all(feature = "sqlite", any(feature = "r2d2", feature = "diesel-async")))]
mod sqlite_pool;

#[cfg(all(feature = "postgres", feature = "diesel-async"))]
pub use postgres_pooler::TransactionPooler;
#[cfg(all(feature = "sqlite", any(feature = "r2d2", feature = "diesel-async")))]
pub use sqlite_pool::SqliteCustomizer;

// SQLite would compile a statement again for each value bound to a bare `LIMIT ?`, or
// (with statistics) compared with an indexed column (see `Limited` and `Key`); the other
// backends take the values as they are.
#[cfg(feature = "sqlite")]
impl crate::operations::BindSyntax for diesel::sqlite::Sqlite {
    const LIMIT_AFTER: &'static str = " + 0";
    const KEY_AFTER: &'static str = " + 0";
}
#[cfg(feature = "postgres")]
impl crate::operations::BindSyntax for diesel::pg::Pg {}
#[cfg(feature = "mysql")]
impl crate::operations::BindSyntax for diesel::mysql::Mysql {}
