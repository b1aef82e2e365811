//! What only MySQL/MariaDB can do to the inbox.
#![cfg(feature = "mysql")]

mod common;

use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::Text;
use directmessages::schema::direct_messages as dm;
use directmessages::Inbox;

use common::{MysqlDb, Probe, ReadLog, Subject, TestDb};

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
/// is rolled back and run again on the same connection, and that second run completes:
/// on the blocking and on the async inbox.
fn a_read_all_that_loses_a_deadlock_is_retried_to_completion<S: Subject<Db = MysqlDb>>(
    subject: &S,
) {
    {
        let db = subject.db();
        let setup = Arc::new(Inbox::new());
        let inbox = Arc::new(S::inbox(Inbox::builder()));
        let fired = ReadLog::on(inbox.signals());
        let mut conn = TestDb::conn(db);
        let ids: Vec<i64> = ["a", "b", "c"]
            .iter()
            .map(|text| setup.send_message(&mut conn, 1, 2, text).unwrap().id)
            .collect();
        let (first, second) = (ids[0], ids[1]);
        // The other transaction holds the second message, waits until the read-all holds
        // the first and waits for the second, then asks for the first: a deadlock.
        let (locked_tx, locked) = mpsc::channel();
        let (go_tx, go) = mpsc::channel::<()>();
        let (other_tx, other_done) = mpsc::channel();
        let mut other = TestDb::conn(db);
        let ballast = Arc::clone(&setup);
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
        let mut reader = subject.conn();
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
        assert_eq!(setup.unread_count(&mut conn, 2).unwrap(), 0);
        assert_eq!(conn.conversation_rows(), conn.expected_conversation_rows());
    }
}

#[test]
fn a_blocking_read_all_that_loses_a_deadlock_is_retried_to_completion() {
    common::run_subject::<MysqlDb>(a_read_all_that_loses_a_deadlock_is_retried_to_completion);
}

#[cfg(feature = "diesel-async")]
#[test]
fn an_async_read_all_that_loses_a_deadlock_is_retried_to_completion() {
    common::run_subject::<common::Async<MysqlDb>>(
        a_read_all_that_loses_a_deadlock_is_retried_to_completion,
    );
}

/// A captured statement with its binds written in for `?`, for EXPLAIN.
fn with_binds(captured: &str) -> String {
    let (sql, binds) = common::split_binds(captured);
    let mut binds = binds.into_iter();
    sql.chars()
        .map(|c| match c {
            '?' => binds.next().expect("a bind per placeholder"),
            c => c.to_string(),
        })
        .collect()
}

#[derive(QueryableByName, Debug)]
struct PlanRow {
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    key: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    #[diesel(column_name = Extra)]
    extra: Option<String>,
}

/// One conversation holds a tenth of 100,000 messages: the inbox's page statement still
/// reads it through `direct_messages_conversation`, newest first, without a sort, where a
/// bare `(user_hi)` index once drew MariaDB into reading all 10,000 and sorting them.
#[test]
fn a_page_of_a_skewed_conversation_reads_the_conversation_index() {
    common::run::<MysqlDb>(|db| {
        let inbox = Inbox::new();
        let mut conn = TestDb::conn(db);
        conn.seed_unread(1, 2, 10_000);
        let digits = "(SELECT 0 AS d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL \
                      SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 \
                      UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9)";
        diesel::sql_query(format!(
            "INSERT INTO direct_messages (sender_id, recipient_id, content, sent_at) \
             SELECT 3 + n % 5000, 5003 + n % 7, 'elsewhere', UTC_TIMESTAMP(6) FROM \
             (SELECT a.d + 10 * b.d + 100 * c.d + 1000 * e.d + 10000 * f.d AS n \
              FROM {digits} a, {digits} b, {digits} c, {digits} e, {digits} f) numbers \
             WHERE n < 90000"
        ))
        .execute(&mut conn)
        .unwrap();
        diesel::sql_query("ANALYZE TABLE direct_messages")
            .execute(&mut conn)
            .unwrap();

        let statements = common::Capture::on(&mut conn);
        let page = inbox
            .conversation(
                &mut conn,
                1,
                2,
                directmessages::ConversationQuery::new()
                    .reversed()
                    .limit(50),
            )
            .unwrap();
        assert_eq!(page.len(), 50);
        let page_sql = statements.find(|s| s.starts_with("SELECT") && s.contains("ORDER BY"));
        let plan: Vec<PlanRow> = diesel::sql_query(format!("EXPLAIN {}", with_binds(&page_sql)))
            .load(&mut TestDb::conn(db))
            .unwrap();
        assert_eq!(plan.len(), 1, "{plan:?}");
        assert_eq!(
            plan[0].key.as_deref(),
            Some("direct_messages_conversation"),
            "{plan:?}"
        );
        let extra = plan[0].extra.as_deref().unwrap_or("");
        assert!(!extra.contains("filesort"), "{plan:?}");
    });
}
