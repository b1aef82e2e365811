//! Many connections at once, through a pool, on every enabled backend.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;

use directmessages::{ConversationQuery, ConversationsQuery, Inbox, SearchQuery};

use common::{Probe, ReadLog, Subject, TestConn, TestPool};

const THREADS: usize = 8;

fn eight_readers_fire_message_read_once_per_message<D: Subject>(db: &D) {
    let inbox = D::inbox(Inbox::builder());
    let fired = Arc::new(Mutex::new(HashMap::<i64, usize>::new()));
    let sink = Arc::clone(&fired);
    inbox.signals().on_message_read(move |e| {
        *sink.lock().unwrap().entry(e.message.id).or_default() += 1;
    });
    let mut conn = db.conn();
    let senders = [2, 3, 4, 5, 6];
    let ids: Vec<i64> = (0..500)
        .map(|i| {
            inbox
                .send_message(&mut conn, senders[i % 5], 1, &format!("m{i}"))
                .unwrap()
                .id
        })
        .collect();

    let pool = db.pool(THREADS as u32);
    let start = Barrier::new(THREADS);
    thread::scope(|s| {
        for t in 0..THREADS {
            let (pool, inbox, ids, start) = (&pool, &inbox, &ids, &start);
            s.spawn(move || {
                let mut conn = pool.get().expect("pooled connection");
                start.wait();
                // Every thread walks all messages from its own offset, each by another
                // path to the same guarded UPDATE.
                for k in 0..ids.len() {
                    let id = ids[(k + t * 61) % ids.len()];
                    match t % 4 {
                        0 => drop(inbox.read_message(&mut *conn, id).unwrap()),
                        1 => drop(inbox.read_message_as(&mut *conn, 1, id).unwrap()),
                        2 if k % 100 == 0 => {
                            for sender in senders {
                                inbox.mark_conversation_read(&mut *conn, 1, sender).unwrap();
                            }
                        }
                        3 if k % 50 == 0 => {
                            let q = ConversationQuery::new().limit(40).after(id - 1).mark_read();
                            inbox
                                .conversation(&mut *conn, 1, senders[k % 5], q)
                                .unwrap();
                        }
                        _ => {}
                    }
                }
            });
        }
    });

    assert_eq!(
        inbox.unread_count(&mut conn, 1).unwrap(),
        0,
        "every message ends read"
    );
    let fired = fired.lock().unwrap();
    assert_eq!(
        fired.len(),
        ids.len(),
        "message_read fired for every message"
    );
    assert!(
        fired.values().all(|&n| n == 1),
        "message_read fired twice for a message"
    );
    assert_eq!(conn.conversation_rows(), conn.expected_conversation_rows());
}

