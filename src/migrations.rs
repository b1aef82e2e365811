//! The embedded SQL migrations.

#[cfg(feature = "diesel-async")]
use crate::connection::AsyncInboxConnection;
use crate::connection::InboxConnection;
use crate::execution::blocking::run;
use crate::operations::Operations;
use crate::Result;

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
