//! Statements cut off by the server, on PostgreSQL and MySQL/MariaDB: a statement timeout,
//! and a DBA cancelling queries from another session (`pg_cancel_backend`, `KILL QUERY`).
//! Every call returns (the harness's watchdog fails a hang), and the connection goes on
//! working.

#![cfg(any(feature = "postgres", feature = "mysql"))]

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use directmessages::{ConversationQuery, ConversationsQuery, Error, Inbox, InboxConnection};

use common::{Probe, TestDb};

/// Whether the server cut the statement off: MySQL's "interrupted" (`max_statement_time`,
/// `KILL QUERY`), PostgreSQL's "canceling statement" (`statement_timeout`, a cancel).
fn is_interruption(error: &Error) -> bool {
    matches!(error, Error::Database(e)
        if e.to_string().contains("interrupted") || e.to_string().contains("canceling statement"))
}

/// Makes one call of each kind on `conn` and returns how many the server interrupted;
/// any other error fails the test.
fn interruptions<C: InboxConnection>(inbox: &Inbox, conn: &mut C, round: usize) -> usize {
    let errors = every_operation(inbox, conn, round);
    for error in &errors {
        assert!(is_interruption(error), "round {round}: {error:?}");
    }
    errors.len()
}

/// One call of each kind the inbox makes, on `conn`: the errors they returned.
fn every_operation<C: InboxConnection>(inbox: &Inbox, conn: &mut C, round: usize) -> Vec<Error> {
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

/// A statement timeout of a millisecond cuts off the inbox's statements against a user
/// with 50,000 unread messages; each call returns the interruption, and the connection
/// goes on working once the limit is lifted.
fn statements_cut_off_by_a_timeout_leave_the_connection_usable<D: TestDb>(db: &D) {
    let inbox = common::builder::<D>().build();
    let mut conn = db.conn();
    conn.seed_unread(2, 1, 50_000);
    conn.seed_unread(3, 1, 100);
    conn.set_statement_timeout_ms(1);
    let mut interrupted = 0;
    for round in 0..5 {
        interrupted += interruptions(&inbox, &mut conn, round);
    }
    assert!(interrupted > 0, "the limit cut nothing off");
    conn.set_statement_timeout_ms(0);
    assert!(every_operation(&inbox, &mut conn, 99).is_empty());
    let unread = inbox.unread_messages(&mut conn, 1).unwrap().len() as i64;
    assert!(unread >= 49_000, "{unread}");
    assert_eq!(inbox.unread_count(&mut conn, 1).unwrap(), unread);
    assert_eq!(conn.conversation_rows(), conn.expected_conversation_rows());
}

/// Another session cancels whatever the connection runs, again and again while it works:
/// every call returns, and the connection is still usable at the end.
///
/// Not through a pooler in transaction mode: there a backend's id names a server
/// connection that each statement of a client may or may not get, not the client's
/// session (PgBouncer forwards the protocol's own cancel requests, which Diesel's blocking
/// connection does not send). The direct pass of the suite runs it.
fn cancels_from_another_session_never_hang_the_connection<D: TestDb>(db: &D) {
    if D::pooled() {
        eprintln!("note: session cancels are not tested through the pooler");
        return;
    }
    let inbox = common::builder::<D>().build();
    let mut conn = db.conn();
    conn.seed_unread(2, 1, 3_000);
    conn.seed_unread(3, 1, 3_000);
    let session = conn.session_id();
    let stop = AtomicBool::new(false);
    let cancels = AtomicUsize::new(0);
    let mut interrupted = 0;
    /// Stops the canceller however the scope ends, so a failed assertion cannot hang it.
    struct StopOnDrop<'a>(&'a AtomicBool);
    impl Drop for StopOnDrop<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    thread::scope(|s| {
        let (stop, cancels) = (&stop, &cancels);
        let _stop = StopOnDrop(stop);
        let mut admin = db.conn();
        s.spawn(move || {
            let mut pause = 0u64;
            while !stop.load(Ordering::SeqCst) {
                admin.cancel_statement(session);
                cancels.fetch_add(1, Ordering::SeqCst);
                pause = (pause * 7 + 3) % 2_000;
                thread::sleep(Duration::from_micros(pause));
            }
        });
        for round in 0..40 {
            interrupted += interruptions(&inbox, &mut conn, round);
        }
    });
    assert!(cancels.load(Ordering::SeqCst) > 0);
    assert!(interrupted > 0, "no call was interrupted");
    assert!(every_operation(&inbox, &mut conn, 99).is_empty());
    assert_eq!(conn.conversation_rows(), conn.expected_conversation_rows());
}

/// SQLite has no statement timeout nor another session to cancel from.
macro_rules! server_suite {
    ($($test:ident),* $(,)?) => {
        #[cfg(feature = "postgres")]
        mod postgres {
            $( #[test] fn $test() { $crate::common::run::<$crate::common::PgDb>(super::$test::<$crate::common::PgDb>) } )*
        }
        #[cfg(feature = "mysql")]
        mod mysql {
            $( #[test] fn $test() { $crate::common::run::<$crate::common::MysqlDb>(super::$test::<$crate::common::MysqlDb>) } )*
        }
    };
}

server_suite!(
    statements_cut_off_by_a_timeout_leave_the_connection_usable,
    cancels_from_another_session_never_hang_the_connection,
);
