//! No operation scans a whole table: every statement the inbox runs on SQLite is captured
//! through Diesel's instrumentation and its `EXPLAIN QUERY PLAN` must search an index.
#![cfg(feature = "sqlite")]

use std::sync::{Arc, Mutex};

use diesel::connection::{Instrumentation, InstrumentationEvent};
use diesel::prelude::*;
use diesel::sql_types::{Integer, Text};
use directmessages::{ConversationQuery, ConversationsQuery, Inbox};

#[derive(QueryableByName, Debug)]
struct PlanRow {
    #[diesel(sql_type = Integer)]
    id: i32,
    #[diesel(sql_type = Integer)]
    parent: i32,
    #[diesel(sql_type = Text)]
    detail: String,
}

/// Collects the SQL text of every statement started on a connection.
struct Capture(Arc<Mutex<Vec<String>>>);

impl Instrumentation for Capture {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        if let InstrumentationEvent::StartQuery { query, .. } = event {
            let text = query.to_string();
            // Drop Diesel's trailing "-- binds: [...]".
            let sql = text
                .split(" -- binds:")
                .next()
                .unwrap_or(&text)
                .trim()
                .to_owned();
            self.0.lock().unwrap().push(sql);
        }
    }
}

/// Every operation of the inbox, on enough data that a plan has a choice to make.
fn exercise(inbox: &Inbox, conn: &mut SqliteConnection) {
    let a = inbox.send_message(conn, 1, 2, "a").unwrap();
    let b = inbox.send_message(conn, 2, 1, "b").unwrap();
    inbox.send_message(conn, 1, 3, "c").unwrap();
    inbox.unread_messages(conn, 2).unwrap();
    inbox.unread_count(conn, 2).unwrap();
    inbox.read_message(conn, a.id).unwrap();
    inbox.read_message_as(conn, 2, a.id).unwrap();
    inbox
        .read_message_formatted(conn, b.id, |id| id.to_string())
        .unwrap();
    inbox.conversation_partners(conn, 1).unwrap();
    let q = ConversationQuery::new()
        .reversed()
        .limit(10)
        .before(1000)
        .after(0)
        .mark_read();
    inbox.conversation(conn, 2, 1, q).unwrap();
    inbox
        .conversation(conn, 2, 1, ConversationQuery::new())
        .unwrap();
    inbox
        .conversations(conn, 1, ConversationsQuery::new().limit(5).before(1000))
        .unwrap();
    inbox.mark_conversation_read(conn, 3, 1).unwrap();
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
    let search = directmessages::SearchQuery::new("fill");
    inbox.search(conn, 20, search.clone()).unwrap();
    inbox
        .search(conn, 20, search.with(1).limit(5).before(1000))
        .unwrap();
    inbox.purge_user(conn, 3).unwrap();
}

/// A migrated database with enough rows and fresh statistics that a scan would be the
/// planner's real choice.
fn analyzed(inbox: &Inbox) -> SqliteConnection {
    let mut conn = SqliteConnection::establish(":memory:").unwrap();
    directmessages::run_migrations(&mut conn).unwrap();
    for i in 0..300 {
        let (s, r) = (1 + i % 17, 20 + i % 13);
        inbox.send_message(&mut conn, s, r, "filler").unwrap();
    }
    diesel::sql_query("ANALYZE").execute(&mut conn).unwrap();
    conn
}

#[test]
fn every_statement_of_every_operation_searches_an_index() {
    let inbox = Inbox::new();
    let mut conn = analyzed(&inbox);

    let statements = Arc::new(Mutex::new(Vec::new()));
    conn.set_instrumentation(Capture(Arc::clone(&statements)));
    exercise(&inbox, &mut conn);

    let statements = statements.lock().unwrap().clone();
    let mut checked = 0;
    for sql in statements.iter().filter(|s| {
        let upper = s.to_uppercase();
        ["SELECT", "UPDATE", "DELETE"]
            .iter()
            .any(|k| upper.starts_with(k))
    }) {
        let plan: Vec<PlanRow> = diesel::sql_query(format!("EXPLAIN QUERY PLAN {sql}"))
            .load(&mut conn)
            .unwrap_or_else(|e| panic!("explain failed for {sql}: {e}"));
        for row in &plan {
            let _ = (row.id, row.parent);
            // FTS5 names its plan in the index string: `M` a full-text match, `=` a
            // rowid lookup; a virtual table scanned without either reads it all.
            let fts_lookup = row
                .detail
                .split_once("VIRTUAL TABLE INDEX ")
                .and_then(|(_, index)| index.split_once(':'))
                .is_some_and(|(_, how)| how.contains(['M', '=']));
            let scans_table = row.detail.starts_with("SCAN ")
                && !row.detail.starts_with("SCAN CONSTANT ROW")
                && !fts_lookup;
            assert!(
                !scans_table,
                "full scan in plan of\n  {sql}\n  {:?}",
                plan.iter().map(|r| &r.detail).collect::<Vec<_>>()
            );
        }
        checked += 1;
    }
    // Every operation above runs at least one statement worth checking.
    assert!(checked >= 25, "only {checked} statements were checked");
}

