//! A multi-primary MariaDB Galera cluster of two nodes: the same inbox written through
//! both at once. `.ci/galera` starts the cluster; its URLs come from
//! `DIRECTMESSAGES_GALERA_URLS` (two, comma-separated).
#![cfg(feature = "mysql")]

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex, Once};
use std::thread;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use directmessages::{ConversationQuery, Inbox};

use common::Probe;

static NOTICE: Once = Once::new();

/// One database of the cluster, reached through each node.
struct Cluster {
    admin: String,
    name: String,
    nodes: [String; 2],
}

impl Cluster {
    fn create() -> Option<Self> {
        let urls = common::server_url("DIRECTMESSAGES_GALERA_URLS", "galera", &NOTICE)?;
        let urls: Vec<&str> = urls.split(',').map(str::trim).collect();
        assert_eq!(urls.len(), 2, "DIRECTMESSAGES_GALERA_URLS needs two URLs");
        let name = common::unique_name();
        let mut admin = MysqlConnection::establish(urls[0]).unwrap_or_else(|e| {
            panic!("DIRECTMESSAGES_GALERA_URLS is set but node 1 is unreachable: {e}")
        });
        admin
            .batch_execute(&format!("CREATE DATABASE {name} CHARACTER SET utf8mb4"))
            .expect("create database");
        let on = |url: &str| {
            let server = url.rsplit_once('/').map_or(url, |(server, _)| server);
            format!("{server}/{name}")
        };
        let cluster = Cluster {
            admin: urls[0].to_owned(),
            nodes: [on(urls[0]), on(urls[1])],
            name,
        };
        directmessages::run_migrations(&mut cluster.conn(0)).expect("migrations on node 1");
        // DDL is replicated in total order: node 2 has the tables once it is in sync.
        directmessages::run_migrations(&mut cluster.conn(1)).expect("migrations on node 2");
        Some(cluster)
    }

    /// A connection to node `n` (0 or 1).
    fn conn(&self, node: usize) -> MysqlConnection {
        let mut conn = MysqlConnection::establish(&self.nodes[node])
            .unwrap_or_else(|e| panic!("cannot connect to node {}: {e}", node + 1));
        conn.prepare();
        conn
    }

    /// A connection to node `n` whose reads wait until the node applied every write the
    /// cluster committed before them.
    fn synced_conn(&self, node: usize) -> MysqlConnection {
        let mut conn = self.conn(node);
        conn.batch_execute("SET SESSION wsrep_sync_wait = 1")
            .expect("wsrep_sync_wait");
        conn
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Ok(mut admin) = MysqlConnection::establish(&self.admin) {
            let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {}", self.name));
        }
    }
}

fn run(test: fn(&Cluster)) {
    common::run_on(Cluster::create, test);
}

#[test]
fn the_same_message_read_at_once_on_both_nodes_fires_message_read_once() {
    run(|cluster| {
        const MESSAGES: usize = 50;
        let inbox = Inbox::new();
        let fired = Arc::new(Mutex::new(HashMap::<i64, usize>::new()));
        let sink = Arc::clone(&fired);
        inbox.signals().on_message_read(move |e| {
            *sink.lock().unwrap().entry(e.message.id).or_default() += 1;
        });
        let mut first = cluster.conn(0);
        let ids: Vec<i64> = (0..MESSAGES)
            .map(|i| {
                inbox
                    .send_message(&mut first, 2, 1, &format!("m{i}"))
                    .unwrap()
                    .id
            })
            .collect();
        // Node 2 has them all before the race starts.
        let mut second = cluster.synced_conn(1);
        assert_eq!(inbox.unread_count(&mut second, 1).unwrap(), MESSAGES as i64);

        let start = Barrier::new(2);
        thread::scope(|s| {
            for node in 0..2 {
                let (inbox, ids, start) = (&inbox, &ids, &start);
                let mut conn = cluster.conn(node);
                s.spawn(move || {
                    for id in ids {
                        start.wait();
                        if let Err(e) = inbox.read_message_as(&mut conn, 1, *id) {
                            panic!("node {}: reading {id}: {e:?}", node + 1);
                        }
                    }
                });
            }
        });

        let fired = fired.lock().unwrap();
        assert_eq!(fired.len(), MESSAGES, "message_read for every message");
        assert!(
            fired.values().all(|&n| n == 1),
            "message_read fired twice: {fired:?}"
        );
        for node in 0..2 {
            let mut conn = cluster.synced_conn(node);
            assert_eq!(inbox.unread_count(&mut conn, 1).unwrap(), 0);
            assert_eq!(conn.conversation_rows(), conn.expected_conversation_rows());
        }
    });
}

