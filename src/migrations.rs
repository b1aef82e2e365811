//! The crate's SQL migrations, one folder per backend (`migrations/{sqlite,postgres,mysql}`):
//! embedded for Diesel's `MigrationHarness`, and applied under a start-up lock by
//! [`run_migrations`] and `run_migrations_async`.
//!
//! A host that runs migrations with its own harness can run, list and revert ours the
//! same way:
//!
//! ```
//! # #[cfg(feature = "sqlite")]
//! # fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! use diesel::{Connection, SqliteConnection};
//! use diesel_migrations::MigrationHarness;
//!
//! let mut conn = SqliteConnection::establish(":memory:")?;
//! assert_eq!(conn.pending_migrations(directmessages::migrations::SQLITE)?.len(), 4);
//! conn.run_pending_migrations(directmessages::migrations::SQLITE)?;
//! conn.revert_all_migrations(directmessages::migrations::SQLITE)?;
//! # Ok(()) }
//! # #[cfg(not(feature = "sqlite"))] fn main() {}
//! ```
//!
//! Which runner `run_migrations_async` uses: on SQLite's async connection, which runs each
//! operation on a blocking thread with the plain `SqliteConnection`, Diesel's harness, as
//! `run_migrations` does; on diesel-async's PostgreSQL and MySQL connections, which no
//! harness takes by reference (diesel-async's `AsyncMigrationHarness` takes the
//! connection by value and blocks a runtime thread, which a current-thread runtime does
//! not allow), the crate's own runner, which applies the same `up.sql` files and records
//! them in the same table as the harness does.

#[cfg(feature = "diesel-async")]
use crate::connection::AsyncInboxConnection;
use crate::connection::InboxConnection;
use crate::execution::blocking::run;
use crate::operations::Operations;
use crate::Result;

#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
use diesel_migrations::{embed_migrations, EmbeddedMigrations};

/// The SQLite migrations, for a host's own `MigrationHarness`.
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub const SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// The PostgreSQL migrations, for a host's own `MigrationHarness`.
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub const POSTGRES: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// The MySQL/MariaDB migrations, for a host's own `MigrationHarness`.
#[cfg(feature = "mysql")]
#[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
pub const MYSQL: EmbeddedMigrations = embed_migrations!("migrations/mysql");

/// Diesel's migrations table, for the async runner; not part of the API.
mod record {
    #![allow(unreachable_pub)]
    diesel::table! {
        /// Diesel's record of applied migrations, as the async runner reads and writes it.
        __diesel_schema_migrations (version) {
            /// The migration's version: its directory name up to the first `_`.
            version -> VarChar,
        }
    }
}
pub(crate) use record::__diesel_schema_migrations;

/// The table as Diesel's harness creates it (whose `pending_migrations` then finds ours
/// applied: `tests/async.rs`).
pub(crate) const CREATE_MIGRATIONS_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS __diesel_schema_migrations (\
     version VARCHAR(50) PRIMARY KEY NOT NULL, \
     run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)";

// The same folders as lists of (version, `up.sql`), for the async runner.
include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

/// A connection Diesel's harness runs migrations on (the blocking flavour's).
pub(crate) trait Harness {
    /// Runs the migrations of `source` not applied yet.
    fn run_pending(&mut self, source: EmbeddedMigrations) -> Result<()>;
}

impl<C> Harness for C
where
    C: diesel::Connection + diesel_migrations::MigrationHarness<<C as diesel::Connection>::Backend>,
{
    fn run_pending(&mut self, source: EmbeddedMigrations) -> Result<()> {
        self.run_pending_migrations(source)
            .map(drop)
            .map_err(|e| crate::Error::Migration(e.to_string()))
    }
}

/// Applies the crate's pending migrations for `conn`'s backend; safe to call on every
/// start-up.
///
/// Safe when many app instances call it at the same moment: they apply the migrations one
/// after the other, under a PostgreSQL advisory lock, MySQL's `GET_LOCK`, or on SQLite an
/// exclusive transaction that waits for other writers up to a minute whatever the
/// connection's busy timeout.
///
/// They are recorded in Diesel's `__diesel_schema_migrations` table beside the host
/// app's own, with versions that begin with zeros (`00000000000101_…`) so they sort
/// before any date-stamped version of the host.
///
/// ```
/// # #[cfg(feature = "sqlite")]
/// # fn main() -> directmessages::Result<()> {
/// use diesel::{Connection, SqliteConnection};
/// let mut conn = SqliteConnection::establish(":memory:").expect("in-memory database");
/// directmessages::run_migrations(&mut conn)?;
/// directmessages::run_migrations(&mut conn)?; // nothing left to do
/// # Ok(()) }
/// # #[cfg(not(feature = "sqlite"))] fn main() {}
/// ```
pub fn run_migrations<C: InboxConnection>(conn: &mut C) -> Result<()> {
    run(conn.operations().migrate())
}

/// Applies the crate's pending migrations on an async connection: the same migrations as
/// [`run_migrations`], recorded in the same table, with the same locks, so instances may
/// call either at the same moment.
///
/// ```
/// # #[cfg(feature = "sqlite")]
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> directmessages::Result<()> {
/// use diesel::SqliteConnection;
/// use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
/// use diesel_async::AsyncConnection;
///
/// let mut conn = SyncConnectionWrapper::<SqliteConnection>::establish(":memory:")
///     .await
///     .expect("in-memory database");
/// directmessages::run_migrations_async(&mut conn).await?;
/// # Ok(()) }
/// # #[cfg(not(feature = "sqlite"))] fn main() {}
/// ```
#[cfg(feature = "diesel-async")]
#[cfg_attr(docsrs, doc(cfg(feature = "diesel-async")))]
pub async fn run_migrations_async<C: AsyncInboxConnection>(conn: &mut C) -> Result<()> {
    conn.operations().migrate().await
}
