//! SQLite's one writer: connections opened with SQLite's defaults (no busy timeout) write
//! to one file from many threads and async tasks at once, and not one call fails with
//! "database is locked". The inbox waits out a busy database itself, in both journal
//! modes: with the rollback journal a reader also meets a busy database while a writer
//! commits, and a commit meets the readers.
#![cfg(feature = "sqlite")]

mod common;

use std::sync::Barrier;
use std::thread;

use diesel::connection::SimpleConnection;
use diesel::{Connection, SqliteConnection};
use directmessages::{ConversationQuery, ConversationsQuery, Inbox, SearchQuery};

use common::Probe;

const WRITERS: usize = 8;
const SENDS: usize = 40;

/// A SQLite file in `journal_mode`, migrated, removed on drop.
struct File(std::path::PathBuf);

impl File {
    fn new(journal_mode: &str) -> Self {
        let file = File(std::env::temp_dir().join(format!("{}.db", common::unique_name())));
        let mut conn = file.open();
        conn.batch_execute(&format!("PRAGMA journal_mode = {journal_mode}"))
            .expect("journal mode");
        directmessages::run_migrations(&mut conn).expect("migrations");
        file
    }

    fn url(&self) -> String {
        self.0.to_string_lossy().into_owned()
    }

    /// A connection with SQLite's defaults: no busy timeout, so every lock it cannot
    /// take at once is "database is locked".
    fn open(&self) -> SqliteConnection {
        SqliteConnection::establish(&self.url()).expect("open the file")
    }
}

impl Drop for File {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut name = self.0.clone().into_os_string();
            name.push(suffix);
            let _ = std::fs::remove_file(name);
        }
    }
}

/// What writer `t` does, each call on its own connection: sends to three partners, reads
/// what it received one by one and by conversation, archives, blocks and unblocks, and
/// reads its inbox, its count and its search between the writes.
fn writer_script(t: usize) -> Vec<Step> {
    let me = t as i64 + 1;
    let mut steps = Vec::new();
    for i in 0..SENDS {
        let to = (t + 1 + i % 3) % WRITERS + 1;
        steps.push(Step::Send(me, to as i64));
        match i % 8 {
            0 => steps.push(Step::ReadReceived(me)),
            1 => steps.push(Step::MarkAll(me)),
            2 => steps.push(Step::Page(me)),
            3 => steps.push(Step::Archive(me, to as i64)),
            4 => steps.push(Step::BlockAndUnblock(me, 99)),
            5 => steps.push(Step::Inbox(me)),
            6 => steps.push(Step::Search(me)),
            _ => steps.push(Step::Count(me)),
        }
    }
    steps
}

#[derive(Debug, Clone, Copy)]
enum Step {
    Send(i64, i64),
    ReadReceived(i64),
    MarkAll(i64),
    Page(i64),
    Archive(i64, i64),
    BlockAndUnblock(i64, i64),
    Inbox(i64),
    Search(i64),
    Count(i64),
}

/// Runs `step` with the blocking inbox; every call must succeed.
fn run_blocking(inbox: &Inbox, conn: &mut SqliteConnection, step: Step) {
    let what = format!("{step:?}");
    match step {
        Step::Send(me, to) => drop(
            inbox
                .send_message(conn, me, to, "hello there")
                .expect(&what),
        ),
        Step::ReadReceived(me) => {
            for m in inbox.unread_messages(conn, me).expect(&what) {
                inbox.read_message_as(conn, me, m.id).expect(&what);
            }
        }
        Step::MarkAll(me) => {
            for partner in inbox.conversation_partners(conn, me).expect(&what) {
                inbox
                    .mark_conversation_read(conn, me, partner)
                    .expect(&what);
            }
        }
        Step::Page(me) => {
            for partner in inbox.conversation_partners(conn, me).expect(&what) {
                let page = ConversationQuery::new().reversed().limit(10).mark_read();
                inbox.conversation(conn, me, partner, page).expect(&what);
            }
        }
        Step::Archive(me, partner) => inbox.archive_conversation(conn, me, partner).expect(&what),
        Step::BlockAndUnblock(me, other) => {
            inbox.block_user(conn, me, other).expect(&what);
            inbox.unblock_user(conn, me, other).expect(&what);
        }
        Step::Inbox(me) => drop(
            inbox
                .conversations(conn, me, ConversationsQuery::new().limit(20))
                .expect(&what),
        ),
        Step::Search(me) => drop(
            inbox
                .search(conn, me, SearchQuery::new("hello").limit(5))
                .expect(&what),
        ),
        Step::Count(me) => drop(inbox.unread_count(conn, me).expect(&what)),
    }
}

