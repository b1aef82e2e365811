//! The only place that knows SQLite from PostgreSQL from MySQL: one module per backend
//! with the few hooks that differ (how a statement is prepared, how a write transaction
//! begins and ends, how an insert and a guarded mark-read return their rows, how a
//! conversation is locked, how migrations are serialized). Each one mounts the shared
//! operations (`src/operations/queries.rs`) for its connection type.

#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

#[cfg(all(feature = "sqlite", feature = "r2d2"))]
pub use sqlite::SqliteCustomizer;

use crate::{Error, Result};

/// Applies `migrations` on `conn`.
fn apply_migrations<C, DB>(
    conn: &mut C,
    migrations: diesel_migrations::EmbeddedMigrations,
) -> Result<()>
where
    DB: diesel::backend::Backend,
    C: diesel_migrations::MigrationHarness<DB>,
{
    conn.run_pending_migrations(migrations)
        .map(drop)
        .map_err(|e| Error::Migration(e.to_string()))
}

/// The hooks of the backends with `RETURNING` (SQLite 3.35+ and PostgreSQL): an insert
/// and a guarded mark-read return their rows from the statement itself.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
macro_rules! returning_hooks {
    () => {
        /// Inserts a message and returns the stored row.
        fn insert_message(conn: &mut Conn, new: &NewMessage<'_>) -> QueryResult<Message> {
            statement(
                diesel::insert_into(dm::table)
                    .values(new)
                    .returning(Message::as_returning()),
            )
            .get_result(conn)
        }

        /// Marks read the messages `filter` selects and returns exactly the ones it
        /// changed.
        fn mark_read_returning(
            conn: &mut Conn,
            filter: MarkFilter<<Conn as diesel::Connection>::Backend>,
            at: DateTime<Utc>,
        ) -> QueryResult<Vec<Message>> {
            statement(
                diesel::update(dm::table.filter(filter))
                    .set(dm::read_at.eq(UtcTimestamp(at)))
                    .returning(Message::as_returning()),
            )
            .get_results(conn)
        }
    };
}
#[cfg(any(feature = "sqlite", feature = "postgres"))]
use returning_hooks;

/// The row lock of the backends with `SELECT … FOR UPDATE` (PostgreSQL and MySQL).
#[cfg(any(feature = "postgres", feature = "mysql"))]
macro_rules! row_lock_hook {
    () => {
        /// Locks the `(lo, hi)` row of a conversation, by its primary key, until the
        /// transaction ends; `false` when it does not exist yet.
        fn lock_conversation(conn: &mut Conn, lo: UserId, hi: UserId) -> QueryResult<bool> {
            statement(
                conv::table
                    .find((lo, hi))
                    .select(conv::owner_id)
                    .for_update(),
            )
            .get_result::<UserId>(conn)
            .optional()
            .map(|row| row.is_some())
        }
    };
}
#[cfg(any(feature = "postgres", feature = "mysql"))]
use row_lock_hook;