#[test]
fn concurrent_sends_through_both_nodes_are_all_stored_and_counted() {
    run(|cluster| {
        const PER_THREAD: usize = 40;
        const THREADS_PER_NODE: usize = 3;
        let inbox = Inbox::new();
        let start = Barrier::new(2 * THREADS_PER_NODE);
        thread::scope(|s| {
            for node in 0..2 {
                for t in 0..THREADS_PER_NODE {
                    let (inbox, start) = (&inbox, &start);
                    let mut conn = cluster.conn(node);
                    s.spawn(move || {
                        start.wait();
                        for i in 0..PER_THREAD {
                            // Senders 2..4 write to user 1 from both nodes, and user 1
                            // answers, so the same conversation rows change on both.
                            let sender = 2 + ((t + i) % 3) as i64;
                            let (from, to) = if i % 5 == 4 { (1, sender) } else { (sender, 1) };
                            if let Err(e) =
                                inbox.send_message(&mut conn, from, to, &format!("{node}:{t}:{i}"))
                            {
                                panic!("node {}: send {t}:{i}: {e:?}", node + 1);
                            }
                        }
                    });
                }
            }
        });
        let total = (2 * THREADS_PER_NODE * PER_THREAD) as i64;
        let to_user_1 = total * 4 / 5;
        for node in 0..2 {
            let mut conn = cluster.synced_conn(node);
            assert_eq!(conn.counts().0, total, "node {}", node + 1);
            assert_eq!(inbox.unread_count(&mut conn, 1).unwrap(), to_user_1);
            assert_eq!(
                conn.conversation_rows(),
                conn.expected_conversation_rows(),
                "node {}",
                node + 1
            );
            assert_eq!(conn.clock_inversions(), [], "node {}", node + 1);
        }
    });
}

#[test]
fn polling_one_node_sees_every_message_the_other_writes_once_in_order() {
    run(|cluster| {
        const PER_WRITER: usize = 100;
        let inbox = Inbox::new();
        let done = AtomicBool::new(false);
        let seen: Vec<i64> = thread::scope(|s| {
            let writers: Vec<_> = (0..2)
                .map(|node| {
                    let inbox = &inbox;
                    let mut conn = cluster.conn(node);
                    s.spawn(move || {
                        for i in 0..PER_WRITER {
                            let (from, to) = if (node + i) % 2 == 0 { (1, 2) } else { (2, 1) };
                            inbox.send_message(&mut conn, from, to, "m").unwrap();
                        }
                    })
                })
                .collect();
            let (inbox, done) = (&inbox, &done);
            let mut conn = cluster.conn(0);
            let poller = s.spawn(move || {
                let (mut cursor, mut seen) = (0, Vec::new());
                let deadline = Instant::now() + Duration::from_secs(120);
                loop {
                    let finished = done.load(Ordering::SeqCst);
                    if finished {
                        // From here on, wait for everything the cluster committed.
                        conn.batch_execute("SET SESSION wsrep_sync_wait = 1")
                            .unwrap();
                    }
                    let page = inbox
                        .conversation(&mut conn, 1, 2, ConversationQuery::new().after(cursor))
                        .unwrap();
                    if let Some(last) = page.last() {
                        cursor = last.id;
                    }
                    seen.extend(page.iter().map(|m| m.id));
                    if finished || Instant::now() > deadline {
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
        let mut conn = cluster.synced_conn(0);
        let inbox = common::TestInbox::Blocking(inbox);
        common::assert_polled_whole_conversation(&inbox, &mut conn, &seen, 2 * PER_WRITER);
    });
}
