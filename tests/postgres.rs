//! What only PostgreSQL can do to the inbox: plans chosen per execution.
#![cfg(feature = "postgres")]

mod common;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;
use directmessages::{ConversationQuery, Inbox};

use common::{PgDb, Probe, TestDb};

#[derive(QueryableByName)]
struct PlanLine {
    #[diesel(sql_type = Text)]
    #[diesel(column_name = "QUERY PLAN")]
    line: String,
}

/// One conversation holds a tenth of 100,000 messages, all older than the rest. The
/// inbox's page statement reads it backward through `direct_messages_conversation` under
/// every plan PostgreSQL may choose for it: the custom plans of a connection's first five
/// executions, the generic plan after them, and either forced. (A visibility condition
/// the planner misjudged once drew it into a bitmap scan of the whole conversation and a
/// sort.)
#[test]
fn a_page_of_a_skewed_conversation_reads_the_conversation_index_backward() {
    common::run::<PgDb>(|db| {
        let inbox = Inbox::new();
        let mut conn = db.conn();
        conn.seed_unread(1, 2, 10_000);
        conn.batch_execute(
            "INSERT INTO direct_messages (sender_id, recipient_id, content, sent_at) \
             SELECT 3 + i % 5000, 5003 + i % 7, 'elsewhere', now() \
             FROM generate_series(1, 90000) i; \
             ANALYZE direct_messages;",
        )
        .unwrap();
        let statements = common::Capture::on(&mut conn);
        let page = inbox
            .conversation(
                &mut conn,
                1,
                2,
                ConversationQuery::new().reversed().limit(50),
            )
            .unwrap();
        assert_eq!(page.len(), 50);
        let captured = statements.find(|s| s.starts_with("SELECT") && s.contains("ORDER BY"));
        let (sql, binds) = common::split_binds(&captured);
        for mode in ["auto", "force_custom_plan", "force_generic_plan"] {
            let mut explain = db.conn();
            // In one transaction, so that a pooler in transaction mode keeps the prepared
            // statement and the setting on one server connection.
            explain.batch_execute("BEGIN").unwrap();
            explain
                .batch_execute(&format!(
                    "SET LOCAL plan_cache_mode = {mode}; PREPARE page AS {sql};"
                ))
                .unwrap();
            for run in 1..=6 {
                let plan: Vec<PlanLine> =
                    diesel::sql_query(format!("EXPLAIN EXECUTE page({})", binds.join(", ")))
                        .load(&mut explain)
                        .unwrap();
                let plan: Vec<String> = plan.into_iter().map(|p| p.line).collect();
                let text = plan.join("\n");
                assert!(
                    text.contains("Index Scan Backward using direct_messages_conversation")
                        && !text.contains("Sort"),
                    "{mode}, execution {run}:\n{text}"
                );
            }
            explain.batch_execute("DEALLOCATE page; COMMIT").unwrap();
        }
    });
}
