//! SQLite: `RETURNING` (3.35+, bundled) and `BEGIN IMMEDIATE` write transactions, which
//! also serialize every send, so no row lock is needed.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::QueryResult;
use diesel_migrations::{embed_migrations, EmbeddedMigrations};

use super::apply_migrations;
use crate::message::{NewMessage, StoredMessage};
use crate::operations::MarkFilter;
use crate::retry::{backoff, is_nested};
use crate::schema::direct_message_conversations as conv;
use crate::schema::direct_messages as dm;
use crate::schema::UtcTimestamp;
use crate::{Error, Message, MessageId, Result, UserId};

/// The connection type the shared operations are mounted for.
type Conn = diesel::SqliteConnection;

// The shared operations, compiled for `Conn`: one text, mounted once per backend.
#[allow(clippy::duplicate_mod)]
#[path = "../operations/queries.rs"]
mod operations;

crate::connection::inbox_connection!(Conn);

/// How long `run_migrations` waits for other connections' write transactions.
const MIGRATION_LOCK_WAIT: Duration = Duration::from_secs(60);

/// Statements are cached by Diesel as usual.
fn statement<Q>(query: Q) -> Q {
    query
}

/// Whether SQLite refused a lock another connection holds.
fn is_busy(error: &Error) -> bool {
    let text = match error {
        Error::Database(diesel::result::Error::DatabaseError(_, info)) => info.message(),
        Error::Migration(text) => text,
        _ => return false,
    };
    text.contains("database is locked")
}

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// One write transaction around the whole run, so instances starting together apply the
/// migrations one after the other; a connection without a busy timeout gets "database is
/// locked" at once, so the lock is asked for again until it is free.
fn migrate(conn: &mut Conn) -> Result<()> {
    if is_nested(conn)? {
        return apply_migrations(conn, MIGRATIONS);
    }
    let deadline = Instant::now() + MIGRATION_LOCK_WAIT;
    let mut attempt = 1;
    loop {
        match conn.immediate_transaction(|conn| apply_migrations(conn, MIGRATIONS)) {
            Err(e) if is_busy(&e) && Instant::now() < deadline => {
                std::thread::sleep(backoff(attempt));
                attempt += 1;
            }
            result => return result,
        }
    }
}

/// Runs `f` in a transaction that may write (a savepoint inside the caller's own).
///
/// It takes the write lock up front: a deferred transaction that reads first and then
/// writes fails at once with "database is locked" when another writer got in between,
/// whatever the busy timeout, while BEGIN IMMEDIATE waits for the timeout.
fn write_transaction<T>(conn: &mut Conn, f: impl FnMut(&mut Conn) -> Result<T>) -> Result<T> {
    if is_nested(conn)? {
        conn.transaction(f)
    } else {
        conn.immediate_transaction(f)
    }
}

super::returning_hooks!();

/// The message as last committed: every statement sees it.
fn find_current(conn: &mut Conn, id: MessageId) -> QueryResult<Option<StoredMessage>> {
    operations::find_stored(conn, id)
}

/// Whether the conversation row exists; the write transaction already holds the
/// database's only write lock, so no row lock is needed.
fn lock_conversation(conn: &mut Conn, lo: UserId, hi: UserId) -> QueryResult<bool> {
    statement(diesel::select(diesel::dsl::exists(
        conv::table.find((lo, hi)),
    )))
    .get_result(conn)
}

/// An r2d2 connection customizer for SQLite pools.
///
/// Sets `busy_timeout`, so a writer waits for another instead of failing with "database
/// is locked", and, if asked, WAL journaling (readers no longer wait for the writer).
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use diesel::r2d2::{ConnectionManager, Pool};
/// use diesel::SqliteConnection;
/// use directmessages::SqliteCustomizer;
///
/// let dir = std::env::temp_dir().join(format!("dm-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let manager = ConnectionManager::<SqliteConnection>::new(dir.join("app.db").to_string_lossy());
/// let pool = Pool::builder()
///     .max_size(4)
///     .connection_customizer(Box::new(SqliteCustomizer::new().wal(true)))
///     .build(manager)?;
/// directmessages::run_migrations(&mut pool.get()?)?;
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok(()) }
/// ```
#[cfg(feature = "r2d2")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqliteCustomizer {
    busy_timeout: std::time::Duration,
    wal: bool,
}

#[cfg(feature = "r2d2")]
impl Default for SqliteCustomizer {
    fn default() -> Self {
        Self {
            busy_timeout: std::time::Duration::from_secs(5),
            wal: false,
        }
    }
}

#[cfg(feature = "r2d2")]
impl SqliteCustomizer {
    /// A busy timeout of 5 seconds, the journal mode left as it is.
    pub fn new() -> Self {
        Self::default()
    }

    /// How long a connection waits for another one's write lock.
    pub fn busy_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// Switches the database to WAL journaling (with `synchronous = NORMAL`).
    pub fn wal(mut self, wal: bool) -> Self {
        self.wal = wal;
        self
    }
}

#[cfg(feature = "r2d2")]
impl diesel::r2d2::CustomizeConnection<Conn, diesel::r2d2::Error> for SqliteCustomizer {
    fn on_acquire(&self, conn: &mut Conn) -> std::result::Result<(), diesel::r2d2::Error> {
        use diesel::connection::SimpleConnection;
        let mut pragmas = format!("PRAGMA busy_timeout = {};", self.busy_timeout.as_millis());
        if self.wal {
            pragmas.push_str("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;");
        }
        conn.batch_execute(&pragmas)
            .map_err(diesel::r2d2::Error::QueryError)
    }
}
