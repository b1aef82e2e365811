//! No statement the inbox runs on PostgreSQL or MariaDB reads a whole table, on a fixture
//! shaped to spring the known traps: one conversation holding a tenth of 100,000
//! messages, a user with 1,000 partners, and a user flooded with 20,000 unread messages.
//! Every statement of every operation is captured through Diesel's instrumentation and
//! EXPLAINed with its binds; on PostgreSQL under the custom plans of a connection's first
//! executions and under the generic plan alike. (`tests/query_plans.rs` does the same on
//! SQLite.)
#![cfg(any(feature = "postgres", feature = "mysql"))]

mod common;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;
use directmessages::{ConversationQuery, ConversationsQuery, Inbox, InboxConnection};

use common::{Capture, Probe, TestDb};

/// The big tables: a full read of either is the trap.
const BIG_TABLES: [&str; 3] = [
    "direct_messages",
    "direct_message_conversations",
    "direct_message_search",
];

/// Every operation of the inbox, on the fixture's hot users.
fn exercise<C: InboxConnection>(inbox: &Inbox, conn: &mut C) {
    let a = inbox.send_message(conn, 1, 2, "a").unwrap();
    let b = inbox.send_message(conn, 2, 1, "b").unwrap();
    inbox.send_message(conn, 1, 3, "c").unwrap();
    inbox
        .send_message(conn, 900_001, 900_002, "a new conversation")
        .unwrap();
    inbox.unread_messages(conn, 2).unwrap();
    inbox.unread_count(conn, 5).unwrap();
    inbox.read_message(conn, a.id).unwrap();
    inbox.read_message_as(conn, 2, a.id).unwrap();
    inbox.conversation_partners(conn, 1).unwrap();
    let page = ConversationQuery::new().reversed().limit(50);
    inbox.conversation(conn, 2, 1, page).unwrap();
    inbox
        .conversation(conn, 2, 1, page.before(b.id).after(0))
        .unwrap();
    inbox
        .conversation(conn, 1, 2, page.after(a.id).mark_read())
        .unwrap();
    inbox
        .conversations(conn, 1, ConversationsQuery::new().limit(20))
        .unwrap();
    inbox
        .conversations(conn, 1, ConversationsQuery::new().limit(20).before(b.id))
        .unwrap();
    inbox.mark_conversation_read(conn, 3, 1).unwrap();
    inbox.mark_conversation_read(conn, 5, 4).unwrap();
    inbox.delete_message(conn, 1, b.id).unwrap();
    inbox.delete_message(conn, 2, b.id).unwrap();
    inbox.block_user(conn, 3, 1).unwrap();
    inbox.is_blocked(conn, 3, 1).unwrap();
    inbox.archive_conversation(conn, 1, 2).unwrap();
    inbox
        .conversations(conn, 1, ConversationsQuery::new().archived().limit(5))
        .unwrap();
    inbox.unarchive_conversation(conn, 1, 2).unwrap();
    inbox.archive_conversation(conn, 1, 777_777).unwrap();
    inbox.mute_conversation(conn, 1, 2).unwrap();
    inbox.unmute_conversation(conn, 1, 2).unwrap();
    let oops = inbox.send_message(conn, 1, 2, "oops").unwrap();
    inbox.edit_message(conn, 1, oops.id, "oops!").unwrap();
    inbox.unsend_message(conn, 1, oops.id).unwrap();
    inbox.unblock_user(conn, 3, 1).unwrap();
    let search = directmessages::SearchQuery::new("partn");
    inbox.search(conn, 1, search.clone()).unwrap();
    inbox
        .search(conn, 1, search.with(10).limit(5).before(1000))
        .unwrap();
    inbox.purge_user(conn, 3).unwrap();
}

/// The hot spots of the fixture: user 5 with 20,000 unread messages from user 4, and
/// 10,000 messages between users 1 and 2 (each backend's test adds user 1's 1,000
/// partners and 65,000 messages between other users).
fn seed<C: Probe>(conn: &mut C) {
    conn.seed_unread(4, 5, 20_000);
    conn.seed_unread(1, 2, 10_000);
}

