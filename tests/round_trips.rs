//! How many statements each write sends: every one is a round trip to a server.

mod common;

use directmessages::Inbox;

use common::{Capture, TestDb};

/// The statements of `write` on a connection where `setup` ran first.
fn statements_of<D: TestDb>(
    db: &D,
    setup: impl FnOnce(&Inbox, &mut D::Conn),
    write: impl FnOnce(&Inbox, &mut D::Conn),
) -> Vec<String> {
    let mut conn = db.conn();
    let inbox = Inbox::new();
    setup(&inbox, &mut conn);
    let captured = Capture::on(&mut conn);
    write(&inbox, &mut conn);
    captured.all()
}

/// A send to an existing conversation: the transaction around it (on MySQL: the guarded
/// one), one statement that locks the conversation and reads its latest time and the
/// block, the insert (on MySQL: and `LAST_INSERT_ID()`), and one update of both sides;
/// on PostgreSQL all three in one statement.
fn a_send_to_an_existing_conversation<D: TestDb>(db: &D) {
    let sent = statements_of(
        db,
        |inbox, conn| drop(inbox.send_message(conn, 1, 2, "first").unwrap()),
        |inbox, conn| drop(inbox.send_message(conn, 2, 1, "second").unwrap()),
    );
    let expected = match D::NAME {
        "mysql" => 9,
        "postgres" => 3,
        _ => 5,
    };
    assert_eq!(sent.len(), expected, "{sent:#?}");
}

/// Calls that change nothing send no transaction control and take no write lock.
fn calls_that_change_nothing_send_one_statement<D: TestDb>(db: &D) {
    let sent = statements_of(
        db,
        |inbox, conn| {
            let m = inbox.send_message(conn, 1, 2, "first").unwrap();
            inbox.read_message(conn, m.id).unwrap();
        },
        |inbox, conn| {
            inbox.read_message_as(conn, 2, 1).unwrap();
            inbox.mark_conversation_read(conn, 2, 1).unwrap();
            inbox
                .conversation(
                    conn,
                    2,
                    1,
                    directmessages::ConversationQuery::new().mark_read(),
                )
                .unwrap();
        },
    );
    assert_eq!(sent.len(), 3, "{sent:#?}");
    assert!(sent.iter().all(|s| s.starts_with("SELECT")), "{sent:#?}");
}

backend_suite!(
    a_send_to_an_existing_conversation,
    calls_that_change_nothing_send_one_statement,
);
