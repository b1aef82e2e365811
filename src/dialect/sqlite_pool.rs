//! SQLite in an r2d2 pool: the settings each connection needs.

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqliteCustomizer {
    busy_timeout: std::time::Duration,
    wal: bool,
}

impl Default for SqliteCustomizer {
    fn default() -> Self {
        Self {
            busy_timeout: std::time::Duration::from_secs(5),
            wal: false,
        }
    }
}

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

impl diesel::r2d2::CustomizeConnection<diesel::SqliteConnection, diesel::r2d2::Error>
    for SqliteCustomizer
{
    fn on_acquire(
        &self,
        conn: &mut diesel::SqliteConnection,
    ) -> std::result::Result<(), diesel::r2d2::Error> {
        use diesel::connection::SimpleConnection;
        let mut pragmas = format!("PRAGMA busy_timeout = {};", self.busy_timeout.as_millis());
        if self.wal {
            pragmas.push_str("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;");
        }
        conn.batch_execute(&pragmas)
            .map_err(diesel::r2d2::Error::QueryError)
    }
}
