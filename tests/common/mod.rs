//! The test harness: a fresh database per test on every enabled backend, and the suite
//! macro that runs each behaviour on each of them.
//!
//! PostgreSQL and MySQL are read from `DIRECTMESSAGES_POSTGRES_URL` and
//! `DIRECTMESSAGES_MYSQL_URL`. Without a URL their tests print one notice and pass as
//! skipped, unless `CI=true`, where a missing or unreachable server fails the run.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Once;

use chrono::{DateTime, Utc};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, R2D2Connection};
use directmessages::InboxConnection;

/// One isolated database for one test.
pub trait TestDb: Sized + Sync + 'static {
    /// The connection type of the backend.
    type Conn: InboxConnection + R2D2Connection + Probe + Schema + Send + 'static;
    /// The backend's name, for notices.
    const NAME: &'static str;
    /// What each connection runs before a test uses it.
    const PREPARE: &'static str;
    /// What makes a connection read-only.
    const READ_ONLY: &'static str;
    /// A fresh, migrated database, or `None` when the backend is not configured.
    fn create() -> Option<Self> {
        let db = Self::create_empty()?;
        directmessages::run_migrations(&mut db.conn()).expect("migrations");
        Some(db)
    }
    /// A fresh database without any table, or `None` when the backend is not configured.
    fn create_empty() -> Option<Self>;
    /// Whether the tests reach this backend through a pooler in transaction mode
    /// (`DIRECTMESSAGES_POSTGRES_POOLER_URL`): connections then run with their statement
    /// cache off, and inboxes with `transaction_pooling`.
    fn pooled() -> bool {
        false
    }
    /// The URL of this test's database.
    fn url(&self) -> &str;
    /// A new connection to it.
    fn conn(&self) -> Self::Conn {
        let mut conn = Self::Conn::establish(self.url())
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", Self::NAME));
        prepare(&mut conn);
        conn
    }
    /// A pool of connections to it.
    fn pool(&self, size: u32) -> Pool<ConnectionManager<Self::Conn>> {
        Pool::builder()
            .max_size(size)
            .min_idle(Some(0))
            .connection_customizer(Box::new(Prepare))
            .build(ConnectionManager::new(self.url()))
            .expect("pool")
    }
}

/// An inbox builder for database `D`: through a pooler in transaction mode, with
/// `transaction_pooling`.
pub fn builder<D: TestDb>() -> directmessages::InboxBuilder {
    directmessages::Inbox::builder().transaction_pooling(D::pooled())
}

/// A new connection of `D` to `url`, its statement cache off through a pooler.
pub fn establish<D: TestDb>(url: &str) -> ConnectionResult<D::Conn> {
    let mut conn = D::Conn::establish(url)?;
    uncached_if_pooled::<D>(&mut conn);
    Ok(conn)
}

/// Turns the statement cache of `conn` off when the tests reach `D` through a pooler.
fn uncached_if_pooled<D: TestDb>(conn: &mut D::Conn) {
    if D::pooled() {
        conn.set_prepared_statement_cache_size(diesel::connection::CacheSize::Disabled);
    }
}

/// What a connection needs before a test uses it.
fn prepare<C: Probe>(conn: &mut C) {
    conn.prepare();
}

#[derive(Debug)]
struct Prepare;
impl<C: Probe + R2D2Connection> CustomizeConnection<C, diesel::r2d2::Error> for Prepare {
    fn on_acquire(&self, conn: &mut C) -> Result<(), diesel::r2d2::Error> {
        conn.prepare();
        Ok(())
    }
}

/// The ids `message_read` fires for, in any order; `sorted()` to compare them.
#[derive(Clone, Default)]
pub struct ReadLog(std::sync::Arc<std::sync::Mutex<Vec<i64>>>);

impl ReadLog {
    /// Registers on `signals` a handler that records every `message_read`.
    pub fn on(signals: &directmessages::Signals) -> Self {
        let log = Self::default();
        let sink = log.clone();
        signals.on_message_read(move |e| sink.0.lock().unwrap().push(e.message.id));
        log
    }

    /// Every id fired so far, ascending; an id fired twice appears twice.
    pub fn sorted(&self) -> Vec<i64> {
        let mut ids = self.0.lock().unwrap().clone();
        ids.sort_unstable();
        ids
    }
}

/// How long one test may run before the watchdog fails it (default 300 s,
/// `DIRECTMESSAGES_TEST_TIMEOUT` in seconds to change).
fn watchdog_limit() -> std::time::Duration {
    let seconds = std::env::var("DIRECTMESSAGES_TEST_TIMEOUT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    std::time::Duration::from_secs(seconds)
}

/// Runs `test` under the watchdog: a test that hangs (a connection waiting for a reply
/// that never comes) fails after the limit instead of blocking the whole run.
pub fn with_watchdog(name: &str, test: impl FnOnce() + Send + 'static) {
    let (done_tx, done) = std::sync::mpsc::channel();
    let worker = std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(test));
            let _ = done_tx.send(outcome);
        })
        .expect("spawn the test thread");
    match done.recv_timeout(watchdog_limit()) {
        Ok(Ok(())) => drop(worker.join()),
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => panic!(
            "{name}: no result after {:?}: the test hung",
            watchdog_limit()
        ),
    }
}

/// Runs `test` on a fresh database of `D` under the watchdog, or prints why it is skipped.
pub fn run<D: TestDb>(test: impl FnOnce(&D) + Send + 'static) {
    run_on(<D as TestDb>::create, test);
}

/// Runs `test` on a fresh database of `D` without any table yet, under the watchdog.
pub fn run_empty<D: TestDb>(test: impl FnOnce(&D) + Send + 'static) {
    run_on(D::create_empty, test);
}

/// Runs `test` on what `create` makes, under the watchdog; `create` returns `None` (after
/// its notice) when the server is not configured.
pub fn run_on<T: 'static>(create: fn() -> Option<T>, test: impl FnOnce(&T) + Send + 'static) {
    let name = std::thread::current().name().unwrap_or("test").to_owned();
    with_watchdog(&name, move || {
        if let Some(db) = create() {
            test(&db);
        }
    });
}

/// Checks what a poller of the conversation between users 1 and 2 collected with
/// `after(cursor)`: every stored message once, in id order, `expected` in all, and no
/// message with a higher id and an earlier `sent_at`.
pub fn assert_polled_whole_conversation<C: TestConn>(
    inbox: &TestInbox,
    conn: &mut C,
    seen: &[i64],
    expected: usize,
) {
    let all: Vec<i64> = inbox
        .conversation(conn, 1, 2, directmessages::ConversationQuery::new())
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(all.len(), expected);
    assert_eq!(seen, all, "the poller saw every message once, in order");
    assert_eq!(conn.clock_inversions(), []);
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name no other test of any concurrent run uses.
pub fn unique_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "dm_test_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

/// The configured URL of a server backend, or `None` (with a notice) when it is not
/// configured outside CI.
pub fn server_url(var: &str, name: &str, notice: &'static Once) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but {var} is not set: the {name} tests must run in CI")
        }
        _ => {
            // Straight to stderr: libtest captures `eprintln!` of passing tests.
            notice.call_once(|| {
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "note: {name} tests skipped: {var} is not set"
                );
            });
            None
        }
    }
}

