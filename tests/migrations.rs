//! Migrations: many app instances starting at the same moment on an empty database, a
//! host's own Diesel harness running and reverting ours, and an upgrade of a filled
//! database.

mod common;

use std::sync::Barrier;
use std::thread;

use directmessages::{ConversationQuery, ConversationsQuery, SearchQuery};

use common::{Probe, Schema, TestDb};

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
                            common::establish::<D>(db.url()).expect("connect")
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
        let inbox = common::builder::<D>().build();
        let m = inbox.send_message(&mut conn, 1, 2, "schema works").unwrap();
        assert_eq!(inbox.read_message_as(&mut conn, 2, m.id).unwrap().id, m.id);
        assert_eq!(conn.counts(), (1, 2, 0));
    }
}

backend_suite!(empty: instances_starting_together_all_migrate);

/// A host running our migrations with its own Diesel harness: up, the latest down and up
/// again, down to nothing, up again. After "down" the catalog (tables, indexes, triggers, functions, types) is what
/// it was before "up"; after "up" again the inbox works.
fn migrations_go_up_down_to_nothing_and_up_again<D: TestDb>(db: &D) {
    let mut conn = db.conn();
    let before = conn.catalog();
    let total = conn.pending();
    assert!(total >= 4, "the crate's migrations are pending: {total}");

    directmessages::run_migrations(&mut conn).unwrap();
    assert_eq!(
        conn.pending(),
        0,
        "run_migrations records them as the harness does"
    );
    let migrated = conn.catalog();
    assert!(
        migrated.iter().any(|item| item.contains("direct_messages")),
        "{migrated:#?}"
    );

    // Each migration reverts on its own: the latest one, then again.
    conn.revert_last();
    assert_eq!(conn.pending(), 1);
    directmessages::run_migrations(&mut conn).unwrap();
    assert_eq!(
        conn.catalog(),
        migrated,
        "the latest migration reverted and reapplied"
    );

    assert_eq!(conn.revert_all(), total, "every migration reverted");
    assert_eq!(conn.catalog(), before, "down leaves nothing of ours behind");
    assert_eq!(conn.pending(), total);

    conn.migrate_up_to("99999999999999");
    assert_eq!(
        conn.catalog(),
        migrated,
        "the harness builds the same schema"
    );
    directmessages::run_migrations(&mut conn).unwrap();
    let inbox = common::builder::<D>().build();
    let m = inbox
        .send_message(&mut conn, 1, 2, "after a round trip")
        .unwrap();
    assert_eq!(
        inbox
            .search(&mut conn, 2, SearchQuery::new("round"))
            .unwrap(),
        [m]
    );
}

/// A database made by the crate at migration `…104` (the schema when it became public),
/// filled through the inbox, upgraded by `run_migrations`: every message, counter,
/// summary and search result is as before.
fn a_database_at_104_upgrades_keeping_every_row<D: TestDb>(db: &D) {
    let mut conn = db.conn();
    conn.migrate_up_to("00000000000104");
    let inbox = common::builder::<D>().build();
    let mut ids = Vec::new();
    for i in 0..30_i64 {
        let (from, to) = (1 + i % 3, 4 + i % 2);
        ids.push(
            inbox
                .send_message(&mut conn, from, to, &format!("note {i} about tea"))
                .unwrap()
                .id,
        );
    }
    inbox.read_message_as(&mut conn, 4, ids[0]).unwrap();
    inbox.mark_conversation_read(&mut conn, 5, 2).unwrap();
    inbox.delete_message(&mut conn, 4, ids[2]).unwrap();
    inbox
        .edit_message(&mut conn, 1, ids[6], "edited: coffee instead")
        .unwrap();
    inbox.unsend_message(&mut conn, 3, ids[8]).unwrap();
    inbox.block_user(&mut conn, 5, 3).unwrap();
    inbox.archive_conversation(&mut conn, 4, 2).unwrap();
    inbox.mute_conversation(&mut conn, 5, 1).unwrap();

    let observe = |conn: &mut D::Conn| {
        let users = 1..=5_i64;
        (
            conn.counts(),
            conn.conversation_rows(),
            users
                .clone()
                .map(|u| inbox.unread_count(conn, u).unwrap())
                .collect::<Vec<_>>(),
            users
                .clone()
                .map(|u| inbox.unread_messages(conn, u).unwrap())
                .collect::<Vec<_>>(),
            users
                .clone()
                .map(|u| {
                    let inbox_screen = inbox
                        .conversations(conn, u, ConversationsQuery::new())
                        .unwrap();
                    let archive = inbox
                        .conversations(conn, u, ConversationsQuery::new().archived())
                        .unwrap();
                    (inbox_screen, archive)
                })
                .collect::<Vec<_>>(),
            users
                .clone()
                .map(|u| inbox.search(conn, u, SearchQuery::new("tea")).unwrap())
                .collect::<Vec<_>>(),
            inbox.search(conn, 4, SearchQuery::new("coffee")).unwrap(),
            inbox
                .conversation(conn, 1, 4, ConversationQuery::new())
                .unwrap(),
            inbox.is_blocked(conn, 5, 3).unwrap(),
        )
    };
    let before = observe(&mut conn);
    assert_eq!(conn.conversation_rows(), conn.expected_conversation_rows());

    directmessages::run_migrations(&mut conn).unwrap();
    assert_eq!(conn.pending(), 0);
    assert_eq!(observe(&mut conn), before, "the upgrade kept every row");
    assert_eq!(conn.conversation_rows(), conn.expected_conversation_rows());
    // And the upgraded database takes new writes.
    let m = inbox.send_message(&mut conn, 2, 4, "more tea").unwrap();
    assert!(inbox
        .search(&mut conn, 4, SearchQuery::new("tea"))
        .unwrap()
        .contains(&m));
}

mod harness {
    use super::*;
    backend_suite!(
        empty: migrations_go_up_down_to_nothing_and_up_again,
        a_database_at_104_upgrades_keeping_every_row
    );
}
