//! Many connections at once, through a pool, on every enabled backend.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;

use directmessages::{ConversationQuery, Inbox};

use common::{Probe, ReadLog, TestDb};

const THREADS: usize = 8;

fn eight_readers_fire_message_read_once_per_message<D: TestDb>(db: &D) {
    let inbox = Inbox::new();
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

fn eight_senders_store_every_message<D: TestDb>(db: &D) {
    const PER_THREAD: usize = 1_000;
    let inbox = Inbox::new();
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
}

fn keyset_pages_stay_exact_while_others_insert<D: TestDb>(db: &D) {
    let inbox = Inbox::new();
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

fn read_all_races_new_messages_without_losing_one<D: TestDb>(db: &D) {
    let inbox = Inbox::new();
    let fired = ReadLog::on(&inbox);
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

backend_suite!(
    eight_readers_fire_message_read_once_per_message,
    read_all_races_new_messages_without_losing_one,
    eight_senders_store_every_message,
    keyset_pages_stay_exact_while_others_insert,
);

/// With the `r2d2` feature a pooled connection is passed as it is.
#[cfg(feature = "r2d2")]
mod pooled {
    use super::*;

    fn a_pooled_connection_is_an_inbox_connection<D: TestDb>(db: &D) {
        let inbox = Inbox::new();
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