/// SQLite plans a bare `LIMIT ?` for the value bound to it and compiles the statement
/// again after every new binding: a page would pay a fresh parse and plan on every call.
/// The reads and marks the inbox runs bind their counts as `? + 0`, which it does not read.
#[test]
fn no_read_binds_a_bare_limit() {
    let mut conn = SqliteConnection::establish(":memory:").unwrap();
    directmessages::run_migrations(&mut conn).unwrap();
    let inbox = Inbox::new();
    let a = inbox.send_message(&mut conn, 1, 2, "a").unwrap();
    inbox.send_message(&mut conn, 2, 1, "b").unwrap();

    let statements = Arc::new(Mutex::new(Vec::new()));
    conn.set_instrumentation(Capture(Arc::clone(&statements)));
    inbox.read_message(&mut conn, a.id).unwrap();
    inbox.read_message_as(&mut conn, 2, a.id).unwrap();
    inbox.mark_conversation_read(&mut conn, 1, 2).unwrap();
    inbox.mark_conversation_read(&mut conn, 1, 2).unwrap();
    let page = ConversationQuery::new().reversed().limit(10).mark_read();
    inbox.conversation(&mut conn, 2, 1, page).unwrap();
    inbox
        .conversations(&mut conn, 1, ConversationsQuery::new().limit(5))
        .unwrap();

    let statements = statements.lock().unwrap().clone();
    let limited: Vec<&String> = statements
        .iter()
        .filter(|s| s.to_uppercase().contains("LIMIT"))
        .collect();
    assert!(
        limited.len() >= 2,
        "the pages were not captured: {statements:?}"
    );
    for sql in limited {
        assert!(
            sql.to_uppercase().contains("LIMIT ? + 0"),
            "a bare LIMIT in\n  {sql}"
        );
    }
}

/// The handle of the last SQLite connection opened on this thread, recorded by an
/// automatic extension: Diesel does not hand out its raw connection, and this test reads
/// the counters of the statements it keeps prepared.
mod handle {
    use std::cell::Cell;
    use std::sync::Once;

    use libsqlite3_sys as ffi;

    thread_local! {
        static LAST: Cell<*mut ffi::sqlite3> = const { Cell::new(std::ptr::null_mut()) };
    }

    unsafe extern "C" fn record(
        db: *mut ffi::sqlite3,
        _: *mut *mut std::os::raw::c_char,
        _: *const ffi::sqlite3_api_routines,
    ) -> std::os::raw::c_int {
        LAST.with(|last| last.set(db));
        ffi::SQLITE_OK
    }

    /// Records every connection opened from now on.
    pub fn record_connections() {
        static REGISTER: Once = Once::new();
        REGISTER.call_once(|| {
            // SAFETY: `record` has the signature SQLite calls an extension's entry point with.
            let rc = unsafe { ffi::sqlite3_auto_extension(Some(record)) };
            assert_eq!(rc, ffi::SQLITE_OK);
        });
    }

    /// The last connection this thread opened.
    pub fn last() -> *mut ffi::sqlite3 {
        LAST.with(Cell::get)
    }

    /// Each statement prepared on `db`: its text, and how often SQLite compiled it again
    /// since the last call (which resets the counts).
    ///
    /// # Safety
    /// `db` is an open connection, used by no other thread during the call.
    pub unsafe fn recompiled(db: *mut ffi::sqlite3) -> Vec<(String, i32)> {
        let mut out = Vec::new();
        let mut stmt = unsafe { ffi::sqlite3_next_stmt(db, std::ptr::null_mut()) };
        while !stmt.is_null() {
            let sql = unsafe { std::ffi::CStr::from_ptr(ffi::sqlite3_sql(stmt)) };
            let count =
                unsafe { ffi::sqlite3_stmt_status(stmt, ffi::SQLITE_STMTSTATUS_REPREPARE, 1) };
            out.push((sql.to_string_lossy().into_owned(), count));
            stmt = unsafe { ffi::sqlite3_next_stmt(db, stmt) };
        }
        out
    }
}

/// After `ANALYZE` (or a `PRAGMA optimize` that runs it), SQLite built with STAT4, as the
/// bundled library is, reads the values bound against an indexed column while it plans,
/// and then compiles the statement again after every new binding: every call would pay
/// a parse and a plan, up to half of a small read. The inbox binds what it compares with
/// an index as `? + 0`, which the planner does not read, so the statements Diesel keeps
/// prepared are reused as they are, call after call.
#[test]
fn no_prepared_statement_is_compiled_again_after_analyze() {
    handle::record_connections();
    let inbox = Inbox::new();
    let mut conn = analyzed(&inbox);
    let db = handle::last();
    assert!(!db.is_null());
    // The first round prepares what is new and recompiles what `ANALYZE` made stale.
    exercise(&inbox, &mut conn);
    // SAFETY: `db` is `conn`'s handle, open and used by this thread only.
    unsafe { handle::recompiled(db) };

    exercise(&inbox, &mut conn);
    // SAFETY: as above.
    let statements = unsafe { handle::recompiled(db) };
    // FTS5 prepares statements of its own on its shadow tables (`'main'.'…_idx'`), and
    // `ANALYZE` gives those tables statistics too: not the inbox's text to change.
    let statements: Vec<(String, i32)> = statements
        .into_iter()
        .filter(|(sql, _)| !sql.contains("'main'."))
        .collect();
    assert!(
        statements.len() >= 25,
        "only {} statements are kept prepared",
        statements.len()
    );
    let recompiled: Vec<&(String, i32)> = statements.iter().filter(|(_, n)| *n > 0).collect();
    assert!(
        recompiled.is_empty(),
        "compiled again on a new binding:\n{recompiled:#?}"
    );
}
