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
    let inbox = common::builder::<D>().build();
    setup(&inbox, &mut conn);
    let captured = Capture::on(&mut conn);
    write(&inbox, &mut conn);
    captured.all()
}

/// A send to an existing conversation: the transaction around it (on MySQL: the guarded
/// one), one statement that locks the conversation and reads its latest time and the
/// block, the insert (on MySQL: and `LAST_INSERT_ID()`), the search index's two rows in
/// one insert, and one update of both sides
/// (on MySQL: and a read of the recipient's mute, which elsewhere comes back from it);
/// on PostgreSQL all four in one statement, which is its own transaction on this
/// blocking connection (`tests/async.rs` counts the async send's).
fn a_send_to_an_existing_conversation<D: TestDb>(db: &D) {
    let sent = statements_of(
        db,
        |inbox, conn| drop(inbox.send_message(conn, 1, 2, "first").unwrap()),
        |inbox, conn| drop(inbox.send_message(conn, 2, 1, "second").unwrap()),
    );
    let expected = match D::NAME {
        "mysql" => 11,
        "postgres" => 1,
        _ => 6,
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

/// The hot calls, once the conversation exists: sends, reads that mark and reads that
/// do not, marking a conversation read, the badge and the inbox screens.
fn hot_calls<C: directmessages::InboxConnection>(inbox: &Inbox, conn: &mut C) {
    use directmessages::{ConversationQuery, ConversationsQuery};
    let m = inbox.send_message(conn, 1, 2, "to you").unwrap();
    inbox.read_message_as(conn, 2, m.id).unwrap();
    inbox.read_message_as(conn, 2, m.id).unwrap();
    inbox.send_message(conn, 2, 1, "to you too").unwrap();
    inbox.unread_count(conn, 1).unwrap();
    inbox.mark_conversation_read(conn, 1, 2).unwrap();
    inbox.mark_conversation_read(conn, 1, 2).unwrap();
    inbox
        .conversation(conn, 1, 2, ConversationQuery::new().reversed().limit(5))
        .unwrap();
    inbox
        .conversations(conn, 1, ConversationsQuery::new().limit(5))
        .unwrap();
    inbox.conversation_partners(conn, 1).unwrap();
}

/// Every statement of the hot calls, transaction control aside, is kept prepared by the
/// connection's statement cache on SQLite and PostgreSQL (a statement prepared on every
/// call costs a compilation or a server-side plan each time); on MySQL, none is, nor
/// through a pooler in transaction mode, where `transaction_pooling` turns the cache off.
fn hot_calls_keep_their_statements_prepared<D: TestDb>(db: &D) {
    let mut conn = db.conn();
    let inbox = common::builder::<D>().build();
    let captured = Capture::on(&mut conn);
    // The first message makes the conversation's rows, once: not a hot call.
    inbox.send_message(&mut conn, 1, 2, "first").unwrap();
    let first = captured.all().len();
    hot_calls(&inbox, &mut conn);
    hot_calls(&inbox, &mut conn);
    let cached = captured.cached();
    if D::NAME == "mysql" || D::pooled() {
        assert!(cached.is_empty(), "{} kept {cached:#?}", D::NAME);
        return;
    }
    let control = ["BEGIN", "COMMIT", "SAVEPOINT", "RELEASE", "ROLLBACK"];
    let mut checked = 0;
    for statement in &captured.all()[first..] {
        let sql = statement
            .split(" -- binds:")
            .next()
            .unwrap_or(statement)
            .trim();
        if control.iter().any(|c| sql.starts_with(c)) {
            continue;
        }
        assert!(
            cached.iter().any(|c| c == sql),
            "prepared afresh on every call:\n  {sql}"
        );
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} statements");
}

backend_suite!(
    a_send_to_an_existing_conversation,
    calls_that_change_nothing_send_one_statement,
    hot_calls_keep_their_statements_prepared,
);