fn eight_senders_store_every_message<D: Subject>(db: &D) {
    const PER_THREAD: usize = 1_000;
    let inbox = D::inbox(Inbox::builder());
    let pool = db.pool(THREADS as u32);
    let start = Barrier::new(THREADS);
    let all_ids: Vec<i64> = thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (pool, inbox, start) = (&pool, &inbox, &start);
                s.spawn(move || {
                    let mut conn = pool.get().expect("pooled connection");
                    start.wait();
                    let me = t as i64 + 1;
                    (0..PER_THREAD)
                        .map(|i| {
                            // Four partners each, so pairs are written from both ends at once.
                            let to = (t + 1 + i % 4) % THREADS + 1;
                            let to = if to as i64 == me { 9 } else { to as i64 };
                            inbox
                                .send_message(&mut *conn, me, to, &format!("{me}:{i}"))
                                .unwrap()
                                .id
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });

    let unique: BTreeSet<i64> = all_ids.iter().copied().collect();
    assert_eq!(all_ids.len(), THREADS * PER_THREAD);
    assert_eq!(unique.len(), all_ids.len(), "ids are unique");
    let mut conn = db.conn();
    assert_eq!(
        conn.counts().0,
        (THREADS * PER_THREAD) as i64,
        "all messages stored"
    );
    let total_unread: i64 = (1..=9)
        .map(|u| inbox.unread_count(&mut conn, u).unwrap())
        .sum();
    assert_eq!(
        total_unread,
        (THREADS * PER_THREAD) as i64,
        "every message counted unread once"
    );
    assert_eq!(conn.conversation_rows(), conn.expected_conversation_rows());
    assert_eq!(
        conn.clock_inversions(),
        [],
        "a higher id with an earlier sent_at"
    );
}

fn keyset_pages_stay_exact_while_others_insert<D: Subject>(db: &D) {
    let inbox = D::inbox(Inbox::builder());
    let mut conn = db.conn();
    let older: Vec<i64> = (0..200)
        .map(|i| {
            inbox
                .send_message(&mut conn, 1 + i % 2, 2 - i % 2, "old")
                .unwrap()
                .id
        })
        .collect();
    let pool = db.pool(4);
    let done = AtomicBool::new(false);
    thread::scope(|s| {
        for w in 0..2 {
            let (pool, inbox) = (&pool, &inbox);
            s.spawn(move || {
                let mut conn = pool.get().expect("pooled connection");
                for i in 0..150 {
                    let (from, to) = if (i + w) % 2 == 0 { (1, 2) } else { (2, 1) };
                    inbox.send_message(&mut *conn, from, to, "new").unwrap();
                }
            });
        }
        let (pool, inbox, older, done) = (&pool, &inbox, &older, &done);
        s.spawn(move || {
            let mut conn = pool.get().expect("pooled connection");
            // Scroll up from the newest, several times while the writers run.
            for _ in 0..5 {
                let mut seen = Vec::new();
                let mut query = ConversationQuery::new().reversed().limit(7);
                loop {
                    let page = inbox.conversation(&mut *conn, 1, 2, query).unwrap();
                    let Some(last) = page.last() else { break };
                    query = ConversationQuery::new().reversed().limit(7).before(last.id);
                    seen.extend(page.iter().map(|m| m.id));
                }
                assert!(
                    seen.windows(2).all(|w| w[0] > w[1]),
                    "no message twice, none out of order"
                );
                let seen_older: Vec<i64> = seen
                    .iter()
                    .rev()
                    .copied()
                    .filter(|id| *id <= older[199])
                    .collect();
                assert_eq!(&seen_older, older, "every older message exactly once");
            }
            done.store(true, Ordering::SeqCst);
        });
    });
    assert!(done.load(Ordering::SeqCst));
    assert_eq!(conn.conversation_rows(), conn.expected_conversation_rows());
}

fn read_all_races_new_messages_without_losing_one<D: Subject>(db: &D) {
    let inbox = D::inbox(Inbox::builder());
    let fired = ReadLog::on(inbox.signals());
    let pool = db.pool(2);
    let sent: Vec<i64> = thread::scope(|s| {
        let (pool, inbox) = (&pool, &inbox);
        let writer = s.spawn(move || {
            let mut conn = pool.get().expect("pooled connection");
            (0..300)
                .map(|i| {
                    inbox
                        .send_message(&mut *conn, 2, 1, &format!("n{i}"))
                        .unwrap()
                        .id
                })
                .collect::<Vec<_>>()
        });
        let mut conn = pool.get().expect("pooled connection");
        let mut marked = 0;
        while !writer.is_finished() {
            marked += inbox.mark_conversation_read(&mut *conn, 1, 2).unwrap();
        }
        let sent = writer.join().unwrap();
        marked += inbox.mark_conversation_read(&mut *conn, 1, 2).unwrap();
        assert_eq!(
            marked,
            sent.len(),
            "every message marked by exactly one read-all"
        );
        sent
    });
    assert_eq!(fired.sorted(), sent, "message_read once per message");
    let mut conn = db.conn();
    assert_eq!(inbox.unread_count(&mut conn, 1).unwrap(), 0);
    assert_eq!(conn.conversation_rows(), conn.expected_conversation_rows());
}

/// New messages arrive, in existing conversations and in new ones, while their recipient
/// archives and unarchives those same conversations, the new ones before their first
/// message: no call fails, every conversation ends in exactly one of the inbox and the
/// archive, and the counters stay exact.
fn new_messages_arrive_while_the_recipient_archives<D: Subject>(db: &D) {
    let inbox = D::inbox(Inbox::builder());
    let pool = db.pool(2);
    let partners: Vec<i64> = (100..140).collect();
    thread::scope(|s| {
        let (pool, inbox, partners) = (&pool, &inbox, &partners);
        let writer = s.spawn(move || {
            let mut conn = pool.get().expect("pooled connection");
            for (i, &partner) in partners.iter().enumerate() {
                inbox
                    .send_message(&mut *conn, partner, 1, &format!("first {i}"))
                    .unwrap();
                inbox
                    .send_message(&mut *conn, 2, 1, &format!("again {i}"))
                    .unwrap();
            }
        });
        let mut conn = pool.get().expect("pooled connection");
        let mut round = 0;
        while !writer.is_finished() {
            for &partner in partners.iter().chain([&2]) {
                if round % 2 == 0 {
                    inbox.archive_conversation(&mut *conn, 1, partner).unwrap();
                } else {
                    inbox
                        .unarchive_conversation(&mut *conn, 1, partner)
                        .unwrap();
                }
            }
            round += 1;
        }
        writer.join().unwrap();
    });
    let mut conn = db.conn();
    let mut listed: Vec<i64> = [
        ConversationsQuery::new(),
        ConversationsQuery::new().archived(),
    ]
    .into_iter()
    .flat_map(|q| inbox.conversations(&mut conn, 1, q).unwrap())
    .map(|s| s.partner)
    .collect();
    listed.sort_unstable();
    let mut expected = partners.clone();
    expected.push(2);
    expected.sort_unstable();
    assert_eq!(
        listed, expected,
        "each conversation once, in the inbox or the archive"
    );
    assert_eq!(
        inbox.unread_count(&mut conn, 1).unwrap(),
        2 * partners.len() as i64
    );
    assert_eq!(conn.conversation_rows(), conn.expected_conversation_rows());
    // Once the archiver stopped, the next message brings an archived one back.
    inbox.archive_conversation(&mut conn, 1, 2).unwrap();
    inbox.send_message(&mut conn, 2, 1, "last").unwrap();
    let active = inbox
        .conversations(&mut conn, 1, ConversationsQuery::new().limit(1))
        .unwrap();
    assert_eq!(active[0].partner, 2);
}

/// Senders unsend messages while their recipient reads them: each message ends read and
/// unsent, or unsent unread; `message_read` fires only for messages the read marked before
/// the unsend, `message_unsent` once for every message, and the counters stay exact.
fn unsending_races_the_recipients_read<D: Subject>(db: &D) {
    let inbox = D::inbox(Inbox::builder());
    let read = ReadLog::on(inbox.signals());
    let unsent = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&unsent);
    inbox.signals().on_message_unsent(move |e| {
        sink.lock()
            .unwrap()
            .push((e.message.id, e.message.read_at.is_some()));
    });
    let mut conn = db.conn();
    let ids = inbox.send_numbered(&mut conn, 2, 1, 200, "m");
    let pool = db.pool(2);
    let start = Barrier::new(2);
    thread::scope(|s| {
        let (pool, inbox, ids, start) = (&pool, &inbox, &ids, &start);
        s.spawn(move || {
            let mut conn = pool.get().expect("pooled connection");
            start.wait();
            for &id in ids {
                inbox.unsend_message(&mut *conn, 2, id).unwrap();
            }
        });
        let mut conn = pool.get().expect("pooled connection");
        start.wait();
        for &id in ids {
            match inbox.read_message_as(&mut *conn, 1, id) {
                Ok(_) | Err(directmessages::Error::MessageNotFound(_)) => {}
                Err(e) => panic!("read {id}: {e:?}"),
            }
        }
    });
    let unsent = unsent.lock().unwrap().clone();
    assert_eq!(
        unsent.iter().map(|u| u.0).collect::<Vec<_>>(),
        ids,
        "message_unsent once for every message"
    );
    // A message was announced read exactly when the unsent copy says it was read.
    let announced: BTreeSet<i64> = read.sorted().into_iter().collect();
    for (id, was_read) in unsent {
        assert_eq!(announced.contains(&id), was_read, "message {id}");
    }
    assert_eq!(inbox.unread_count(&mut conn, 1).unwrap(), 0);
    assert!(inbox
        .conversation_partners(&mut conn, 1)
        .unwrap()
        .is_empty());
    assert_eq!(conn.conversation_rows(), conn.expected_conversation_rows());
}

/// The sender edits and unsends the same messages from two connections at once: for each
/// message the unsend wins or the edit does (then the unsend removes the edited text);
/// a losing edit gets `MessageNotFound`; `message_unsent` fires once per message with the
/// text as last stored, and the counters stay exact.
fn an_edit_races_an_unsend_of_the_same_message<D: Subject>(db: &D) {
    let inbox = D::inbox(Inbox::builder());
    let unsent = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&unsent);
    inbox.signals().on_message_unsent(move |e| {
        sink.lock()
            .unwrap()
            .push((e.message.id, e.message.content.clone()))
    });
    let mut conn = db.conn();
    let ids = inbox.send_numbered(&mut conn, 1, 2, 150, "m");
    let pool = db.pool(2);
    let start = Barrier::new(2);
    let edited: Vec<i64> = thread::scope(|s| {
        let (pool, inbox, ids, start) = (&pool, &inbox, &ids, &start);
        let editor = s.spawn(move || {
            let mut conn = pool.get().expect("pooled connection");
            start.wait();
            let mut edited = Vec::new();
            for &id in ids {
                match inbox.edit_message(&mut *conn, 1, id, &format!("edited {id}")) {
                    Ok(m) => edited.push(m.id),
                    Err(directmessages::Error::MessageNotFound(_)) => {}
                    Err(e) => panic!("edit {id}: {e:?}"),
                }
            }
            edited
        });
        let mut conn = pool.get().expect("pooled connection");
        start.wait();
        for &id in ids.iter().rev() {
            inbox.unsend_message(&mut *conn, 1, id).unwrap();
        }
        editor.join().unwrap()
    });
    let unsent = unsent.lock().unwrap().clone();
    let mut unsent_ids: Vec<i64> = unsent.iter().map(|u| u.0).collect();
    unsent_ids.sort_unstable();
    assert_eq!(unsent_ids, ids, "message_unsent once for every message");
    // A successful edit committed before its message was unsent: the unsent copy has it.
    for (id, content) in &unsent {
        let was_edited = edited.contains(id);
        assert_eq!(
            content == &format!("edited {id}"),
            was_edited,
            "message {id}"
        );
    }
    assert_eq!(inbox.unread_count(&mut conn, 2).unwrap(), 0);
    assert_eq!(conn.conversation_rows(), conn.expected_conversation_rows());
}