// ---------------------------------------------------------------- SQLite

#[cfg(feature = "sqlite")]
pub struct SqliteDb {
    path: std::path::PathBuf,
    url: String,
}

#[cfg(feature = "sqlite")]
impl TestDb for SqliteDb {
    type Conn = diesel::SqliteConnection;
    const NAME: &'static str = "sqlite";
    const PREPARE: &'static str = "PRAGMA busy_timeout = 60000; PRAGMA synchronous = NORMAL;";
    const READ_ONLY: &'static str = "PRAGMA query_only = 1;";

    fn create_empty() -> Option<Self> {
        let path = std::env::temp_dir().join(format!("{}.db", unique_name()));
        let url = path.to_string_lossy().into_owned();
        let db = SqliteDb { path, url };
        TestDb::conn(&db)
            .batch_execute("PRAGMA journal_mode = WAL;")
            .expect("WAL");
        Some(db)
    }

    fn url(&self) -> &str {
        &self.url
    }
}

#[cfg(feature = "sqlite")]
impl Drop for SqliteDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut name = self.path.clone().into_os_string();
            name.push(suffix);
            let _ = std::fs::remove_file(name);
        }
    }
}

// ---------------------------------------------------------------- PostgreSQL

/// A schema of its own per test, chosen by `search_path` in the URL; through a pooler
/// (`DIRECTMESSAGES_POSTGRES_POOLER_URL`, which passes no `search_path` on), a database of
/// its own, made and dropped through the direct URL.
#[cfg(feature = "postgres")]
pub struct PgDb {
    admin_url: String,
    drop: String,
    url: String,
}

#[cfg(feature = "postgres")]
static PG_NOTICE: Once = Once::new();

/// The URL of a pooler in transaction mode in front of the PostgreSQL server, if set.
#[cfg(feature = "postgres")]
pub fn pg_pooler_url() -> Option<String> {
    std::env::var("DIRECTMESSAGES_POSTGRES_POOLER_URL")
        .ok()
        .filter(|url| !url.is_empty())
}

/// `url` with its database replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let server = base.rsplit_once('/').map_or(base, |(server, _db)| server);
    format!("{server}/{name}{query}")
}

#[cfg(feature = "postgres")]
impl TestDb for PgDb {
    type Conn = diesel::PgConnection;
    const NAME: &'static str = "postgres";
    const PREPARE: &'static str = "SET TIME ZONE 'Europe/Paris';";
    const READ_ONLY: &'static str = "SET default_transaction_read_only = on;";

    fn create_empty() -> Option<Self> {
        let admin_url = server_url("DIRECTMESSAGES_POSTGRES_URL", Self::NAME, &PG_NOTICE)?;
        let mut admin = diesel::PgConnection::establish(&admin_url).unwrap_or_else(|e| {
            panic!("DIRECTMESSAGES_POSTGRES_URL is set but the server is unreachable: {e}")
        });
        let name = unique_name();
        if let Some(pooler) = pg_pooler_url() {
            admin
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .expect("create database");
            return Some(PgDb {
                admin_url,
                drop: format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                url: with_database(&pooler, &name),
            });
        }
        admin
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .expect("create schema");
        let separator = if admin_url.contains('?') { '&' } else { '?' };
        let url = format!("{admin_url}{separator}options=-csearch_path%3D{name}");
        Some(PgDb {
            admin_url,
            drop: format!("DROP SCHEMA IF EXISTS {name} CASCADE"),
            url,
        })
    }

    fn pooled() -> bool {
        pg_pooler_url().is_some()
    }

    fn url(&self) -> &str {
        &self.url
    }
}

#[cfg(feature = "postgres")]
impl Drop for PgDb {
    fn drop(&mut self) {
        if let Ok(mut admin) = diesel::PgConnection::establish(&self.admin_url) {
            let _ = admin.batch_execute(&self.drop);
        }
    }
}

// ---------------------------------------------------------------- MySQL

/// A database of its own per test.
#[cfg(feature = "mysql")]
pub struct MysqlDb {
    admin_url: String,
    name: String,
    url: String,
}

#[cfg(feature = "mysql")]
static MYSQL_NOTICE: Once = Once::new();

#[cfg(feature = "mysql")]
impl TestDb for MysqlDb {
    type Conn = diesel::MysqlConnection;
    const NAME: &'static str = "mysql";
    const PREPARE: &'static str = "SET time_zone = '+02:00';";
    const READ_ONLY: &'static str = "SET SESSION TRANSACTION READ ONLY;";

    fn create_empty() -> Option<Self> {
        let admin_url = server_url("DIRECTMESSAGES_MYSQL_URL", Self::NAME, &MYSQL_NOTICE)?;
        let mut admin = diesel::MysqlConnection::establish(&admin_url).unwrap_or_else(|e| {
            panic!("DIRECTMESSAGES_MYSQL_URL is set but the server is unreachable: {e}")
        });
        let name = unique_name();
        admin
            .batch_execute(&format!("CREATE DATABASE {name} CHARACTER SET utf8mb4"))
            .expect("create database");
        let url = with_database(&admin_url, &name);
        Some(MysqlDb {
            admin_url,
            name,
            url,
        })
    }

    fn url(&self) -> &str {
        &self.url
    }
}

#[cfg(feature = "mysql")]
impl Drop for MysqlDb {
    fn drop(&mut self) {
        if let Ok(mut admin) = diesel::MysqlConnection::establish(&self.admin_url) {
            let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {}", self.name));
        }
    }
}

// ---------------------------------------------------------------- Probe

