//! What only MySQL/MariaDB can do to the inbox.
#![cfg(feature = "mysql")]

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;
use directmessages::schema::direct_messages as dm;
use directmessages::{ConversationQuery, ConversationsQuery, Error, Inbox};

use common::{MysqlDb, Probe, ReadLog, TestDb};

#[derive(QueryableByName)]
struct Status {
    #[diesel(sql_type = Text)]
    #[diesel(column_name = Value)]
    value: String,
}

/// How many transactions of this server wait for a row lock right now.
fn row_lock_waits(conn: &mut MysqlConnection) -> i64 {
    diesel::sql_query("SHOW GLOBAL STATUS LIKE 'Innodb_row_lock_current_waits'")
        .get_result::<Status>(conn)
        .expect("row lock waits")
        .value
        .parse()
        .expect("a number")
}

/// A read-all whose locking read loses a deadlock after the server began its result set
/// is rolled back and run again on the same connection, and that second run completes.
#[test]
fn a_read_all_that_loses_a_deadlock_is_retried_to_completion() {
    common::run::<MysqlDb>(|db| {
        let inbox = Arc::new(Inbox::new());
        let fired = ReadLog::on(&inbox);
        let mut conn = db.conn();
        let ids: Vec<i64> = ["a", "b", "c"]
            .iter()
            .map(|text| inbox.send_message(&mut conn, 1, 2, text).unwrap().id)
            .collect();
        let (first, second) = (ids[0], ids[1]);
        // The other transaction holds the second message, waits until the read-all holds
        // the first and waits for the second, then asks for the first: a deadlock.
        let (locked_tx, locked) = mpsc::channel();
        let (go_tx, go) = mpsc::channel::<()>();
        let (other_tx, other_done) = mpsc::channel();
        let mut other = db.conn();
        let ballast = Arc::clone(&inbox);
        thread::spawn(move || {
            let result = other.transaction(|c| -> directmessages::Result<usize> {
                // Rows of its own, so that it is the heavier of the two and the server
                // picks the read-all as the deadlock victim.
                for u in 100..120 {
                    ballast.block_user(c, u, 1)?;
                }
                diesel::update(dm::table.find(second))
                    .set(dm::content.eq("held"))
                    .execute(c)?;
                locked_tx.send(()).expect("test alive");
                go.recv().expect("test alive");
                Ok(diesel::update(dm::table.find(first))
                    .set(dm::content.eq("held too"))
                    .execute(c)?)
            });
            other_tx.send(result.map(drop)).expect("test alive");
        });
        locked.recv().expect("the other transaction started");

        let (read_tx, read_done) = mpsc::channel();
        let mut reader = db.conn();
        let reading = Arc::clone(&inbox);
        thread::spawn(move || {
            let marked = reading.mark_conversation_read(&mut reader, 2, 1);
            read_tx
                .send(marked.map_err(|e| e.to_string()))
                .expect("test alive");
        });

        let deadline = Instant::now() + Duration::from_secs(20);
        while row_lock_waits(&mut conn) == 0 {
            assert!(Instant::now() < deadline, "the read-all never waited");
            thread::sleep(Duration::from_millis(20));
        }
        go_tx.send(()).expect("the other transaction is alive");

        // The server rolls back the transaction that changed fewer rows: the read-all.
        other_done
            .recv_timeout(Duration::from_secs(30))
            .expect("the other transaction finished")
            .expect("the read-all, not the other transaction, was the deadlock victim");
        let marked = read_done
            .recv_timeout(Duration::from_secs(30))
            .expect("the retried read-all hung");
        assert_eq!(marked, Ok(3));
        assert_eq!(fired.sorted(), ids, "message_read once per message");
        assert_eq!(inbox.unread_count(&mut conn, 2).unwrap(), 0);
        assert_eq!(conn.conversation_rows(), conn.expected_conversation_rows());
    });
}

diesel::define_sql_function! {
    /// The id of this connection's session on the server.
    fn connection_id() -> diesel::sql_types::Unsigned<diesel::sql_types::BigInt>;
}

/// Whether the server interrupted the statement (`max_statement_time`, `KILL QUERY`).
fn is_interruption(error: &Error) -> bool {
    matches!(error, Error::Database(e) if e.to_string().contains("interrupted"))
}

