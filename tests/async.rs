//! What only the async inbox has: futures that are `Send` for every connection type,
//! current-thread runtimes, diesel-async's pools, migrations that mix with the blocking
//! inbox's, and connections whose future was dropped halfway. (Every behaviour of the
//! inbox itself runs on both flavours in `suite.rs` and `concurrency.rs`.)
#![cfg(feature = "diesel-async")]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use diesel::Connection;
use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use diesel_async::AsyncConnection;
use diesel_migrations::MigrationHarness;
use directmessages::{
    AsyncInbox, AsyncInboxConnection, ConversationQuery, ConversationsQuery, Inbox,
};

use common::{AsyncTestDb, Probe, TestDb};

fn assert_send<T: Send>(_: &T) {}

/// Every future of `AsyncInbox` on a `C` is `Send`: checked by the compiler for each
/// connection type listed in `every_connection_type_gives_send_futures`.
fn every_future_is_send<C: AsyncInboxConnection>(inbox: &AsyncInbox, conn: &mut C) {
    assert_send(&inbox.send_message(conn, 1, 2, "x"));
    assert_send(&inbox.unread_messages(conn, 1));
    assert_send(&inbox.unread_count(conn, 1));
    assert_send(&inbox.read_message(conn, 1));
    assert_send(&inbox.read_message_as(conn, 1, 1));
    assert_send(&inbox.read_message_formatted(conn, 1, |u| u.to_string()));
    assert_send(&inbox.conversation_partners(conn, 1));
    assert_send(&inbox.conversation(conn, 1, 2, ConversationQuery::new()));
    assert_send(&inbox.conversations(conn, 1, ConversationsQuery::new()));
    assert_send(&inbox.mark_conversation_read(conn, 1, 2));
    assert_send(&inbox.delete_message(conn, 1, 1));
    assert_send(&inbox.block_user(conn, 1, 2));
    assert_send(&inbox.unblock_user(conn, 1, 2));
    assert_send(&inbox.is_blocked(conn, 1, 2));
    assert_send(&inbox.purge_user(conn, 1));
    assert_send(&directmessages::run_migrations_async(conn));
}

/// The connection types of one backend: bare, and lent by each of diesel-async's pools.
macro_rules! send_checks {
    ($($conn:ty),* $(,)?) => {
        $(
            let _ = every_future_is_send::<$conn>;
            let _ = every_future_is_send::<diesel_async::pooled_connection::deadpool::Object<$conn>>;
            let _ = every_future_is_send::<diesel_async::pooled_connection::bb8::PooledConnection<'static, $conn>>;
            let _ = every_future_is_send::<diesel_async::pooled_connection::mobc::PooledConnection<$conn>>;
        )*
    };
}

#[test]
fn every_connection_type_gives_send_futures() {
    #[cfg(feature = "sqlite")]
    send_checks!(
        diesel_async::sync_connection_wrapper::SyncConnectionWrapper<diesel::SqliteConnection>
    );
    #[cfg(feature = "postgres")]
    send_checks!(diesel_async::AsyncPgConnection);
    #[cfg(feature = "mysql")]
    send_checks!(diesel_async::AsyncMysqlConnection);
}

#[test]
fn an_async_inbox_is_shared_between_tasks_like_an_inbox() {
    fn shared<T: Send + Sync + Default + 'static>() {}
    shared::<AsyncInbox>();
    shared::<Inbox>();
}

#[test]
fn an_async_inbox_keeps_the_limits_and_handlers_of_the_inbox_it_came_from() {
    let inbox = Inbox::builder().max_message_chars(3).build();
    let fired = Arc::new(AtomicUsize::new(0));
    let sink = Arc::clone(&fired);
    inbox.signals().on_message_sent(move |_| {
        sink.fetch_add(1, Ordering::SeqCst);
    });
    let inbox = AsyncInbox::from(inbox);
    assert_eq!(inbox.max_message_chars(), 3);
    assert!(matches!(
        inbox.validate(1, 2, "four"),
        Err(directmessages::Error::MessageTooLong { length: 4, max: 3 })
    ));
    let built = Inbox::builder().max_message_chars(7).build_async();
    assert_eq!(built.max_message_chars(), 7);
    #[cfg(feature = "sqlite")]
    {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut conn = diesel_async::sync_connection_wrapper::SyncConnectionWrapper::<
                diesel::SqliteConnection,
            >::establish(":memory:")
            .await
            .unwrap();
            directmessages::run_migrations_async(&mut conn)
                .await
                .unwrap();
            inbox.send_message(&mut conn, 1, 2, "hey").await.unwrap();
        });
        assert_eq!(fired.load(Ordering::SeqCst), 1, "the handler came along");
    }
}