/// Reads the tables directly, to check what the inbox left behind.
pub trait Probe {
    /// Per-connection settings.
    fn prepare(&mut self);
    /// Row counts of messages, conversation rows, blocks.
    fn counts(&mut self) -> (i64, i64, i64);
    /// `(owner, partner) -> (last_message_id, unread_count)` as stored.
    fn conversation_rows(&mut self) -> BTreeMap<(i64, i64), (Option<i64>, i64)>;
    /// The same, recomputed from `direct_messages` alone.
    fn expected_conversation_rows(&mut self) -> BTreeMap<(i64, i64), (Option<i64>, i64)>;
    /// How many conversation rows, empty ones included, have `user` on either side.
    fn conversation_rows_mentioning(&mut self, user: i64) -> i64;
    /// How many rows of the search index message `id` has (one per side that sees it).
    fn search_rows_of(&mut self, id: i64) -> i64;
    /// `(deleted_by_sender, deleted_by_recipient)` of a message still stored.
    fn deletion_flags(&mut self, id: i64) -> Option<(bool, bool)>;
    /// Stores `n` unread messages from `sender` to `recipient` in bulk, as a flooded user
    /// would have them, and brings the conversation rows in line.
    fn seed_unread(&mut self, sender: i64, recipient: i64, n: usize);
    /// Makes every later transaction of this connection read-only, as on a replica.
    fn set_read_only(&mut self);
    /// Overwrites a message's `sent_at`, as a host query binding `UtcTimestamp` would.
    fn set_sent_at(&mut self, id: i64, at: DateTime<Utc>);
    /// A message's `sent_at` as stored.
    fn sent_at(&mut self, id: i64) -> DateTime<Utc>;
    /// How many messages were sent after `at`: a host query filtering by `UtcTimestamp`.
    fn count_sent_after(&mut self, at: DateTime<Utc>) -> i64;
    /// Pairs of messages of one conversation where the higher id has the earlier
    /// `sent_at`.
    fn clock_inversions(&mut self) -> Vec<(i64, i64)>;
    /// Cuts off every later statement of this session that runs longer than `ms`
    /// milliseconds (0: no limit). Not on SQLite.
    fn set_statement_timeout_ms(&mut self, ms: u32);
    /// This session's id on the server, for [`cancel_statement`](Self::cancel_statement).
    fn session_id(&mut self) -> i64;
    /// Cancels whatever statement the session `id` is running, as a DBA would.
    fn cancel_statement(&mut self, id: i64);
}

/// What the conversation table must say, derived from the messages: for every owner
/// with a message, the latest one visible to them and the unread ones visible to them.
fn derive_conversations(
    rows: Vec<(i64, i64, i64, bool, bool, bool)>,
) -> BTreeMap<(i64, i64), (Option<i64>, i64)> {
    let mut expected: BTreeMap<(i64, i64), (Option<i64>, i64)> = BTreeMap::new();
    for (id, sender, recipient, unread, by_sender, by_recipient) in rows {
        for (owner, partner, hidden) in [
            (sender, recipient, by_sender),
            (recipient, sender, by_recipient),
        ] {
            let entry = expected.entry((owner, partner)).or_insert((None, 0));
            if !hidden {
                entry.0 = entry.0.max(Some(id));
                if owner == recipient && unread {
                    entry.1 += 1;
                }
            }
        }
    }
    expected
}