/// The statements `exercise` ran, each with its binds, but the inserts (nothing to plan).
fn statements<C: InboxConnection + Connection>(conn: &mut C) -> Vec<String> {
    let captured = Capture::on(conn);
    exercise(&Inbox::new(), conn);
    captured
        .all()
        .into_iter()
        .filter(|s| {
            let upper = s.to_uppercase();
            ["SELECT", "UPDATE", "DELETE", "WITH"]
                .iter()
                .any(|k| upper.starts_with(k))
        })
        .collect()
}

/// One bind of a captured statement: its SQL type for `PREPARE` (PostgreSQL) and its
/// value as an SQL literal. Numbers, booleans and arrays of numbers are written as they
/// are, text (a message's content) quoted; anything else (a timestamp being written) as
/// a NULL timestamp, which no plan depends on.
fn bind_literal(value: &str) -> (&'static str, String) {
    if value.parse::<i64>().is_ok() {
        ("bigint", value.to_owned())
    } else if value == "true" || value == "false" {
        ("boolean", value.to_owned())
    } else if value.starts_with('[') {
        ("bigint[]", format!("ARRAY{value}::bigint[]"))
    } else if let Some(text) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        ("text", format!("'{}'", text.replace('\'', "''")))
    } else {
        ("timestamptz", "NULL".to_owned())
    }
}