/// Sixteen threads sending among forty users: new conversations are created while others
/// are written, from both ends; not one send may surface a transient conflict.
fn sixteen_senders_creating_conversations_never_see_a_conflict<D: Subject>(db: &D) {
    const SENDERS: usize = 16;
    const PER_THREAD: usize = 150;
    const USERS: i64 = 40;
    let inbox = D::inbox(Inbox::builder());
    let pool = db.pool(SENDERS as u32);
    let start = Barrier::new(SENDERS);
    let sent: usize = thread::scope(|s| {
        let handles: Vec<_> = (0..SENDERS)
            .map(|t| {
                let (pool, inbox, start) = (&pool, &inbox, &start);
                s.spawn(move || {
                    let mut conn = pool.get().expect("pooled connection");
                    start.wait();
                    let mut state = 0x9e37_79b9_u64.wrapping_mul(t as u64 + 1);
                    for i in 0..PER_THREAD {
                        state = state
                            .wrapping_mul(6_364_136_223_846_793_005)
                            .wrapping_add(1_442_695_040_888_963_407);
                        let from = 1 + (state >> 33) as i64 % USERS;
                        let to = 1 + (from + (state >> 40) as i64 % (USERS - 1)) % USERS;
                        if let Err(e) =
                            inbox.send_message(&mut *conn, from, to, &format!("{t}:{i}"))
                        {
                            panic!("send {t}:{i} from {from} to {to} failed: {e:?}");
                        }
                    }
                    PER_THREAD
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let mut conn = db.conn();
    assert_eq!(conn.counts().0, sent as i64, "all messages stored");
    assert_eq!(conn.conversation_rows(), conn.expected_conversation_rows());
    assert_eq!(
        conn.clock_inversions(),
        [],
        "a higher id with an earlier sent_at"
    );
}

/// A sender that stopped inside its own transaction holds its conversation: a second
/// sender waits for it, and a poller never sees a message behind its cursor.
fn a_poller_misses_nothing_while_a_sender_waits_inside_its_transaction<D: Subject>(db: &D) {
    use std::sync::mpsc;
    use std::time::Duration;

    let inbox = D::inbox(Inbox::builder());
    let mut poller = db.conn();
    let start = inbox.send_message(&mut poller, 1, 2, "start").unwrap();
    let (sent_tx, sent) = mpsc::channel();
    let (resume_tx, resume) = mpsc::channel::<()>();
    thread::scope(|s| {
        let inbox = &inbox;
        let mut paused = db.conn();
        s.spawn(move || {
            paused
                .transaction(|c| -> directmessages::Result<()> {
                    let m = inbox.send_message(c, 1, 2, "paused")?;
                    sent_tx.send(m).expect("test alive");
                    resume.recv().expect("test alive");
                    Ok(())
                })
                .unwrap();
        });
        let paused_message = sent.recv().expect("the paused sender sent");
        let mut other = db.conn();
        let second = s.spawn(move || inbox.send_message(&mut other, 2, 1, "second").unwrap());
        thread::sleep(Duration::from_millis(300));
        assert!(
            !second.is_finished(),
            "the second sender waits for the first to commit"
        );
        let seen = inbox
            .conversation(&mut poller, 1, 2, ConversationQuery::new().after(start.id))
            .unwrap();
        assert!(seen.is_empty(), "nothing committed yet: {seen:?}");
        resume_tx.send(()).expect("the paused sender is alive");
        let second = second.join().unwrap();
        assert!(second.id > paused_message.id);
        assert!(second.sent_at >= paused_message.sent_at);
        let seen = inbox
            .conversation(&mut poller, 1, 2, ConversationQuery::new().after(start.id))
            .unwrap();
        let ids: Vec<i64> = seen.iter().map(|m| m.id).collect();
        assert_eq!(ids, [paused_message.id, second.id]);
    });
}

/// Polling one conversation with `after(cursor)` while four senders write to it sees every
/// message, in id order, exactly once.
fn polling_after_the_cursor_sees_every_message_once<D: Subject>(db: &D) {
    const WRITERS: usize = 4;
    const PER_WRITER: usize = 150;
    let inbox = D::inbox(Inbox::builder());
    let pool = db.pool(WRITERS as u32 + 1);
    let done = AtomicBool::new(false);
    let seen: Vec<i64> = thread::scope(|s| {
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (pool, inbox) = (&pool, &inbox);
                s.spawn(move || {
                    let mut conn = pool.get().expect("pooled connection");
                    for i in 0..PER_WRITER {
                        let (from, to) = if (w + i) % 2 == 0 { (1, 2) } else { (2, 1) };
                        inbox.send_message(&mut *conn, from, to, "m").unwrap();
                    }
                })
            })
            .collect();
        let (pool, inbox, done) = (&pool, &inbox, &done);
        let poller = s.spawn(move || {
            let mut conn = pool.get().expect("pooled connection");
            let (mut cursor, mut seen) = (0, Vec::new());
            loop {
                let finished = done.load(Ordering::SeqCst);
                let page = inbox
                    .conversation(&mut *conn, 1, 2, ConversationQuery::new().after(cursor))
                    .unwrap();
                if let Some(last) = page.last() {
                    cursor = last.id;
                }
                seen.extend(page.iter().map(|m| m.id));
                if finished {
                    return seen;
                }
            }
        });
        for w in writers {
            w.join().unwrap();
        }
        done.store(true, Ordering::SeqCst);
        poller.join().unwrap()
    });
    common::assert_polled_whole_conversation(&inbox, &mut db.conn(), &seen, WRITERS * PER_WRITER);
}

/// The search index follows an editor and a deleter racing over the same messages: each
/// side's row holds the last text committed, and a side that deleted has none.
fn search_follows_an_edit_racing_a_delete<D: Subject>(db: &D) {
    let inbox = D::inbox(Inbox::builder());
    let mut conn = db.conn();
    let ids = inbox.send_numbered(&mut conn, 1, 2, 120, "draft");
    let pool = db.pool(2);
    let start = Barrier::new(2);
    thread::scope(|s| {
        let (pool, inbox, ids, start) = (&pool, &inbox, &ids, &start);
        s.spawn(move || {
            let mut conn = pool.get().expect("pooled connection");
            start.wait();
            for &id in ids {
                inbox
                    .edit_message(&mut *conn, 1, id, &format!("final{id}"))
                    .unwrap();
            }
        });
        let mut conn = pool.get().expect("pooled connection");
        start.wait();
        for &id in ids.iter().rev() {
            inbox.delete_message(&mut *conn, 2, id).unwrap();
        }
    });
    let find = |conn: &mut D::Conn, user: i64, word: &str| -> Vec<i64> {
        inbox
            .search(conn, user, SearchQuery::new(word))
            .unwrap()
            .iter()
            .map(|m| m.id)
            .collect()
    };
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(find(&mut conn, 1, "final"), newest_first);
    assert!(find(&mut conn, 1, "draft").is_empty());
    assert!(find(&mut conn, 2, "final").is_empty());
    assert!(find(&mut conn, 2, "draft").is_empty());
    for &id in &ids {
        assert_eq!(conn.search_rows_of(id), 1, "message {id}");
    }
}

backend_suite!(
    flavours:
    search_follows_an_edit_racing_a_delete,
    new_messages_arrive_while_the_recipient_archives,
    unsending_races_the_recipients_read,
    an_edit_races_an_unsend_of_the_same_message,
    sixteen_senders_creating_conversations_never_see_a_conflict,
    a_poller_misses_nothing_while_a_sender_waits_inside_its_transaction,
    polling_after_the_cursor_sees_every_message_once,
    eight_readers_fire_message_read_once_per_message,
    read_all_races_new_messages_without_losing_one,
    eight_senders_store_every_message,
    keyset_pages_stay_exact_while_others_insert,
);

/// With the `r2d2` feature a pooled connection is passed as it is.
#[cfg(feature = "r2d2")]
mod pooled {
    use super::*;
    use common::TestDb;

    fn a_pooled_connection_is_an_inbox_connection<D: TestDb>(db: &D) {
        let inbox = common::builder::<D>().build();
        let pool = db.pool(2);
        let mut pooled = pool.get().expect("pooled connection");
        let m = inbox
            .send_message(&mut pooled, 1, 2, "via the pool")
            .unwrap();
        assert_eq!(
            inbox.read_message_as(&mut pooled, 2, m.id).unwrap().id,
            m.id
        );
        directmessages::run_migrations(&mut pooled).unwrap();
    }

    backend_suite!(a_pooled_connection_is_an_inbox_connection);
}