macro_rules! probe {
    (
        $conn:ty,
        db: $db:ty,
        asynchronous: $async:ty,
        timeout: $timeout:expr,
        session: $session:expr,
        cancel: $cancel:expr,
        search_rows: $search_rows:expr,
        migrations: $migrations:expr,
        catalog: $catalog:expr,
        async_config: $async_config:expr $(,)?
    ) => {
        impl Schema for $conn {
            fn catalog(&mut self) -> Vec<String> {
                #[derive(QueryableByName)]
                struct Item {
                    #[diesel(sql_type = diesel::sql_types::Text)]
                    item: String,
                }
                let mut items: Vec<String> = diesel::sql_query($catalog)
                    .load::<Item>(self)
                    .expect("catalog")
                    .into_iter()
                    .map(|i| i.item)
                    .collect();
                items.sort();
                items
            }

            fn migrate_up_to(&mut self, last: &str) {
                use diesel::migration::MigrationSource;
                use diesel_migrations::MigrationHarness;
                // Creates Diesel's table, as `run_pending_migrations` would first.
                self.applied_migrations().expect("applied migrations");
                let source = $migrations;
                let all = MigrationSource::<<Self as Connection>::Backend>::migrations(&source)
                    .expect("embedded migrations");
                for migration in all {
                    if migration.name().version().to_string().as_str() <= last {
                        self.run_migration(&*migration).expect("migration");
                    }
                }
            }

            fn revert_all(&mut self) -> usize {
                use diesel_migrations::MigrationHarness;
                self.revert_all_migrations($migrations)
                    .expect("revert")
                    .len()
            }

            fn revert_last(&mut self) {
                use diesel_migrations::MigrationHarness;
                self.revert_last_migration($migrations)
                    .expect("revert the last");
            }

            fn pending(&mut self) -> usize {
                use diesel_migrations::MigrationHarness;
                self.pending_migrations($migrations).expect("pending").len()
            }
        }

        impl TestConn for $conn {
            type Blocking = Self;
            #[cfg(feature = "diesel-async")]
            type Async = $async;

            fn drive(&mut self) -> Driven<'_, Self> {
                Driven::Blocking(self)
            }

            fn transaction<T, E: From<diesel::result::Error>>(
                &mut self,
                f: impl FnOnce(&mut Self) -> Result<T, E>,
            ) -> Result<T, E> {
                diesel::Connection::transaction(self, f)
            }
        }

        #[cfg(feature = "diesel-async")]
        impl AsyncTestDb for $db {
            type Async = $async;
            type Pooled = diesel_async::pooled_connection::deadpool::Object<$async>;
            type Pool = diesel_async::pooled_connection::deadpool::Pool<$async>;

            fn manager_config() -> diesel_async::pooled_connection::ManagerConfig<$async> {
                ($async_config)()
            }

            fn async_pool(url: &str, size: u32) -> Self::Pool {
                let manager = diesel_async::pooled_connection::AsyncDieselConnectionManager::<
                                                    $async,
                                                >::new_with_config(url, Self::manager_config());
                Self::Pool::builder(manager)
                    .max_size(size as usize)
                    .build()
                    .expect("pool")
            }

            fn async_get(
                rt: &tokio::runtime::Runtime,
                pool: &Self::Pool,
            ) -> Result<Self::Pooled, String> {
                rt.block_on(pool.get()).map_err(|e| e.to_string())
            }
        }

        impl Probe for $conn {
            fn set_statement_timeout_ms(&mut self, ms: u32) {
                let sql: Option<String> = ($timeout)(ms);
                let sql = sql.expect("this backend has no statement timeout");
                self.batch_execute(&sql).expect("statement timeout");
            }

            fn session_id(&mut self) -> i64 {
                #[derive(QueryableByName)]
                struct Session {
                    #[diesel(sql_type = diesel::sql_types::BigInt)]
                    id: i64,
                }
                let sql: &str = $session;
                diesel::sql_query(sql)
                    .get_result::<Session>(self)
                    .expect("session id")
                    .id
            }

            fn cancel_statement(&mut self, id: i64) {
                let sql: Option<String> = ($cancel)(id);
                let sql = sql.expect("this backend cannot cancel another session");
                self.batch_execute(&sql).expect("cancel");
            }

            fn prepare(&mut self) {
                uncached_if_pooled::<$db>(self);
                self.batch_execute(<$db as TestDb>::PREPARE)
                    .expect("prepare connection");
            }

            /// As if the message had been sent at `at` (by an instance with that clock):
            /// its conversation's rows remember the latest `sent_at`, as a send leaves them.
            fn set_sent_at(&mut self, id: i64, at: DateTime<Utc>) {
                use directmessages::schema::direct_message_conversations as c;
                use directmessages::schema::{direct_messages as m, UtcTimestamp};
                diesel::update(m::table.find(id))
                    .set(m::sent_at.eq(UtcTimestamp(at)))
                    .execute(self)
                    .expect("set sent_at");
                let (sender, recipient): (i64, i64) = m::table
                    .find(id)
                    .select((m::sender_id, m::recipient_id))
                    .first(self)
                    .expect("the message");
                diesel::update(
                    c::table
                        .filter(c::owner_id.eq_any([sender, recipient]))
                        .filter(c::partner_id.eq_any([sender, recipient]))
                        .filter(
                            c::last_sent_at
                                .lt(UtcTimestamp(at))
                                .or(c::last_sent_at.is_null()),
                        ),
                )
                .set(c::last_sent_at.eq(UtcTimestamp(at)))
                .execute(self)
                .expect("set last_sent_at");
            }

            fn sent_at(&mut self, id: i64) -> DateTime<Utc> {
                use directmessages::schema::{direct_messages as m, UtcTimestamp};
                m::table
                    .find(id)
                    .select(m::sent_at)
                    .first::<UtcTimestamp>(self)
                    .expect("sent_at")
                    .0
            }

            fn count_sent_after(&mut self, at: DateTime<Utc>) -> i64 {
                use directmessages::schema::{direct_messages as m, UtcTimestamp};
                m::table
                    .filter(m::sent_at.gt(UtcTimestamp(at)))
                    .count()
                    .get_result(self)
                    .expect("count")
            }

            fn clock_inversions(&mut self) -> Vec<(i64, i64)> {
                use directmessages::schema::{direct_messages as m, UtcTimestamp};
                let rows: Vec<(i64, i64, i64, UtcTimestamp)> = m::table
                    .order((m::user_lo, m::user_hi, m::id))
                    .select((m::user_lo, m::user_hi, m::id, m::sent_at))
                    .load(self)
                    .expect("messages");
                rows.windows(2)
                    .filter(|w| (w[0].0, w[0].1) == (w[1].0, w[1].1) && w[1].3 < w[0].3)
                    .map(|w| (w[0].2, w[1].2))
                    .collect()
            }

            fn set_read_only(&mut self) {
                self.batch_execute(<$db as TestDb>::READ_ONLY)
                    .expect("read-only");
            }

            fn seed_unread(&mut self, sender: i64, recipient: i64, n: usize) {
                use directmessages::schema::direct_message_conversations as c;
                use directmessages::schema::{direct_messages as m, UtcTimestamp};
                let sent_at = UtcTimestamp(chrono::Utc::now());
                let rows: Vec<_> = (0..n)
                    .map(|i| {
                        (
                            m::sender_id.eq(sender),
                            m::recipient_id.eq(recipient),
                            m::content.eq(format!("flood {i}")),
                            m::sent_at.eq(sent_at),
                        )
                    })
                    .collect();
                for chunk in rows.chunks(2_000) {
                    diesel::insert_into(m::table)
                        .values(chunk)
                        .execute(self)
                        .expect("seed messages");
                }
                let expected = self.expected_conversation_rows();
                diesel::delete(c::table)
                    .execute(self)
                    .expect("clear conversations");
                let rows: Vec<_> = expected
                    .into_iter()
                    .map(|((owner, partner), (last, unread))| {
                        (
                            c::owner_id.eq(owner),
                            c::partner_id.eq(partner),
                            c::last_message_id.eq(last),
                            c::unread_count.eq(unread),
                        )
                    })
                    .collect();
                for chunk in rows.chunks(1_000) {
                    diesel::insert_into(c::table)
                        .values(chunk)
                        .execute(self)
                        .expect("conversation rows");
                }
            }

            fn counts(&mut self) -> (i64, i64, i64) {
                use directmessages::schema::*;
                (
                    direct_messages::table
                        .count()
                        .get_result(self)
                        .expect("count"),
                    direct_message_conversations::table
                        .count()
                        .get_result(self)
                        .expect("count"),
                    direct_message_blocks::table
                        .count()
                        .get_result(self)
                        .expect("count"),
                )
            }

            fn conversation_rows(&mut self) -> BTreeMap<(i64, i64), (Option<i64>, i64)> {
                use directmessages::schema::direct_message_conversations as c;
                c::table
                    .select((
                        c::owner_id,
                        c::partner_id,
                        c::last_message_id,
                        c::unread_count,
                    ))
                    .load::<(i64, i64, Option<i64>, i64)>(self)
                    .expect("conversation rows")
                    .into_iter()
                    // A row whose every message is gone says nothing; both shapes are fine.
                    .filter(|r| r.2.is_some() || r.3 != 0)
                    .map(|(o, p, last, unread)| ((o, p), (last, unread)))
                    .collect()
            }

            fn search_rows_of(&mut self, id: i64) -> i64 {
                #[derive(QueryableByName)]
                struct Count {
                    #[diesel(sql_type = diesel::sql_types::BigInt)]
                    n: i64,
                }
                let sql: &str = $search_rows;
                diesel::sql_query(sql)
                    .bind::<diesel::sql_types::BigInt, _>(id)
                    .get_result::<Count>(self)
                    .expect("search rows")
                    .n
            }

            fn conversation_rows_mentioning(&mut self, user: i64) -> i64 {
                use directmessages::schema::direct_message_conversations as c;
                c::table
                    .filter(c::owner_id.eq(user).or(c::partner_id.eq(user)))
                    .count()
                    .get_result(self)
                    .expect("conversation rows")
            }

            fn expected_conversation_rows(&mut self) -> BTreeMap<(i64, i64), (Option<i64>, i64)> {
                use directmessages::schema::direct_messages as m;
                let rows = m::table
                    .select((
                        m::id,
                        m::sender_id,
                        m::recipient_id,
                        m::read_at.is_null(),
                        m::deleted_by_sender,
                        m::deleted_by_recipient,
                    ))
                    .load(self)
                    .expect("messages");
                derive_conversations(rows)
                    .into_iter()
                    .filter(|(_, v)| v.0.is_some() || v.1 != 0)
                    .collect()
            }

            fn deletion_flags(&mut self, id: i64) -> Option<(bool, bool)> {
                use directmessages::schema::direct_messages as m;
                m::table
                    .find(id)
                    .select((m::deleted_by_sender, m::deleted_by_recipient))
                    .first(self)
                    .optional()
                    .expect("flags")
            }
        }
    };
}