/// A captured statement's SQL and its binds (Diesel's debug list, split at the commas
/// outside brackets and parentheses).
fn sql_and_binds(captured: &str) -> (&str, Vec<(&'static str, String)>) {
    let Some((sql, list)) = captured.split_once(" -- binds: [") else {
        return (captured, Vec::new());
    };
    let list = list.strip_suffix(']').unwrap_or(list);
    let (mut binds, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in list.char_indices() {
        match c {
            '[' | '(' => depth += 1,
            ']' | ')' => depth -= 1,
            ',' if depth == 0 => {
                binds.push(bind_literal(list[start..i].trim()));
                start = i + 1;
            }
            _ => {}
        }
    }
    if !list.trim().is_empty() {
        binds.push(bind_literal(list[start..].trim()));
    }
    (sql, binds)
}

#[cfg(feature = "postgres")]
#[test]
fn on_postgresql_no_statement_reads_a_whole_table() {
    #[derive(QueryableByName)]
    struct PlanLine {
        #[diesel(sql_type = Text)]
        #[diesel(column_name = "QUERY PLAN")]
        line: String,
    }
    common::run::<common::PgDb>(|db| {
        let mut conn = db.conn();
        seed(&mut conn);
        conn.batch_execute(
            "INSERT INTO direct_messages (sender_id, recipient_id, content, sent_at) \
             SELECT 1, 10 + i % 1000, 'partners', now() FROM generate_series(1, 5000) i; \
             INSERT INTO direct_messages (sender_id, recipient_id, content, sent_at) \
             SELECT 2000 + i % 5000, 8000 + i % 7, 'elsewhere', now() \
             FROM generate_series(1, 65000) i; \
             INSERT INTO direct_message_search (message_id, owner_id, terms) \
             SELECT id, u.owner, array_to_tsvector(ARRAY[to_hex(u.owner) || 'x' || content, \
             to_hex(u.owner) || 'y' || to_hex(u.partner)]) FROM direct_messages, \
             LATERAL (VALUES (sender_id, recipient_id), (recipient_id, sender_id)) u (owner, partner) \
             ON CONFLICT DO NOTHING;",
        )
        .unwrap();
        conn.seed_unread(1, 7, 1); // rebuilds the conversation rows of all of the above
        conn.batch_execute("ANALYZE").unwrap();

        let statements = statements(&mut conn);
        assert!(
            statements.len() >= 25,
            "only {} statements",
            statements.len()
        );
        assert!(
            statements.iter().any(|s| s.starts_with("WITH")),
            "the one-statement send was not captured"
        );
        let mut explain = db.conn();
        for (n, captured) in statements.iter().enumerate() {
            let (sql, binds) = sql_and_binds(captured);
            let types: Vec<&str> = binds.iter().map(|(t, _)| *t).collect();
            let values: Vec<&str> = binds.iter().map(|(_, v)| v.as_str()).collect();
            for mode in ["auto", "force_generic_plan"] {
                let (prepare, execute) = if binds.is_empty() {
                    (
                        format!("PREPARE s{n}_{mode} AS {sql}"),
                        format!("EXPLAIN EXECUTE s{n}_{mode}"),
                    )
                } else {
                    (
                        format!("PREPARE s{n}_{mode}({}) AS {sql}", types.join(", ")),
                        format!("EXPLAIN EXECUTE s{n}_{mode}({})", values.join(", ")),
                    )
                };
                explain
                    .batch_execute(&format!("SET plan_cache_mode = {mode}; {prepare};"))
                    .unwrap_or_else(|e| panic!("{e}: {prepare}"));
                let plan: Vec<PlanLine> = diesel::sql_query(execute)
                    .load(&mut explain)
                    .unwrap_or_else(|e| panic!("{e}: {sql}"));
                let text: Vec<String> = plan.into_iter().map(|p| p.line).collect();
                let text = text.join("\n");
                for table in BIG_TABLES {
                    assert!(
                        !text.contains(&format!("Seq Scan on {table}")),
                        "{mode}: a full read of {table} for\n  {sql}\n{text}"
                    );
                }
            }
        }
    });
}

#[cfg(feature = "mysql")]
#[test]
fn on_mariadb_no_statement_reads_a_whole_table() {
    #[derive(QueryableByName, Debug)]
    struct PlanRow {
        #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
        table: Option<String>,
        #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
        #[diesel(column_name = "type")]
        access: Option<String>,
        #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
        key: Option<String>,
    }
    common::run::<common::MysqlDb>(|db| {
        let mut conn = db.conn();
        seed(&mut conn);
        let digits = "(SELECT 0 AS d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL \
                      SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 \
                      UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9)";
        let numbers = format!(
            "(SELECT a.d + 10 * b.d + 100 * c.d + 1000 * e.d + 10000 * f.d AS n \
              FROM {digits} a, {digits} b, {digits} c, {digits} e, {digits} f) numbers"
        );
        conn.batch_execute(&format!(
            "INSERT INTO direct_messages (sender_id, recipient_id, content, sent_at) \
             SELECT 1, 10 + n % 1000, 'partners', UTC_TIMESTAMP(6) FROM {numbers} \
             WHERE n < 5000"
        ))
        .unwrap();
        conn.batch_execute(&format!(
            "INSERT INTO direct_messages (sender_id, recipient_id, content, sent_at) \
             SELECT 2000 + n % 5000, 8000 + n % 7, 'elsewhere', UTC_TIMESTAMP(6) \
             FROM {numbers} WHERE n < 65000"
        ))
        .unwrap();
        for (owner, partner) in [("sender_id", "recipient_id"), ("recipient_id", "sender_id")] {
            conn.batch_execute(&format!(
                "INSERT IGNORE INTO direct_message_search (message_id, owner_id, terms) \
                 SELECT id, {owner}, CONCAT(LOWER(HEX({owner})), 'x', content, ' ', \
                 LOWER(HEX({owner})), 'y', LOWER(HEX({partner}))) FROM direct_messages"
            ))
            .unwrap();
        }
        conn.seed_unread(1, 7, 1); // rebuilds the conversation rows of all of the above
        conn.batch_execute(
            "ANALYZE TABLE direct_messages, direct_message_conversations, direct_message_search",
        )
        .unwrap();

        let statements = statements(&mut conn);
        assert!(
            statements.len() >= 25,
            "only {} statements",
            statements.len()
        );
        let mut explain = db.conn();
        for captured in &statements {
            let (sql, binds) = sql_and_binds(captured);
            let mut binds = binds.into_iter().map(|(_, value)| value);
            let inlined: String = sql
                .chars()
                .map(|c| match c {
                    '?' => binds.next().expect("a bind per placeholder"),
                    c => c.to_string(),
                })
                .collect();
            let plan: Vec<PlanRow> = diesel::sql_query(format!("EXPLAIN {inlined}"))
                .load(&mut explain)
                .unwrap_or_else(|e| panic!("{e}: {inlined}"));
            for row in &plan {
                let table = row.table.as_deref().unwrap_or("");
                let access = row.access.as_deref().unwrap_or("");
                assert!(
                    !(BIG_TABLES.contains(&table) && (access == "ALL" || access == "index")),
                    "a full read of {table} for\n  {inlined}\n{plan:?}"
                );
                let _ = &row.key;
            }
        }
    });
}
