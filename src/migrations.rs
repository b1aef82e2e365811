//! The embedded SQL migrations.

use crate::connection::InboxConnection;
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
    conn.operations().migrate()
}