/// After the writers: every message stored, the counters exact.
fn assert_consistent(file: &File, inbox: &Inbox) {
    let mut conn = file.open();
    assert_eq!(
        conn.counts().0,
        (WRITERS * SENDS) as i64,
        "every send stored"
    );
    assert_eq!(conn.conversation_rows(), conn.expected_conversation_rows());
    let unread: i64 = (1..=WRITERS as i64)
        .map(|u| inbox.unread_count(&mut conn, u).unwrap())
        .sum();
    let listed: usize = (1..=WRITERS as i64)
        .map(|u| inbox.unread_messages(&mut conn, u).unwrap().len())
        .sum();
    assert_eq!(
        unread, listed as i64,
        "the counters agree with the messages"
    );
}

fn writers_without_a_busy_timeout_all_succeed(journal_mode: &str) {
    let file = File::new(journal_mode);
    let inbox = Inbox::new();
    let start = Barrier::new(WRITERS);
    thread::scope(|s| {
        for t in 0..WRITERS {
            let (file, inbox, start) = (&file, &inbox, &start);
            s.spawn(move || {
                let mut conn = file.open();
                start.wait();
                for step in writer_script(t) {
                    run_blocking(inbox, &mut conn, step);
                }
            });
        }
    });
    assert_consistent(&file, &inbox);
}

#[test]
fn threads_without_a_busy_timeout_never_see_a_locked_database_with_the_rollback_journal() {
    common::with_watchdog("rollback journal", || {
        writers_without_a_busy_timeout_all_succeed("DELETE")
    });
}

#[test]
fn threads_without_a_busy_timeout_never_see_a_locked_database_in_wal_mode() {
    common::with_watchdog("wal", || writers_without_a_busy_timeout_all_succeed("WAL"));
}

#[test]
fn a_send_waits_for_a_write_lock_another_connection_holds() {
    let file = File::new("DELETE");
    let mut holder = file.open();
    holder
        .batch_execute("BEGIN IMMEDIATE; CREATE TABLE app_table (x INTEGER)")
        .unwrap();
    let release = thread::spawn(move || {
        thread::sleep(std::time::Duration::from_millis(300));
        holder.batch_execute("COMMIT").unwrap();
    });
    let inbox = Inbox::new();
    let mut conn = file.open();
    let sent = inbox
        .send_message(&mut conn, 1, 2, "after the lock")
        .unwrap();
    release.join().unwrap();
    assert_eq!(inbox.unread_messages(&mut conn, 2).unwrap(), vec![sent]);
}

#[test]
fn a_read_waits_for_a_writer_holding_the_exclusive_lock() {
    // With the rollback journal, a writer about to commit holds an exclusive lock that
    // keeps every reader out; `BEGIN EXCLUSIVE` holds it for as long as the test needs.
    let file = File::new("DELETE");
    let inbox = Inbox::new();
    let mut conn = file.open();
    inbox.send_message(&mut conn, 1, 2, "one").unwrap();
    let mut holder = file.open();
    holder.batch_execute("BEGIN EXCLUSIVE").unwrap();
    let release = thread::spawn(move || {
        thread::sleep(std::time::Duration::from_millis(300));
        holder.batch_execute("COMMIT").unwrap();
    });
    assert_eq!(inbox.unread_count(&mut conn, 2).unwrap(), 1);
    assert_eq!(inbox.conversation_partners(&mut conn, 2).unwrap(), vec![1]);
    release.join().unwrap();
}

#[test]
fn inside_the_callers_transaction_a_busy_database_is_the_callers_to_retry() {
    let file = File::new("DELETE");
    let inbox = Inbox::new();
    let mut holder = file.open();
    holder.batch_execute("BEGIN IMMEDIATE").unwrap();
    let mut conn = file.open();
    let outcome: Result<(), directmessages::Error> = conn.transaction(|conn| {
        // The caller's transaction is deferred: its first write meets the lock.
        inbox.send_message(conn, 1, 2, "inside").map(drop)
    });
    holder.batch_execute("ROLLBACK").unwrap();
    match outcome {
        Err(directmessages::Error::Database(e)) => {
            assert!(e.to_string().contains("database is locked"), "{e}")
        }
        other => panic!("expected the busy error, got {other:?}"),
    }
    assert_eq!(
        inbox.unread_count(&mut conn, 2).unwrap(),
        0,
        "nothing stored"
    );
}

#[cfg(feature = "diesel-async")]
mod asynchronous {
    use super::*;
    use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
    use diesel_async::AsyncConnection;
    use directmessages::AsyncInbox;

    type Conn = SyncConnectionWrapper<SqliteConnection>;

