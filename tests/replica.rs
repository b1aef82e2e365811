//! A real streaming replica (`.ci/pgreplica`: a primary and a hot standby made from it by
//! `pg_basebackup`), given as `DIRECTMESSAGES_PG_REPLICA_URLS=primary,replica`: every call
//! the README lists as replica-safe answers on the replica as on the primary, every call
//! that writes is a typed `Error::Database` there with nothing changed, and `after(id)`
//! polling on the replica while the primary takes writes misses nothing.
#![cfg(feature = "postgres")]

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use directmessages::{ConversationQuery, ConversationsQuery, Error, Inbox, Message};

/// A schema of its own on the primary, seen through both servers; dropped on the primary.
struct Pair {
    primary_admin: String,
    schema: String,
    primary: String,
    replica: String,
}

impl Pair {
    fn new() -> Option<Self> {
        let urls = match std::env::var("DIRECTMESSAGES_PG_REPLICA_URLS") {
            Ok(urls) if !urls.is_empty() => urls,
            _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
                panic!("CI=true but DIRECTMESSAGES_PG_REPLICA_URLS is not set")
            }
            _ => {
                eprintln!("note: replica tests skipped: DIRECTMESSAGES_PG_REPLICA_URLS is not set");
                return None;
            }
        };
        let (primary, replica) = urls
            .split_once(',')
            .expect("DIRECTMESSAGES_PG_REPLICA_URLS is primary,replica");
        let schema = format!(
            "dm_replica_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos())
        );
        PgConnection::establish(primary)
            .expect("primary")
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .expect("schema");
        let with = |url: &str| {
            let separator = if url.contains('?') { '&' } else { '?' };
            format!("{url}{separator}options=-csearch_path%3D{schema}")
        };
        Some(Self {
            primary_admin: primary.to_owned(),
            primary: with(primary),
            replica: with(replica),
            schema,
        })
    }

    /// Waits until the replica has replayed everything the primary has written so far.
    fn caught_up(&self, primary: &mut PgConnection, replica: &mut PgConnection) {
        #[derive(QueryableByName)]
        struct Lsn {
            #[diesel(sql_type = diesel::sql_types::Text)]
            lsn: String,
        }
        #[derive(QueryableByName)]
        struct Replayed {
            #[diesel(sql_type = diesel::sql_types::Bool)]
            done: bool,
        }
        let lsn = diesel::sql_query("SELECT pg_current_wal_lsn()::text AS lsn")
            .get_result::<Lsn>(primary)
            .expect("primary lsn")
            .lsn;
        let start = Instant::now();
        loop {
            let done = diesel::sql_query(format!(
                "SELECT pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn AS done"
            ))
            .get_result::<Replayed>(replica)
            .expect("replica lsn")
            .done;
            if done {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the replica lags"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        if let Ok(mut admin) = PgConnection::establish(&self.primary_admin) {
            let _ = admin.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema));
        }
    }
}

/// What a user sees, read through the replica-safe calls.
#[derive(Debug, PartialEq)]
struct Seen {
    unread: Vec<Message>,
    unread_count: i64,
    conversations: Vec<(i64, i64, i64)>,
    partners: Vec<i64>,
    blocked: bool,
    page: Vec<Message>,
    read_again: Message,
    sender_view: Message,
}

fn seen(inbox: &Inbox, conn: &mut PgConnection, read: i64, unread: i64) -> Seen {
    Seen {
        unread: inbox.unread_messages(conn, 2).expect("unread_messages"),
        unread_count: inbox.unread_count(conn, 2).expect("unread_count"),
        conversations: inbox
            .conversations(conn, 2, ConversationsQuery::new())
            .expect("conversations")
            .into_iter()
            .map(|s| (s.partner, s.last_message.id, s.unread_count))
            .collect(),
        partners: inbox.conversation_partners(conn, 2).expect("partners"),
        blocked: inbox.is_blocked(conn, 2, 4).expect("is_blocked"),
        page: inbox
            .conversation(conn, 2, 1, ConversationQuery::new())
            .expect("conversation"),
        // An already read message, read again by its recipient; an unread one viewed by
        // its sender: neither marks anything.
        read_again: inbox.read_message_as(conn, 2, read).expect("read again"),
        sender_view: inbox.read_message_as(conn, 3, unread).expect("sender view"),
    }
}

