//! SQLite in a pool: the settings each connection needs, for r2d2 and for diesel-async's
//! deadpool, bb8 and mobc pools.

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::SqliteConnection;

/// The settings of each SQLite connection a pool opens: a busy timeout and, if asked, WAL
/// journaling. An r2d2 connection customizer, and with `diesel-async` the connection
/// manager of diesel-async's deadpool, bb8 and mobc pools.
///
/// The inbox waits out a busy database by itself, whatever these settings, in its own
/// transactions and plain statements (up to 30 s, then [`Error::Database`]). The busy
/// timeout still matters: a waiting connection is woken by SQLite as soon as the lock is
/// free, where the inbox's own waits poll; and your own queries on these connections get
/// it too. WAL lets readers go on while one connection writes, and with
/// `synchronous = NORMAL` a commit no longer waits for the disk to sync; a commit can be
/// lost on a power cut (never on a crash of the process), and the database stays
/// consistent.
///
/// [`Error::Database`]: crate::Error::Database
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
    busy_timeout: Duration,
    wal: bool,
}

impl Default for SqliteCustomizer {
    fn default() -> Self {
        Self {
            busy_timeout: Duration::from_secs(5),
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
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// Switches the database to WAL journaling (with `synchronous = NORMAL`).
    pub fn wal(mut self, wal: bool) -> Self {
        self.wal = wal;
        self
    }

    /// The statements that apply these settings to a connection.
    fn pragmas(&self) -> String {
        let mut pragmas = format!("PRAGMA busy_timeout = {};", self.busy_timeout.as_millis());
        if self.wal {
            pragmas.push_str("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;");
        }
        pragmas
    }

    /// Applies these settings to `conn`, e.g. one opened without a pool.
    ///
    /// ```
    /// use diesel::{Connection, SqliteConnection};
    /// use directmessages::SqliteCustomizer;
    ///
    /// let mut conn = SqliteConnection::establish(":memory:").expect("in-memory database");
    /// SqliteCustomizer::new().apply(&mut conn).expect("settings");
    /// ```
    pub fn apply(&self, conn: &mut SqliteConnection) -> diesel::QueryResult<()> {
        conn.batch_execute(&self.pragmas())
    }
}

#[cfg(feature = "r2d2")]
#[cfg_attr(docsrs, doc(cfg(feature = "r2d2")))]
impl diesel::r2d2::CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for SqliteCustomizer {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        self.apply(conn).map_err(diesel::r2d2::Error::QueryError)
    }
}

/// SQLite's async connection, as diesel-async's pools hold it.
#[cfg(feature = "diesel-async")]
type AsyncSqlite = diesel_async::sync_connection_wrapper::SyncConnectionWrapper<SqliteConnection>;

#[cfg(feature = "diesel-async")]
#[cfg_attr(docsrs, doc(cfg(feature = "diesel-async")))]
impl SqliteCustomizer {
    /// The connection manager of diesel-async's deadpool, bb8 and mobc pools for the SQLite
    /// file at `url`, whose every new connection gets these settings (see
    /// [`manager_config`](Self::manager_config)).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use diesel_async::pooled_connection::deadpool::Pool;
    /// use directmessages::SqliteCustomizer;
    ///
    /// let path = std::env::temp_dir().join(format!("dm-doc-async-{}.db", std::process::id()));
    /// let manager = SqliteCustomizer::new().wal(true).manager(path.to_string_lossy());
    /// let pool = Pool::builder(manager).max_size(4).build()?;
    /// directmessages::run_migrations_async(&mut pool.get().await?).await?;
    /// # drop(pool);
    /// # for suffix in ["", "-wal", "-shm"] {
    /// #     let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    /// # }
    /// # Ok(()) }
    /// ```
    pub fn manager(
        self,
        url: impl Into<String>,
    ) -> diesel_async::pooled_connection::AsyncDieselConnectionManager<AsyncSqlite> {
        diesel_async::pooled_connection::AsyncDieselConnectionManager::new_with_config(
            url,
            self.manager_config(),
        )
    }

    /// A configuration for diesel-async's connection manager whose `custom_setup` opens
    /// each connection and applies these settings before the pool lends it, for a
    /// manager you build yourself (to choose its recycling method, say).
    pub fn manager_config(self) -> diesel_async::pooled_connection::ManagerConfig<AsyncSqlite> {
        let mut config = diesel_async::pooled_connection::ManagerConfig::default();
        config.custom_setup = Box::new(move |url| {
            let url = url.to_owned();
            Box::pin(async move {
                use diesel_async::{AsyncConnection, SimpleAsyncConnection};
                let mut conn = AsyncSqlite::establish(&url).await?;
                conn.batch_execute(&self.pragmas())
                    .await
                    .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                Ok(conn)
            })
        });
        config
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use diesel::{Connection, RunQueryDsl};

    #[derive(diesel::QueryableByName)]
    struct Setting {
        #[diesel(sql_type = diesel::sql_types::Text)]
        value: String,
    }

    fn pragma(conn: &mut SqliteConnection, name: &str, column: &str) -> String {
        diesel::sql_query(format!(
            "SELECT CAST({column} AS TEXT) AS value FROM pragma_{name}"
        ))
        .get_result::<Setting>(conn)
        .unwrap()
        .value
    }

    #[test]
    fn apply_sets_the_busy_timeout_and_wal() {
        let path = std::env::temp_dir().join(format!(
            "dm-customizer-{}-{:?}.db",
            std::process::id(),
            std::thread::current().id()
        ));
        let mut conn = SqliteConnection::establish(&path.to_string_lossy()).unwrap();
        assert_eq!(pragma(&mut conn, "busy_timeout", "timeout"), "0");
        SqliteCustomizer::new()
            .busy_timeout(Duration::from_millis(1234))
            .wal(true)
            .apply(&mut conn)
            .unwrap();
        assert_eq!(pragma(&mut conn, "busy_timeout", "timeout"), "1234");
        assert_eq!(pragma(&mut conn, "journal_mode", "journal_mode"), "wal");
        assert_eq!(
            pragma(&mut conn, "synchronous", "synchronous"),
            "1",
            "NORMAL"
        );
        drop(conn);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
}