    async fn run_async(inbox: &AsyncInbox, conn: &mut Conn, step: Step) {
        let what = format!("{step:?}");
        match step {
            Step::Send(me, to) => drop(
                inbox
                    .send_message(conn, me, to, "hello there")
                    .await
                    .expect(&what),
            ),
            Step::ReadReceived(me) => {
                for m in inbox.unread_messages(conn, me).await.expect(&what) {
                    inbox.read_message_as(conn, me, m.id).await.expect(&what);
                }
            }
            Step::MarkAll(me) => {
                let partners = inbox.conversation_partners(conn, me).await.expect(&what);
                for partner in partners {
                    inbox
                        .mark_conversation_read(conn, me, partner)
                        .await
                        .expect(&what);
                }
            }
            Step::Page(me) => {
                let partners = inbox.conversation_partners(conn, me).await.expect(&what);
                for partner in partners {
                    let page = ConversationQuery::new().reversed().limit(10).mark_read();
                    inbox
                        .conversation(conn, me, partner, page)
                        .await
                        .expect(&what);
                }
            }
            Step::Archive(me, partner) => inbox
                .archive_conversation(conn, me, partner)
                .await
                .expect(&what),
            Step::BlockAndUnblock(me, other) => {
                inbox.block_user(conn, me, other).await.expect(&what);
                inbox.unblock_user(conn, me, other).await.expect(&what);
            }
            Step::Inbox(me) => drop(
                inbox
                    .conversations(conn, me, ConversationsQuery::new().limit(20))
                    .await
                    .expect(&what),
            ),
            Step::Search(me) => drop(
                inbox
                    .search(conn, me, SearchQuery::new("hello").limit(5))
                    .await
                    .expect(&what),
            ),
            Step::Count(me) => drop(inbox.unread_count(conn, me).await.expect(&what)),
        }
    }

    fn tasks_without_a_busy_timeout_all_succeed(journal_mode: &'static str) {
        let file = File::new(journal_mode);
        let inbox = std::sync::Arc::new(AsyncInbox::new());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let start = std::sync::Arc::new(tokio::sync::Barrier::new(WRITERS));
            let tasks: Vec<_> = (0..WRITERS)
                .map(|t| {
                    let (inbox, start, url) = (inbox.clone(), start.clone(), file.url());
                    tokio::spawn(async move {
                        let mut conn = Conn::establish(&url).await.expect("open the file");
                        start.wait().await;
                        for step in writer_script(t) {
                            run_async(&inbox, &mut conn, step).await;
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.expect("the task finished");
            }
        });
        assert_consistent(&file, &Inbox::new());
    }

    #[test]
    fn async_tasks_without_a_busy_timeout_never_see_a_locked_database_with_the_rollback_journal() {
        common::with_watchdog("async rollback journal", || {
            tasks_without_a_busy_timeout_all_succeed("DELETE")
        });
    }

    #[test]
    fn async_tasks_without_a_busy_timeout_never_see_a_locked_database_in_wal_mode() {
        common::with_watchdog("async wal", || {
            tasks_without_a_busy_timeout_all_succeed("WAL")
        });
    }

    #[test]
    fn a_deadpool_pool_from_the_customizer_has_the_settings_and_serves_writers() {
        use diesel_async::pooled_connection::deadpool::Pool;
        use diesel_async::RunQueryDsl;

        #[derive(diesel::QueryableByName)]
        struct Setting {
            #[diesel(sql_type = diesel::sql_types::Text)]
            value: String,
        }

        let file = File::new("DELETE");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let manager = directmessages::SqliteCustomizer::new()
                .busy_timeout(std::time::Duration::from_millis(2500))
                .wal(true)
                .manager(file.url());
            let pool = Pool::builder(manager).max_size(4).build().unwrap();
            let mut conn = pool.get().await.unwrap();
            let setting = |sql: &'static str| diesel::sql_query(sql);
            let timeout: Setting =
                setting("SELECT CAST(timeout AS TEXT) AS value FROM pragma_busy_timeout")
                    .get_result(&mut conn)
                    .await
                    .unwrap();
            let journal: Setting = setting("SELECT journal_mode AS value FROM pragma_journal_mode")
                .get_result(&mut conn)
                .await
                .unwrap();
            assert_eq!(
                (timeout.value.as_str(), journal.value.as_str()),
                ("2500", "wal")
            );
            drop(conn);

            let inbox = std::sync::Arc::new(AsyncInbox::new());
            let tasks: Vec<_> = (0..8)
                .map(|t| {
                    let (pool, inbox) = (pool.clone(), inbox.clone());
                    tokio::spawn(async move {
                        for _ in 0..20 {
                            let mut conn = pool.get().await.unwrap();
                            inbox
                                .send_message(&mut conn, t + 1, 100, "pooled")
                                .await
                                .unwrap();
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
            let mut conn = pool.get().await.unwrap();
            assert_eq!(inbox.unread_count(&mut conn, 100).await.unwrap(), 160);
        });
    }
}