/// A plain `#[tokio::test]` (current-thread runtime): every operation, a caller's own
/// transaction around one, and the connection still usable afterwards.
async fn a_current_thread_runtime_runs_every_operation<D: AsyncTestDb>(db: &D) {
    let mut conn = common::establish_async::<D>(db.url())
        .await
        .expect("connect");
    directmessages::run_migrations_async(&mut conn)
        .await
        .unwrap();
    let inbox = common::builder::<D>().build_async();
    let hi = inbox.send_message(&mut conn, 1, 2, "hi").await.unwrap();
    inbox.send_message(&mut conn, 2, 1, "hello").await.unwrap();
    assert_eq!(inbox.unread_count(&mut conn, 2).await.unwrap(), 1);
    assert_eq!(
        inbox.unread_messages(&mut conn, 2).await.unwrap(),
        vec![hi.clone()]
    );
    let read = inbox.read_message_as(&mut conn, 2, hi.id).await.unwrap();
    assert!(read.read_at.is_some());
    assert_eq!(
        inbox
            .read_message_formatted(&mut conn, hi.id, |u| format!("user {u}"))
            .await
            .unwrap(),
        "user 1: hi"
    );
    assert_eq!(
        inbox.conversation_partners(&mut conn, 1).await.unwrap(),
        vec![2]
    );
    let page = inbox
        .conversation(&mut conn, 1, 2, ConversationQuery::new().mark_read())
        .await
        .unwrap();
    assert_eq!(page.len(), 2);
    assert!(page.iter().all(|m| m.read_at.is_some()));
    let screen = inbox
        .conversations(&mut conn, 2, ConversationsQuery::new())
        .await
        .unwrap();
    assert_eq!((screen[0].partner, screen[0].unread_count), (1, 0));
    assert_eq!(
        inbox.mark_conversation_read(&mut conn, 1, 2).await.unwrap(),
        0
    );
    inbox.block_user(&mut conn, 2, 1).await.unwrap();
    assert!(inbox.is_blocked(&mut conn, 2, 1).await.unwrap());
    assert!(matches!(
        inbox.send_message(&mut conn, 1, 2, "let me in").await,
        Err(directmessages::Error::Blocked {
            sender: 1,
            recipient: 2
        })
    ));
    inbox.unblock_user(&mut conn, 2, 1).await.unwrap();
    inbox.delete_message(&mut conn, 1, hi.id).await.unwrap();

    // A caller's own transaction that rolls back takes the inbox's write with it.
    let rolled_back: Result<(), directmessages::Error> = conn
        .transaction(async |conn| {
            inbox.send_message(conn, 1, 2, "never mind").await?;
            Err(directmessages::Error::EmptyMessage)
        })
        .await;
    assert!(rolled_back.is_err());
    assert_eq!(inbox.purge_user(&mut conn, 1).await.unwrap(), 2);
    assert_eq!(TestDb::conn(db).counts(), (0, 0, 0));
}

/// `a_current_thread_runtime_runs_every_operation` on the runtime `#[tokio::test]` builds.
fn on_a_current_thread_runtime<D: AsyncTestDb>(db: &D) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(a_current_thread_runtime_runs_every_operation(db));
}