#[cfg(feature = "sqlite")]
probe!(
    diesel::SqliteConnection,
    db: SqliteDb,
    asynchronous: diesel_async::sync_connection_wrapper::SyncConnectionWrapper<diesel::SqliteConnection>,
    timeout: |_| None,
    session: "SELECT 0 AS id",
    cancel: |_| None,
    search_rows: "SELECT count(*) AS n FROM direct_message_search WHERE rowid IN (2 * ?1, 2 * ?1 + 1)",
    migrations: directmessages::migrations::SQLITE,
    catalog: "SELECT type || ' ' || name || ' on ' || tbl_name || ': ' || COALESCE(sql, '') AS item \
              FROM sqlite_master WHERE tbl_name <> '__diesel_schema_migrations' \
              AND name NOT LIKE 'sqlite_%'",
    async_config: diesel_async::pooled_connection::ManagerConfig::default,
);
#[cfg(feature = "postgres")]
probe!(
    diesel::PgConnection,
    db: PgDb,
    asynchronous: diesel_async::AsyncPgConnection,
    timeout: |ms| Some(format!("SET statement_timeout = {ms}")),
    session: "SELECT pg_backend_pid()::BIGINT AS id",
    cancel: |id| Some(format!("SELECT pg_cancel_backend({id})")),
    search_rows: "SELECT count(*) AS n FROM direct_message_search WHERE message_id = $1",
    migrations: directmessages::migrations::POSTGRES,
    catalog: "SELECT c.relkind::text || ' ' || c.relname AS item FROM pg_class c \
              JOIN pg_namespace n ON n.oid = c.relnamespace \
              WHERE n.nspname = current_schema() \
              AND position('__diesel_schema_migrations' IN c.relname) = 0 \
              UNION ALL SELECT 'trigger ' || t.tgname FROM pg_trigger t \
              JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
              WHERE n.nspname = current_schema() AND NOT t.tgisinternal \
              UNION ALL SELECT 'function ' || p.proname FROM pg_proc p \
              JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = current_schema() \
              UNION ALL SELECT 'type ' || t.typname FROM pg_type t \
              JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = current_schema() \
              AND position('__diesel_schema_migrations' IN t.typname) = 0",
    async_config: || if PgDb::pooled() {
        directmessages::TransactionPooler::manager_config()
    } else {
        diesel_async::pooled_connection::ManagerConfig::default()
    },
);
#[cfg(feature = "mysql")]
probe!(
    diesel::MysqlConnection,
    db: MysqlDb,
    asynchronous: diesel_async::AsyncMysqlConnection,
    timeout: |ms: u32| Some(format!("SET SESSION max_statement_time = {}", f64::from(ms) / 1000.0)),
    session: "SELECT CAST(CONNECTION_ID() AS SIGNED) AS id",
    cancel: |id| Some(format!("KILL QUERY {id}")),
    search_rows: "SELECT count(*) AS n FROM direct_message_search WHERE message_id = ?",
    migrations: directmessages::migrations::MYSQL,
    catalog: "SELECT CONCAT('table ', TABLE_NAME, ' ', ENGINE) AS item FROM information_schema.TABLES \
              WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME <> '__diesel_schema_migrations' \
              UNION ALL SELECT CONCAT('index ', TABLE_NAME, '.', INDEX_NAME, ' ', COLUMN_NAME) \
              FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() \
              AND TABLE_NAME <> '__diesel_schema_migrations' \
              UNION ALL SELECT CONCAT('trigger ', TRIGGER_NAME) FROM information_schema.TRIGGERS \
              WHERE TRIGGER_SCHEMA = DATABASE() \
              UNION ALL SELECT CONCAT('routine ', ROUTINE_NAME) FROM information_schema.ROUTINES \
              WHERE ROUTINE_SCHEMA = DATABASE()",
    async_config: diesel_async::pooled_connection::ManagerConfig::default,
);

/// The schema as the database's catalog lists it, and Diesel's harness on it.
pub trait Schema {
    /// Every table, index, trigger, function and type of the test's database or schema
    /// (Diesel's own migrations table aside), one line each, sorted.
    fn catalog(&mut self) -> Vec<String>;
    /// Runs, with Diesel's harness, the crate's migrations up to version `last`.
    fn migrate_up_to(&mut self, last: &str);
    /// Reverts every applied migration of the crate with Diesel's harness; how many.
    fn revert_all(&mut self) -> usize;
    /// Reverts the crate's latest applied migration with Diesel's harness.
    fn revert_last(&mut self);
    /// How many of the crate's migrations Diesel's harness finds pending.
    fn pending(&mut self) -> usize;
}