/// Makes one call of each kind on `conn` and returns how many the server interrupted;
/// any other error fails the test.
fn interruptions(inbox: &Inbox, conn: &mut MysqlConnection, round: usize) -> usize {
    let errors = every_operation(inbox, conn, round);
    for error in &errors {
        assert!(is_interruption(error), "round {round}: {error:?}");
    }
    errors.len()
}

/// One call of each kind the inbox makes, on `conn`: the errors they returned.
fn every_operation(inbox: &Inbox, conn: &mut MysqlConnection, round: usize) -> Vec<Error> {
    let results = [
        inbox.unread_messages(conn, 1).map(drop),
        inbox.unread_count(conn, 1).map(drop),
        inbox
            .conversations(conn, 1, ConversationsQuery::new().limit(20))
            .map(drop),
        inbox
            .conversation(
                conn,
                1,
                2,
                ConversationQuery::new().reversed().limit(20).mark_read(),
            )
            .map(drop),
        inbox.conversation_partners(conn, 1).map(drop),
        inbox
            .send_message(conn, 2, 1, &format!("round {round}"))
            .map(drop),
        inbox.mark_conversation_read(conn, 1, 3).map(drop),
        inbox.is_blocked(conn, 1, 2).map(drop),
    ];
    results.into_iter().filter_map(Result::err).collect()
}

/// `max_statement_time` cuts off the inbox's statements; each call returns the
/// interruption, and the connection goes on working once the limit is lifted.
#[test]
fn statements_cut_off_by_max_statement_time_leave_the_connection_usable() {
    common::run::<MysqlDb>(|db| {
        let inbox = Inbox::new();
        let mut conn = db.conn();
        conn.seed_unread(2, 1, 50_000);
        conn.seed_unread(3, 1, 100);
        conn.batch_execute("SET SESSION max_statement_time = 0.001")
            .unwrap();
        let mut interrupted = 0;
        for round in 0..5 {
            interrupted += interruptions(&inbox, &mut conn, round);
        }
        assert!(interrupted > 0, "the limit cut nothing off");
        conn.batch_execute("SET SESSION max_statement_time = 0")
            .unwrap();
        assert!(every_operation(&inbox, &mut conn, 99).is_empty());
        let unread = inbox.unread_messages(&mut conn, 1).unwrap().len() as i64;
        assert!(unread >= 49_000, "{unread}");
        assert_eq!(inbox.unread_count(&mut conn, 1).unwrap(), unread);
        assert_eq!(conn.conversation_rows(), conn.expected_conversation_rows());
    });
}

/// `KILL QUERY` from another session, again and again while the connection works: every
/// call returns, and the connection is still usable at the end.
#[test]
fn kill_query_from_another_session_never_hangs_the_connection() {
    common::run::<MysqlDb>(|db| {
        let inbox = Inbox::new();
        let mut conn = db.conn();
        conn.seed_unread(2, 1, 3_000);
        conn.seed_unread(3, 1, 3_000);
        let session: u64 = diesel::select(connection_id())
            .get_result(&mut conn)
            .unwrap();
        let stop = AtomicBool::new(false);
        let kills = AtomicUsize::new(0);
        let mut interrupted = 0;
        /// Stops the killer however the scope ends, so a failed assertion cannot hang it.
        struct StopOnDrop<'a>(&'a AtomicBool);
        impl Drop for StopOnDrop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        thread::scope(|s| {
            let (stop, kills) = (&stop, &kills);
            let _stop = StopOnDrop(stop);
            let mut admin = db.conn();
            s.spawn(move || {
                let mut pause = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    admin
                        .batch_execute(&format!("KILL QUERY {session}"))
                        .expect("kill query");
                    kills.fetch_add(1, Ordering::SeqCst);
                    pause = (pause * 7 + 3) % 2_000;
                    thread::sleep(Duration::from_micros(pause));
                }
            });
            for round in 0..40 {
                interrupted += interruptions(&inbox, &mut conn, round);
            }
        });
        assert!(kills.load(Ordering::SeqCst) > 0);
        assert!(interrupted > 0, "no call was interrupted");
        assert!(every_operation(&inbox, &mut conn, 99).is_empty());
        assert_eq!(conn.conversation_rows(), conn.expected_conversation_rows());
    });
}