/// Sends from tasks spawned on a multi-thread runtime (what an axum handler is), each
/// holding a connection lent by one of diesel-async's pools and passing `&mut pooled`.
fn tasks_send_through_deadpool_bb8_and_mobc<D: AsyncTestDb>(db: &D)
where
    diesel_async::pooled_connection::deadpool::Object<D::Async>: AsyncInboxConnection,
    for<'a> diesel_async::pooled_connection::bb8::PooledConnection<'a, D::Async>:
        AsyncInboxConnection,
    diesel_async::pooled_connection::mobc::PooledConnection<D::Async>: AsyncInboxConnection,
    AsyncDieselConnectionManager<D::Async>: deadpool::managed::Manager<Type = D::Async>
        + bb8::ManageConnection<Connection = D::Async>
        + mobc::Manager<Connection = D::Async>,
{
    const TASKS: i64 = 4;
    const EACH: i64 = 25;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let url = db.url().to_owned();
    let inbox = Arc::new(common::builder::<D>().build_async());
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&sent);
    inbox.signals().on_message_sent(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    rt.block_on(async {
        let deadpool = diesel_async::pooled_connection::deadpool::Pool::<D::Async>::builder(
            manager::<D>(&url),
        )
        .max_size(2)
        .build()
        .unwrap();
        let bb8 = diesel_async::pooled_connection::bb8::Pool::<D::Async>::builder()
            .max_size(2)
            .build(manager::<D>(&url))
            .await
            .unwrap_or_else(|_| panic!("bb8 pool"));
        let mobc = diesel_async::pooled_connection::mobc::Pool::<D::Async>::builder()
            .max_open(2)
            .build(manager::<D>(&url));
        let mut tasks = Vec::new();
        for t in 0..TASKS {
            let (inbox, deadpool, bb8, mobc) = (
                Arc::clone(&inbox),
                deadpool.clone(),
                bb8.clone(),
                mobc.clone(),
            );
            tasks.push(tokio::spawn(async move {
                for i in 0..EACH {
                    let (from, to) = (t + 1, 10 + i % 3);
                    let text = format!("{t}:{i}");
                    match i % 3 {
                        0 => {
                            let mut pooled =
                                deadpool.get().await.unwrap_or_else(|_| panic!("pooled"));
                            inbox
                                .send_message(&mut pooled, from, to, &text)
                                .await
                                .unwrap();
                        }
                        1 => {
                            let mut pooled = bb8.get().await.unwrap_or_else(|_| panic!("pooled"));
                            inbox
                                .send_message(&mut pooled, from, to, &text)
                                .await
                                .unwrap();
                        }
                        _ => {
                            let mut pooled = mobc.get().await.unwrap_or_else(|_| panic!("pooled"));
                            inbox
                                .send_message(&mut *pooled, from, to, &text)
                                .await
                                .unwrap();
                        }
                    }
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let mut pooled = deadpool.get().await.unwrap_or_else(|_| panic!("pooled"));
        let total: i64 = futures_sum(&inbox, &mut pooled, 10..13).await;
        assert_eq!(total, TASKS * EACH, "every message counted unread once");
    });
    assert_eq!(sent.load(Ordering::SeqCst) as i64, TASKS * EACH);
    let mut conn = TestDb::conn(db);
    assert_eq!(conn.counts().0, TASKS * EACH);
    assert_eq!(conn.conversation_rows(), conn.expected_conversation_rows());
}

/// A manager whose connections are prepared like the harness's (on SQLite: a busy
/// timeout, without which concurrent writers fail with "database is locked").
fn manager<D: AsyncTestDb>(url: &str) -> AsyncDieselConnectionManager<D::Async>
where
    D::Async: diesel_async::SimpleAsyncConnection,
{
    let mut config = D::manager_config();
    config.custom_setup = Box::new(|url| {
        Box::pin(async move {
            let mut conn = common::establish_async::<D>(url).await?;
            diesel_async::SimpleAsyncConnection::batch_execute(&mut conn, D::PREPARE)
                .await
                .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
            Ok(conn)
        })
    });
    AsyncDieselConnectionManager::new_with_config(url, config)
}

async fn futures_sum<C: AsyncInboxConnection>(
    inbox: &AsyncInbox,
    conn: &mut C,
    users: std::ops::Range<i64>,
) -> i64 {
    let mut total = 0;
    for user in users {
        total += inbox.unread_count(conn, user).await.unwrap();
    }
    total
}

/// Instances starting together on an empty database, half of them blocking and half
/// async: both runners take the same lock and record the same versions, and Diesel's own
/// harness finds nothing left to apply.
fn blocking_and_async_instances_starting_together_all_migrate<D: AsyncTestDb>(db: &D)
where
    D::Conn: MigrationHarness<<D::Conn as Connection>::Backend>,
{
    const STARTERS: usize = 8;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let start = Barrier::new(STARTERS);
    let results: Vec<Result<(), String>> = thread::scope(|s| {
        let handles: Vec<_> = (0..STARTERS)
            .map(|i| {
                let (start, rt) = (&start, &rt);
                s.spawn(move || {
                    if i % 2 == 0 {
                        let mut conn = common::establish::<D>(db.url()).expect("connect");
                        start.wait();
                        directmessages::run_migrations(&mut conn).map_err(|e| e.to_string())
                    } else {
                        let mut conn = rt
                            .block_on(common::establish_async::<D>(db.url()))
                            .expect("connect");
                        start.wait();
                        rt.block_on(directmessages::run_migrations_async(&mut conn))
                            .map_err(|e| e.to_string())
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (i, result) in results.iter().enumerate() {
        assert_eq!(result, &Ok(()), "instance {i}");
    }
    let dir = format!("{}/migrations/{}", env!("CARGO_MANIFEST_DIR"), D::NAME);
    let source = diesel_migrations::FileBasedMigrations::from_path(&dir).expect("migrations");
    let mut conn = TestDb::conn(db);
    let pending = conn.pending_migrations(source).expect("pending migrations");
    assert!(
        pending.is_empty(),
        "Diesel's harness would apply {} again",
        pending.len()
    );
    let inbox = common::builder::<D>().build();
    let m = inbox.send_message(&mut conn, 1, 2, "schema works").unwrap();
    assert_eq!(inbox.read_message_as(&mut conn, 2, m.id).unwrap().id, m.id);
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
/// A send whose future is dropped while it waits for a lock inside its transaction (a
/// client gone): the pool discards the connection rather than lend it still inside that
/// transaction, and nothing of the send is committed.
fn a_future_dropped_inside_its_transaction_commits_nothing<D: AsyncTestDb>(db: &D)
where
    diesel_async::pooled_connection::deadpool::Object<D::Async>: AsyncInboxConnection,
    AsyncDieselConnectionManager<D::Async>: deadpool::managed::Manager<Type = D::Async>,
{
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let inbox = common::builder::<D>().build_async();
    let mut blocker = TestDb::conn(db);
    common::builder::<D>()
        .build()
        .send_message(&mut blocker, 1, 2, "first")
        .unwrap();
    let pool = diesel_async::pooled_connection::deadpool::Pool::<D::Async>::builder(
        AsyncDieselConnectionManager::new(db.url()),
    )
    .max_size(1)
    .build()
    .unwrap();
    let dropped = diesel::Connection::transaction(&mut blocker, |blocker| {
        // Hold the conversation's row lock, so the send waits inside its transaction.
        diesel::connection::SimpleConnection::batch_execute(
            blocker,
            "UPDATE direct_message_conversations SET unread_count = unread_count \
             WHERE owner_id = 1 AND partner_id = 2",
        )?;
        let timed_out = rt.block_on(async {
            let mut pooled = pool.get().await.unwrap_or_else(|_| panic!("pooled"));
            tokio::time::timeout(
                std::time::Duration::from_millis(300),
                inbox.send_message(&mut pooled, 1, 2, "never sent"),
            )
            .await
            .is_err()
        });
        Ok::<_, diesel::result::Error>(timed_out)
    })
    .unwrap();
    assert!(dropped, "the send waited for the lock and was dropped");
    let (again, status) = rt.block_on(async {
        let mut pooled = pool.get().await.unwrap_or_else(|_| panic!("pooled"));
        let again = inbox.send_message(&mut pooled, 1, 2, "second").await;
        (again, pool.status())
    });
    again.expect("a connection lent after the drop works");
    assert_eq!(status.size, 1);
    let texts: Vec<String> = common::builder::<D>()
        .build()
        .conversation(&mut blocker, 1, 2, ConversationQuery::new())
        .unwrap()
        .into_iter()
        .map(|m| m.content)
        .collect();
    assert_eq!(texts, ["first", "second"]);
    assert_eq!(
        blocker.conversation_rows(),
        blocker.expected_conversation_rows()
    );
}

/// The async send to an existing conversation counts its statements like the blocking one
/// (`tests/round_trips.rs`), except that on PostgreSQL its one statement stays inside a
/// transaction: a future dropped while it waits for the conversation's lock must leave
/// nothing to commit (see `a_future_dropped_inside_its_transaction_commits_nothing`).
fn an_async_send_to_an_existing_conversation<D: AsyncTestDb>(db: &D) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let sent = rt.block_on(async {
        let mut conn = common::establish_async::<D>(db.url())
            .await
            .expect("connect");
        directmessages::run_migrations_async(&mut conn)
            .await
            .unwrap();
        let inbox = common::builder::<D>().build_async();
        inbox.send_message(&mut conn, 1, 2, "first").await.unwrap();
        let captured = common::Capture::default();
        conn.set_instrumentation(captured.clone());
        inbox.send_message(&mut conn, 2, 1, "second").await.unwrap();
        captured.all()
    });
    let expected = match D::NAME {
        "mysql" => 11,
        "postgres" => 3,
        _ => 6,
    };
    assert_eq!(sent.len(), expected, "{sent:#?}");
}

backend_suite!(
    empty: on_a_current_thread_runtime,
    an_async_send_to_an_existing_conversation,
    blocking_and_async_instances_starting_together_all_migrate,
);

mod pools {
    use super::*;
    backend_suite!(tasks_send_through_deadpool_bb8_and_mobc);
}

/// SQLite's operations run whole on a blocking thread: a dropped future cannot leave
/// half a transaction behind there, so this one is for the servers.
#[cfg(any(feature = "postgres", feature = "mysql"))]
mod servers {
    use super::*;

    #[cfg(feature = "postgres")]
    #[test]
    fn postgres_future_dropped_inside_its_transaction() {
        common::run::<common::PgDb>(a_future_dropped_inside_its_transaction_commits_nothing);
    }

    #[cfg(feature = "mysql")]
    #[test]
    fn mysql_future_dropped_inside_its_transaction() {
        common::run::<common::MysqlDb>(a_future_dropped_inside_its_transaction_commits_nothing);
    }
}