/// Instantiates each listed behaviour, a `fn name<D: TestDb>(db: &D)` of the including
/// file, as a `#[test]` in the modules `sqlite`, `postgres` and `mysql`; after `empty:`,
/// each gets a database without tables.
#[macro_export]
macro_rules! backend_suite {
    (empty: $($test:ident),* $(,)?) => {
        $crate::backend_suite!(@with run_empty: $($test),*);
    };
    ($($test:ident),* $(,)?) => {
        $crate::backend_suite!(@with run: $($test),*);
    };
    (flavours: $($test:ident),* $(,)?) => {
        #[cfg(feature = "sqlite")]
        mod sqlite {
            $( #[test] fn $test() { $crate::common::run_subject::<$crate::common::SqliteDb>(super::$test::<$crate::common::SqliteDb>) } )*
        }
        #[cfg(feature = "postgres")]
        mod postgres {
            $( #[test] fn $test() { $crate::common::run_subject::<$crate::common::PgDb>(super::$test::<$crate::common::PgDb>) } )*
        }
        #[cfg(feature = "mysql")]
        mod mysql {
            $( #[test] fn $test() { $crate::common::run_subject::<$crate::common::MysqlDb>(super::$test::<$crate::common::MysqlDb>) } )*
        }
        #[cfg(all(feature = "sqlite", feature = "diesel-async"))]
        mod sqlite_async {
            type S = $crate::common::Async<$crate::common::SqliteDb>;
            $( #[test] fn $test() { $crate::common::run_subject::<S>(super::$test::<S>) } )*
        }
        #[cfg(all(feature = "postgres", feature = "diesel-async"))]
        mod postgres_async {
            type S = $crate::common::Async<$crate::common::PgDb>;
            $( #[test] fn $test() { $crate::common::run_subject::<S>(super::$test::<S>) } )*
        }
        #[cfg(all(feature = "mysql", feature = "diesel-async"))]
        mod mysql_async {
            type S = $crate::common::Async<$crate::common::MysqlDb>;
            $( #[test] fn $test() { $crate::common::run_subject::<S>(super::$test::<S>) } )*
        }
    };
    (@with $runner:ident: $($test:ident),*) => {
        #[cfg(feature = "sqlite")]
        mod sqlite {
            $( #[test] fn $test() { $crate::common::$runner::<$crate::common::SqliteDb>(super::$test::<$crate::common::SqliteDb>) } )*
        }
        #[cfg(feature = "postgres")]
        mod postgres {
            $( #[test] fn $test() { $crate::common::$runner::<$crate::common::PgDb>(super::$test::<$crate::common::PgDb>) } )*
        }
        #[cfg(feature = "mysql")]
        mod mysql {
            $( #[test] fn $test() { $crate::common::$runner::<$crate::common::MysqlDb>(super::$test::<$crate::common::MysqlDb>) } )*
        }
    };
}

/// The statements a connection started, SQL and binds as Diesel prints them, and the SQL
/// of those it put in its prepared-statement cache.
#[derive(Clone, Default)]
pub struct Capture(
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
);

impl Capture {
    /// Starts recording every statement `conn` runs.
    pub fn on<C: Connection>(conn: &mut C) -> Self {
        let capture = Self::default();
        conn.set_instrumentation(capture.clone());
        capture
    }

    /// The first recorded statement that `pick` accepts.
    /// Every statement captured so far, in order.
    pub fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    /// The SQL of every statement the connection kept prepared so far, in order.
    #[allow(dead_code)]
    pub fn cached(&self) -> Vec<String> {
        self.1.lock().unwrap().clone()
    }

    pub fn find(&self, pick: impl Fn(&str) -> bool) -> String {
        self.0
            .lock()
            .unwrap()
            .iter()
            .find(|s| pick(s))
            .cloned()
            .expect("the statement was run")
    }
}

impl diesel::connection::Instrumentation for Capture {
    fn on_connection_event(&mut self, event: diesel::connection::InstrumentationEvent<'_>) {
        match event {
            diesel::connection::InstrumentationEvent::StartQuery { query, .. } => {
                self.0.lock().unwrap().push(query.to_string());
            }
            diesel::connection::InstrumentationEvent::CacheQuery { sql, .. } => {
                self.1.lock().unwrap().push(sql.to_owned());
            }
            _ => {}
        }
    }
}

/// A captured statement's SQL and its binds, each a number or a boolean literal.
pub fn split_binds(captured: &str) -> (&str, Vec<String>) {
    let (sql, binds) = captured
        .split_once(" -- binds: [")
        .expect("a statement with binds");
    let binds = binds
        .trim_end_matches(']')
        .split(", ")
        .map(|value| {
            assert!(
                value.parse::<i64>().is_ok() || value == "true" || value == "false",
                "only numbers and booleans can be written in: {value}"
            );
            value.to_owned()
        })
        .collect();
    (sql, binds)
}

// ---------------------------------------------------------------- both flavours

/// A connection a behaviour test calls the inbox on: a Diesel connection for the blocking
/// `Inbox`, or an async one for `AsyncInbox`, which the test drives on a runtime.
pub trait TestConn: Probe {
    /// The blocking connection behind it.
    type Blocking: InboxConnection;
    /// The async connection behind it.
    #[cfg(feature = "diesel-async")]
    type Async: directmessages::AsyncInboxConnection;
    /// The connection to run an operation on.
    fn drive(&mut self) -> Driven<'_, Self>;
    /// The caller's own transaction around `f`.
    fn transaction<T, E: From<diesel::result::Error>>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, E>,
    ) -> Result<T, E>;
}

/// The connection an operation runs on, with the runtime that drives an async one.
pub enum Driven<'a, C: TestConn + ?Sized> {
    Blocking(&'a mut C::Blocking),
    #[cfg(feature = "diesel-async")]
    Async(&'a tokio::runtime::Runtime, &'a mut C::Async),
}

/// The inbox as the behaviour tests call it: `Inbox` itself, or an `AsyncInbox` made from
/// one (keeping its handlers), whose futures are driven to completion.
pub enum TestInbox {
    Blocking(directmessages::Inbox),
    #[cfg(feature = "diesel-async")]
    Async(directmessages::AsyncInbox),
}

macro_rules! forward {
    ($( fn $name:ident( $($arg:ident: $ty:ty),* ) -> $ret:ty; )*) => {
        impl TestInbox {
            $(
                pub fn $name<C: TestConn + ?Sized>(
                    &self,
                    conn: &mut C
                    $(, $arg: $ty)*
                ) -> directmessages::Result<$ret> {
                    match (self, conn.drive()) {
                        (TestInbox::Blocking(inbox), Driven::Blocking(conn)) => {
                            inbox.$name(conn $(, $arg)*)
                        }
                        #[cfg(feature = "diesel-async")]
                        (TestInbox::Async(inbox), Driven::Async(rt, conn)) => {
                            rt.block_on(inbox.$name(conn $(, $arg)*))
                        }
                        #[allow(unreachable_patterns)]
                        _ => panic!("an inbox of one flavour called on a connection of the other"),
                    }
                }
            )*
        }
    };
}

forward! {
    fn send_message(sender: i64, recipient: i64, content: &str) -> directmessages::Message;
    fn unread_messages(user: i64) -> Vec<directmessages::Message>;
    fn unread_count(user: i64) -> i64;
    fn read_message(id: i64) -> directmessages::Message;
    fn read_message_as(reader: i64, id: i64) -> directmessages::Message;
    fn conversation_partners(user: i64) -> Vec<i64>;
    fn conversation(
        user: i64,
        partner: i64,
        query: directmessages::ConversationQuery
    ) -> Vec<directmessages::Message>;
    fn conversations(
        user: i64,
        query: directmessages::ConversationsQuery
    ) -> Vec<directmessages::ConversationSummary>;
    fn mark_conversation_read(user: i64, partner: i64) -> usize;
    fn delete_message(user: i64, id: i64) -> ();
    fn unsend_message(sender: i64, id: i64) -> ();
    fn edit_message(editor: i64, id: i64, content: &str) -> directmessages::Message;
    fn block_user(user: i64, blocked: i64) -> ();
    fn unblock_user(user: i64, blocked: i64) -> ();
    fn archive_conversation(user: i64, partner: i64) -> ();
    fn unarchive_conversation(user: i64, partner: i64) -> ();
    fn mute_conversation(user: i64, partner: i64) -> ();
    fn unmute_conversation(user: i64, partner: i64) -> ();
    fn is_blocked(user: i64, other: i64) -> bool;
    fn purge_user(user: i64) -> u64;
    fn search(user: i64, query: directmessages::SearchQuery) -> Vec<directmessages::Message>;
}

impl TestInbox {
    /// Sends `n` messages from `from` to `to`, "`prefix`0", "`prefix`1", …; their ids in
    /// order.
    pub fn send_numbered<C: TestConn + ?Sized>(
        &self,
        conn: &mut C,
        from: i64,
        to: i64,
        n: usize,
        prefix: &str,
    ) -> Vec<i64> {
        (0..n)
            .map(|i| {
                self.send_message(conn, from, to, &format!("{prefix}{i}"))
                    .unwrap()
                    .id
            })
            .collect()
    }

    pub fn signals(&self) -> &directmessages::Signals {
        match self {
            TestInbox::Blocking(inbox) => inbox.signals(),
            #[cfg(feature = "diesel-async")]
            TestInbox::Async(inbox) => inbox.signals(),
        }
    }

    pub fn read_message_formatted<C: TestConn + ?Sized>(
        &self,
        conn: &mut C,
        id: i64,
        sender_name: impl FnOnce(i64) -> String + Send,
    ) -> directmessages::Result<String> {
        match (self, conn.drive()) {
            (TestInbox::Blocking(inbox), Driven::Blocking(conn)) => {
                inbox.read_message_formatted(conn, id, sender_name)
            }
            #[cfg(feature = "diesel-async")]
            (TestInbox::Async(inbox), Driven::Async(rt, conn)) => {
                rt.block_on(inbox.read_message_formatted(conn, id, sender_name))
            }
            #[allow(unreachable_patterns)]
            _ => panic!("an inbox of one flavour called on a connection of the other"),
        }
    }
}

/// `run_migrations` or `run_migrations_async`, as the connection's flavour has it.
pub fn run_migrations<C: TestConn + ?Sized>(conn: &mut C) -> directmessages::Result<()> {
    match conn.drive() {
        Driven::Blocking(conn) => directmessages::run_migrations(conn),
        #[cfg(feature = "diesel-async")]
        Driven::Async(rt, conn) => rt.block_on(directmessages::run_migrations_async(conn)),
    }
}

/// A pool a concurrency test takes connections from.
pub trait TestPool: Sync {
    /// What the pool lends.
    type Conn: TestConn + Send;
    /// A connection; `&mut *conn` is what the inbox is called on.
    fn get(&self) -> Result<Box<Self::Conn>, String>;
}

impl<C> TestPool for Pool<ConnectionManager<C>>
where
    C: TestConn + R2D2Connection + Send + 'static,
{
    type Conn = diesel::r2d2::PooledConnection<ConnectionManager<C>>;
    fn get(&self) -> Result<Box<Self::Conn>, String> {
        Pool::get(self).map(Box::new).map_err(|e| e.to_string())
    }
}

impl<C> Probe for diesel::r2d2::PooledConnection<ConnectionManager<C>>
where
    C: Probe + R2D2Connection + 'static,
{
    fn prepare(&mut self) {
        (**self).prepare()
    }
    fn counts(&mut self) -> (i64, i64, i64) {
        (**self).counts()
    }
    fn conversation_rows(&mut self) -> BTreeMap<(i64, i64), (Option<i64>, i64)> {
        (**self).conversation_rows()
    }
    fn expected_conversation_rows(&mut self) -> BTreeMap<(i64, i64), (Option<i64>, i64)> {
        (**self).expected_conversation_rows()
    }
    fn conversation_rows_mentioning(&mut self, user: i64) -> i64 {
        (**self).conversation_rows_mentioning(user)
    }
    fn search_rows_of(&mut self, id: i64) -> i64 {
        (**self).search_rows_of(id)
    }
    fn deletion_flags(&mut self, id: i64) -> Option<(bool, bool)> {
        (**self).deletion_flags(id)
    }
    fn seed_unread(&mut self, sender: i64, recipient: i64, n: usize) {
        (**self).seed_unread(sender, recipient, n)
    }
    fn set_read_only(&mut self) {
        (**self).set_read_only()
    }
    fn set_sent_at(&mut self, id: i64, at: DateTime<Utc>) {
        (**self).set_sent_at(id, at)
    }
    fn sent_at(&mut self, id: i64) -> DateTime<Utc> {
        (**self).sent_at(id)
    }
    fn count_sent_after(&mut self, at: DateTime<Utc>) -> i64 {
        (**self).count_sent_after(at)
    }
    fn clock_inversions(&mut self) -> Vec<(i64, i64)> {
        (**self).clock_inversions()
    }
    fn set_statement_timeout_ms(&mut self, ms: u32) {
        (**self).set_statement_timeout_ms(ms)
    }
    fn session_id(&mut self) -> i64 {
        (**self).session_id()
    }
    fn cancel_statement(&mut self, id: i64) {
        (**self).cancel_statement(id)
    }
}

impl<C> TestConn for diesel::r2d2::PooledConnection<ConnectionManager<C>>
where
    C: TestConn + R2D2Connection + 'static,
{
    type Blocking = C::Blocking;
    #[cfg(feature = "diesel-async")]
    type Async = C::Async;
    fn drive(&mut self) -> Driven<'_, Self> {
        match (**self).drive() {
            Driven::Blocking(conn) => Driven::Blocking(conn),
            #[cfg(feature = "diesel-async")]
            Driven::Async(rt, conn) => Driven::Async(rt, conn),
        }
    }
    fn transaction<T, E: From<diesel::result::Error>>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, E>,
    ) -> Result<T, E> {
        diesel::Connection::transaction(self, f)
    }
}

/// What a behaviour test runs against: a fresh database, and the inbox flavour.
pub trait Subject: Sized + Sync + 'static {
    /// The database, with its blocking connections.
    type Db: TestDb;
    /// A connection of this flavour.
    type Conn: TestConn + Send + 'static;
    /// A pool of them.
    type Pool: TestPool;
    /// A fresh, migrated database, or `None` when the backend is not configured.
    fn create() -> Option<Self>;
    /// A new connection.
    fn conn(&self) -> Self::Conn;
    /// A pool of `size` connections.
    fn pool(&self, size: u32) -> Self::Pool;
    /// The inbox `builder` makes (through the pooler, with `transaction_pooling`), in
    /// this flavour.
    fn inbox(builder: directmessages::InboxBuilder) -> TestInbox;
    /// The database, for what a test does beside the inbox under test.
    fn db(&self) -> &Self::Db;
}

impl<D: TestDb> Subject for D
where
    D::Conn: TestConn,
{
    type Db = D;
    type Conn = D::Conn;
    type Pool = Pool<ConnectionManager<D::Conn>>;
    fn create() -> Option<Self> {
        <D as TestDb>::create()
    }
    fn conn(&self) -> Self::Conn {
        TestDb::conn(self)
    }
    fn pool(&self, size: u32) -> Self::Pool {
        TestDb::pool(self, size)
    }
    fn inbox(builder: directmessages::InboxBuilder) -> TestInbox {
        TestInbox::Blocking(builder.transaction_pooling(D::pooled()).build())
    }
    fn db(&self) -> &D {
        self
    }
}

/// Runs `test` on a fresh subject under the watchdog, or prints why it is skipped.
pub fn run_subject<S: Subject>(test: impl FnOnce(&S) + Send + 'static) {
    run_on(S::create, test);
}

#[cfg(feature = "diesel-async")]
#[allow(unused_imports)]
pub use self::asynchronous::{establish_async, Async, AsyncTestDb};

#[cfg(feature = "diesel-async")]
mod asynchronous {
    use super::*;
    use diesel_async::{AsyncConnection, SimpleAsyncConnection, TransactionManager};
    use std::sync::Arc;
    use tokio::runtime::Runtime;

    /// A test database whose backend has an async connection.
    pub trait AsyncTestDb: TestDb {
        /// The backend's async connection.
        type Async: directmessages::AsyncInboxConnection + AsyncConnection + 'static;
        /// A connection its deadpool pool lends.
        type Pooled: directmessages::AsyncInboxConnection + AsyncConnection + Send + 'static;
        /// Its deadpool pool.
        type Pool: Send + Sync;
        /// A pool of `size` connections to `url`.
        fn async_pool(url: &str, size: u32) -> Self::Pool;
        /// A connection from `pool`.
        fn async_get(rt: &Runtime, pool: &Self::Pool) -> Result<Self::Pooled, String>;
        /// How its pools open and check connections (through a pooler in transaction
        /// mode, `TransactionPooler`'s).
        fn manager_config() -> diesel_async::pooled_connection::ManagerConfig<Self::Async>;
    }

    /// A new async connection of `D` to `url`, its statement cache off through a pooler.
    pub async fn establish_async<D: AsyncTestDb>(url: &str) -> ConnectionResult<D::Async> {
        (D::manager_config().custom_setup)(url).await
    }

    /// A database of `D` used through `AsyncInbox` on `D`'s async connections, driven on
    /// a runtime of two worker threads that every connection of the test shares.
    pub struct Async<D> {
        db: D,
        rt: Arc<Runtime>,
    }

    fn runtime() -> Arc<Runtime> {
        Arc::new(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("tokio runtime"),
        )
    }

    /// An async connection `A` of the database `D`, with the runtime that drives it and,
    /// for the probes, a blocking connection to the same database.
    pub struct AsyncConn<D: TestDb, A> {
        rt: Arc<Runtime>,
        conn: A,
        url: String,
        side: Option<D::Conn>,
    }

    impl<D: TestDb, A: SimpleAsyncConnection> AsyncConn<D, A> {
        fn new(rt: Arc<Runtime>, mut conn: A, url: &str) -> Self {
            rt.block_on(conn.batch_execute(D::PREPARE))
                .expect("prepare connection");
            Self {
                rt,
                conn,
                url: url.to_owned(),
                side: None,
            }
        }

        /// The blocking connection the probes read and write through.
        fn side(&mut self) -> &mut D::Conn {
            let url = &self.url;
            self.side.get_or_insert_with(|| {
                let mut conn = D::Conn::establish(url).expect("probe connection");
                prepare(&mut conn);
                conn
            })
        }
    }

    impl<D, A> Probe for AsyncConn<D, A>
    where
        D: TestDb,
        A: SimpleAsyncConnection,
    {
        fn prepare(&mut self) {
            self.rt
                .block_on(self.conn.batch_execute(D::PREPARE))
                .expect("prepare connection");
        }
        fn set_read_only(&mut self) {
            self.rt
                .block_on(self.conn.batch_execute(D::READ_ONLY))
                .expect("read-only");
        }
        fn counts(&mut self) -> (i64, i64, i64) {
            self.side().counts()
        }
        fn conversation_rows(&mut self) -> BTreeMap<(i64, i64), (Option<i64>, i64)> {
            self.side().conversation_rows()
        }
        fn expected_conversation_rows(&mut self) -> BTreeMap<(i64, i64), (Option<i64>, i64)> {
            self.side().expected_conversation_rows()
        }
        fn conversation_rows_mentioning(&mut self, user: i64) -> i64 {
            self.side().conversation_rows_mentioning(user)
        }
        fn search_rows_of(&mut self, id: i64) -> i64 {
            self.side().search_rows_of(id)
        }
        fn deletion_flags(&mut self, id: i64) -> Option<(bool, bool)> {
            self.side().deletion_flags(id)
        }
        fn seed_unread(&mut self, sender: i64, recipient: i64, n: usize) {
            self.side().seed_unread(sender, recipient, n)
        }
        fn set_sent_at(&mut self, id: i64, at: DateTime<Utc>) {
            self.side().set_sent_at(id, at)
        }
        fn sent_at(&mut self, id: i64) -> DateTime<Utc> {
            self.side().sent_at(id)
        }
        fn count_sent_after(&mut self, at: DateTime<Utc>) -> i64 {
            self.side().count_sent_after(at)
        }
        fn clock_inversions(&mut self) -> Vec<(i64, i64)> {
            self.side().clock_inversions()
        }
        fn set_statement_timeout_ms(&mut self, _: u32) {
            unimplemented!("the interruption tests run on blocking connections")
        }
        fn session_id(&mut self) -> i64 {
            unimplemented!("the interruption tests run on blocking connections")
        }
        fn cancel_statement(&mut self, _: i64) {
            unimplemented!("the interruption tests run on blocking connections")
        }
    }

    impl<D, A> TestConn for AsyncConn<D, A>
    where
        D: TestDb,
        D::Conn: TestConn,
        A: directmessages::AsyncInboxConnection + AsyncConnection,
    {
        type Blocking = <D::Conn as TestConn>::Blocking;
        type Async = A;

        fn drive(&mut self) -> Driven<'_, Self> {
            Driven::Async(&self.rt, &mut self.conn)
        }

        fn transaction<T, E: From<diesel::result::Error>>(
            &mut self,
            f: impl FnOnce(&mut Self) -> Result<T, E>,
        ) -> Result<T, E> {
            let rt = Arc::clone(&self.rt);
            rt.block_on(A::TransactionManager::begin_transaction(&mut self.conn))?;
            let result = f(self);
            match result {
                Ok(value) => {
                    rt.block_on(A::TransactionManager::commit_transaction(&mut self.conn))?;
                    Ok(value)
                }
                Err(e) => {
                    rt.block_on(A::TransactionManager::rollback_transaction(&mut self.conn))?;
                    Err(e)
                }
            }
        }
    }

    /// A deadpool pool of async connections.
    pub struct AsyncTestPool<D: AsyncTestDb> {
        rt: Arc<Runtime>,
        pool: D::Pool,
        url: String,
    }

    impl<D: AsyncTestDb> TestPool for AsyncTestPool<D>
    where
        D::Conn: TestConn + Send,
    {
        type Conn = AsyncConn<D, D::Pooled>;
        fn get(&self) -> Result<Box<Self::Conn>, String> {
            let conn = D::async_get(&self.rt, &self.pool)?;
            Ok(Box::new(AsyncConn::new(
                Arc::clone(&self.rt),
                conn,
                &self.url,
            )))
        }
    }

    impl<D: AsyncTestDb> Subject for Async<D>
    where
        D::Conn: TestConn + Send,
    {
        type Db = D;
        type Conn = AsyncConn<D, D::Async>;
        type Pool = AsyncTestPool<D>;

        /// A fresh database migrated by `run_migrations_async`.
        fn create() -> Option<Self> {
            let db = Async {
                db: D::create_empty()?,
                rt: runtime(),
            };
            let mut conn = db.conn();
            run_migrations(&mut conn).expect("migrations");
            Some(db)
        }

        fn conn(&self) -> Self::Conn {
            let conn = self
                .rt
                .block_on(establish_async::<D>(self.db.url()))
                .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", D::NAME));
            AsyncConn::new(Arc::clone(&self.rt), conn, self.db.url())
        }

        fn pool(&self, size: u32) -> Self::Pool {
            AsyncTestPool {
                rt: Arc::clone(&self.rt),
                pool: D::async_pool(self.db.url(), size),
                url: self.db.url().to_owned(),
            }
        }

        fn inbox(builder: directmessages::InboxBuilder) -> TestInbox {
            TestInbox::Async(builder.transaction_pooling(D::pooled()).build_async())
        }

        fn db(&self) -> &D {
            &self.db
        }
    }
}
