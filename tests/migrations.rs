//! Many app instances starting at the same moment on an empty database.

mod common;

use std::sync::Barrier;
use std::thread;

use diesel::Connection;
use directmessages::Inbox;

use common::{Probe, TestDb};

/// Instances starting together at each round.
const STARTERS: usize = 8;
/// Rounds, each on a new empty database.
const ROUNDS: usize = 4;

fn instances_starting_together_all_migrate<D: TestDb>(first: &D) {
    let mut fresh = None;
    for round in 0..ROUNDS {
        let db = if round == 0 {
            first
        } else {
            fresh.insert(D::create_empty().expect("a new empty database"))
        };
        let start = Barrier::new(STARTERS);
        let results: Vec<Result<(), String>> = thread::scope(|s| {
            let handles: Vec<_> = (0..STARTERS)
                .map(|i| {
                    let start = &start;
                    s.spawn(move || {
                        // Half of them as configured by the harness, half as a bare
                        // connection (on SQLite: without a busy timeout).
                        let mut conn = if i % 2 == 0 {
                            db.conn()
                        } else {
                            D::Conn::establish(db.url()).expect("connect")
                        };
                        start.wait();
                        directmessages::run_migrations(&mut conn).map_err(|e| e.to_string())
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (i, result) in results.iter().enumerate() {
            assert_eq!(result, &Ok(()), "round {round}, instance {i}");
        }
        let mut conn = db.conn();
        directmessages::run_migrations(&mut conn).unwrap();
        let inbox = Inbox::new();
        let m = inbox.send_message(&mut conn, 1, 2, "schema works").unwrap();
        assert_eq!(inbox.read_message_as(&mut conn, 2, m.id).unwrap().id, m.id);
        assert_eq!(conn.counts(), (1, 2, 0));
    }
}

backend_suite!(empty: instances_starting_together_all_migrate);
