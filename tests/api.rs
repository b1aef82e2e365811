#![cfg(feature = "sqlite")]
//! The shape of the public API, and the errors that come from the database itself.

use diesel::connection::SimpleConnection;
use diesel::{Connection, SqliteConnection};
use directmessages::{Error, Inbox, Message, Signals};

fn assert_send_sync<T: Send + Sync + 'static>() {}

#[test]
fn inbox_signals_and_errors_can_cross_threads() {
    assert_send_sync::<Inbox>();
    assert_send_sync::<Signals>();
    assert_send_sync::<Error>();
    fn is_std_error<E: std::error::Error>() {}
    is_std_error::<Error>();
}

#[test]
fn a_message_displays_as_its_content() {
    let mut conn = SqliteConnection::establish(":memory:").unwrap();
    directmessages::run_migrations(&mut conn).unwrap();
    let m: Message = Inbox::new()
        .send_message(&mut conn, 1, 2, "Hello 👋")
        .unwrap();
    assert_eq!(m.to_string(), "Hello 👋");
    assert_eq!(m.partner_of(1), 2);
    assert_eq!(m.partner_of(2), 1);
}

#[test]
fn operations_before_migrations_are_database_errors() {
    let mut conn = SqliteConnection::establish(":memory:").unwrap();
    let err = Inbox::new()
        .send_message(&mut conn, 1, 2, "too early")
        .unwrap_err();
    assert!(matches!(err, Error::Database(_)), "{err:?}");
    // The cause is the source, printed once in a chain, not repeated in the message.
    assert_eq!(err.to_string(), "database error");
    let source = std::error::Error::source(&err).expect("the Diesel error");
    assert!(source.to_string().contains("no such table"), "{source}");
}

#[test]
fn query_options_are_copy_values() {
    fn assert_copy<T: Copy>() {}
    assert_copy::<directmessages::ConversationQuery>();
    assert_copy::<directmessages::ConversationsQuery>();
}

#[test]
fn a_conflicting_table_is_a_migration_error_and_is_left_alone() {
    let mut conn = SqliteConnection::establish(":memory:").unwrap();
    conn.batch_execute(
        "CREATE TABLE direct_messages (legacy TEXT); INSERT INTO direct_messages VALUES ('keep me');",
    )
    .unwrap();
    let err = directmessages::run_migrations(&mut conn).unwrap_err();
    assert!(matches!(err, Error::Migration(_)), "{err:?}");
    #[derive(diesel::QueryableByName)]
    struct Legacy {
        #[diesel(sql_type = diesel::sql_types::Text)]
        legacy: String,
    }
    use diesel::RunQueryDsl;
    let rows: Vec<Legacy> = diesel::sql_query("SELECT legacy FROM direct_messages")
        .load(&mut conn)
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].legacy, "keep me");
}

#[cfg(feature = "serde")]
#[test]
fn query_options_deserialize_from_partial_input() {
    use directmessages::{ConversationQuery, ConversationsQuery};
    let q: ConversationQuery =
        serde_json::from_str(r#"{"limit": 50, "reversed": true, "before": 1234}"#).unwrap();
    assert_eq!(
        q,
        ConversationQuery::new().limit(50).reversed().before(1234)
    );
    let q: ConversationQuery = serde_json::from_str("{}").unwrap();
    assert_eq!(q, ConversationQuery::default());
    let q: ConversationsQuery = serde_json::from_str(r#"{"limit": 20}"#).unwrap();
    assert_eq!(q, ConversationsQuery::new().limit(20));
    let q: ConversationsQuery = serde_json::from_str(r#"{"archived": true}"#).unwrap();
    assert_eq!(q, ConversationsQuery::new().archived());
}

#[cfg(feature = "serde")]
#[test]
fn messages_and_summaries_round_trip_through_serde() {
    use directmessages::{ConversationSummary, ConversationsQuery};
    let mut conn = SqliteConnection::establish(":memory:").unwrap();
    directmessages::run_migrations(&mut conn).unwrap();
    let inbox = Inbox::new();
    let m = inbox.send_message(&mut conn, 1, 2, "serde ✓").unwrap();
    let json = serde_json::to_string(&m).unwrap();
    assert!(json.contains("\"content\":\"serde ✓\""));
    assert_eq!(serde_json::from_str::<Message>(&json).unwrap(), m);
    let rows = inbox
        .conversations(&mut conn, 2, ConversationsQuery::new())
        .unwrap();
    let json = serde_json::to_string(&rows).unwrap();
    assert_eq!(
        serde_json::from_str::<Vec<ConversationSummary>>(&json).unwrap(),
        rows
    );
}