#[test]
fn replica_safe_calls_answer_on_a_streaming_replica_and_writes_fail_there() {
    let Some(pair) = Pair::new() else { return };
    let inbox = Inbox::new();
    let mut primary = PgConnection::establish(&pair.primary).expect("primary");
    directmessages::run_migrations(&mut primary).expect("migrations");
    let read = inbox
        .send_message(&mut primary, 1, 2, "read one")
        .unwrap()
        .id;
    inbox.send_message(&mut primary, 2, 1, "an answer").unwrap();
    let unread = inbox
        .send_message(&mut primary, 3, 2, "unread one")
        .unwrap()
        .id;
    inbox
        .send_message(&mut primary, 1, 2, "and another")
        .unwrap();
    inbox.read_message_as(&mut primary, 2, read).unwrap();
    inbox.block_user(&mut primary, 2, 4).unwrap();
    let mut replica = PgConnection::establish(&pair.replica).expect("replica");
    pair.caught_up(&mut primary, &mut replica);

    let on_primary = seen(&inbox, &mut primary, read, unread);
    assert_eq!(on_primary.unread_count, 2);
    assert_eq!(seen(&inbox, &mut replica, read, unread), on_primary);

    // Every call that writes: a typed database error on the replica.
    let writes: Vec<(&str, directmessages::Result<()>)> = vec![
        (
            "send_message",
            inbox.send_message(&mut replica, 1, 2, "x").map(drop),
        ),
        (
            "read_message_as (unread)",
            inbox.read_message_as(&mut replica, 2, unread).map(drop),
        ),
        (
            "mark_conversation_read",
            inbox.mark_conversation_read(&mut replica, 2, 1).map(drop),
        ),
        (
            "conversation with mark_read",
            inbox
                .conversation(&mut replica, 2, 1, ConversationQuery::new().mark_read())
                .map(drop),
        ),
        (
            "delete_message",
            inbox.delete_message(&mut replica, 2, read),
        ),
        (
            "edit_message",
            inbox.edit_message(&mut replica, 1, read, "y").map(drop),
        ),
        (
            "unsend_message",
            inbox.unsend_message(&mut replica, 1, read),
        ),
        ("block_user", inbox.block_user(&mut replica, 2, 5)),
        ("unblock_user", inbox.unblock_user(&mut replica, 2, 4)),
        (
            "archive_conversation",
            inbox.archive_conversation(&mut replica, 2, 1),
        ),
        (
            "mute_conversation",
            inbox.mute_conversation(&mut replica, 2, 1),
        ),
        ("purge_user", inbox.purge_user(&mut replica, 3).map(drop)),
    ];
    for (call, result) in writes {
        assert!(
            matches!(result, Err(Error::Database(_))),
            "{call} on the replica: {result:?}"
        );
    }
    // Nothing changed, on either server.
    assert_eq!(seen(&inbox, &mut primary, read, unread), on_primary);
    assert_eq!(seen(&inbox, &mut replica, read, unread), on_primary);

    // The async flavour on the replica: the same answers, the same error.
    #[cfg(feature = "diesel-async")]
    async_reads_and_a_failing_write(&pair.replica, &on_primary, unread);
    assert_eq!(seen(&inbox, &mut primary, read, unread), on_primary);
}

#[cfg(feature = "diesel-async")]
fn async_reads_and_a_failing_write(url: &str, on_primary: &Seen, unread: i64) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        use diesel_async::AsyncConnection;
        let inbox = directmessages::AsyncInbox::new();
        let mut conn = diesel_async::AsyncPgConnection::establish(url)
            .await
            .expect("replica");
        assert_eq!(
            inbox.unread_messages(&mut conn, 2).await.unwrap(),
            on_primary.unread
        );
        assert_eq!(inbox.unread_count(&mut conn, 2).await.unwrap(), 2);
        assert_eq!(
            inbox.conversation_partners(&mut conn, 2).await.unwrap(),
            on_primary.partners
        );
        let page = inbox
            .conversation(&mut conn, 2, 1, ConversationQuery::new())
            .await
            .unwrap();
        assert_eq!(page, on_primary.page);
        assert!(matches!(
            inbox.send_message(&mut conn, 1, 2, "x").await,
            Err(Error::Database(_))
        ));
        assert!(matches!(
            inbox.read_message_as(&mut conn, 2, unread).await,
            Err(Error::Database(_))
        ));
    });
}

/// While the primary takes sends in both directions of a conversation, a reader polls the
/// replica with `after(id)` and small pages: it ends with every message once, in order.
#[test]
fn after_polling_on_the_replica_misses_nothing_while_the_primary_writes() {
    const SENDS: usize = 400;
    let Some(pair) = Pair::new() else { return };
    let inbox = Inbox::new();
    let mut primary = PgConnection::establish(&pair.primary).expect("primary");
    directmessages::run_migrations(&mut primary).expect("migrations");
    let mut replica = PgConnection::establish(&pair.replica).expect("replica");
    pair.caught_up(&mut primary, &mut replica);
    let done = AtomicBool::new(false);
    let (sent, polled) = std::thread::scope(|s| {
        let writers: Vec<_> = (0..2)
            .map(|w| {
                let (inbox, url) = (&inbox, &pair.primary);
                s.spawn(move || {
                    let mut conn = PgConnection::establish(url).expect("primary");
                    let (from, to) = if w == 0 { (1, 2) } else { (2, 1) };
                    (0..SENDS / 2)
                        .map(|i| {
                            inbox
                                .send_message(&mut conn, from, to, &format!("{w}:{i}"))
                                .expect("send")
                                .id
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let reader = s.spawn(|| {
            let mut seen: Vec<i64> = Vec::new();
            let mut after = 0;
            loop {
                let last_round = done.load(Ordering::SeqCst);
                let page = inbox
                    .conversation(
                        &mut replica,
                        1,
                        2,
                        ConversationQuery::new().after(after).limit(7),
                    )
                    .expect("poll");
                if let Some(last) = page.last() {
                    after = last.id;
                }
                let empty = page.is_empty();
                seen.extend(page.into_iter().map(|m| m.id));
                if last_round && empty {
                    return seen;
                }
                if empty {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        });
        let mut sent: Vec<i64> = writers
            .into_iter()
            .flat_map(|w| w.join().expect("writer"))
            .collect();
        let mut check = PgConnection::establish(&pair.replica).expect("replica");
        pair.caught_up(&mut primary, &mut check);
        done.store(true, Ordering::SeqCst);
        sent.sort_unstable();
        (sent, reader.join().expect("reader"))
    });
    assert_eq!(sent.len(), SENDS);
    assert!(
        polled.windows(2).all(|w| w[0] < w[1]),
        "in order, none twice"
    );
    assert_eq!(polled, sent, "every message seen on the replica");
}
