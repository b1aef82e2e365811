//! SQLite: `RETURNING` (3.35+, bundled) and `BEGIN IMMEDIATE` write transactions, which
//! also serialize every send, so no row lock is needed.

use std::time::Duration;

use diesel::prelude::*;
use diesel::sqlite::Sqlite as Backend;
use diesel::QueryResult;

use super::{self as execution, SqliteConn as Conn};
use crate::operations::SearchSql;
use crate::operations::{Bind, Body};
use crate::retry::Retry;
use crate::{MessageId, Result, UserId};
use execution::RunQueryDsl;

// The shared text, for `Conn`, and the writes of the backends with `RETURNING`.
#[path = "../queries/mod.rs"]
mod queries;
#[path = "returning.rs"]
mod returning;

use queries::transactions;

/// How long `run_migrations` waits for other connections' write transactions.
const MIGRATION_LOCK_WAIT: Duration = Duration::from_secs(60);

/// What opens a transaction that may write: the write lock up front. A deferred
/// transaction that reads first and then writes fails at once with "database is locked"
/// when another writer got in between, whatever the busy timeout, while
/// `BEGIN IMMEDIATE` waits for the timeout.
const BEGIN_IMMEDIATE: &str = "BEGIN IMMEDIATE";

/// SQLite's side of the contract with the shared text.
#[derive(Debug)]
struct Hooks;

impl queries::Dialect for Hooks {
    /// Statements outside a transaction of the inbox's wait out a busy database: a read
    /// meets one while a writer commits (with the rollback journal), a write while another
    /// connection holds the write lock.
    const PLAIN_RETRY: Option<Retry> = Some(Retry::BUSY);

    /// A transaction (which takes the write lock up front) waits out a busy database,
    /// whether the lock was refused at `BEGIN IMMEDIATE` or, with the rollback journal, the
    /// `COMMIT` found readers in the way: the attempt is rolled back whole and made again.
    const RETRY: Retry = Retry::BUSY;

    /// The search index (an FTS5 table): a side's row is at rowid `2 * id`, `+ 1` for the
    /// recipient's. FTS5 answers a match with a rowid bound and order by itself, walking its
    /// rowids backwards (see `Limited` for the `+ 0`).
    const SEARCH: SearchSql = SearchSql {
        insert: "INSERT INTO direct_message_search (rowid, terms) VALUES (?, ?), (?, ?)",
        update: "UPDATE direct_message_search SET terms = ? WHERE rowid = ?",
        delete: "DELETE FROM direct_message_search WHERE rowid = ?",
        select: "SELECT rowid / 2 AS id FROM direct_message_search \
                 WHERE direct_message_search MATCH ? AND rowid < ? ORDER BY rowid DESC LIMIT ? + 0",
        recent: None,
    };

    type Writes = returning::Returning;

    type Statement<Q> = Q;

    /// Statements are cached by Diesel as usual.
    fn statement<Q>(query: Q) -> Q {
        query
    }

    /// One write transaction around the whole run, so instances starting together apply the
    /// migrations one after the other; the write lock is waited for as long as
    /// [`MIGRATION_LOCK_WAIT`], whatever the connection's busy timeout.
    async fn migrate(conn: &mut Conn) -> Result<()> {
        transactions::retrying(conn, Retry::busy_for(MIGRATION_LOCK_WAIT), |conn| {
            Body::new(queries::apply_migrations(
                conn,
                crate::migrations::SQLITE,
                crate::migrations::SQLITE_LISTED,
            ))
        })
        .await
    }

    /// The outermost transaction of a retry: `BEGIN IMMEDIATE`, the body, `COMMIT`.
    async fn outermost<'a, T, F>(conn: &mut Conn, f: &mut F) -> Result<T>
    where
        F: for<'c> FnMut(&'c mut Conn) -> Body<'a, 'c, T>,
    {
        transactions::transaction(conn, Some(BEGIN_IMMEDIATE), f).await
    }

    /// The key of a side's search row: its rowid.
    fn search_key(id: MessageId, _owner: UserId, recipient_side: bool) -> Vec<Bind> {
        vec![Bind::Int(id.saturating_mul(2) + i64::from(recipient_side))]
    }

    /// The key below which a search with cursor `before` looks.
    fn search_below(before: MessageId) -> i64 {
        before.saturating_mul(2)
    }

    /// A search in FTS5's query syntax.
    fn search_match(terms: &crate::search::Terms) -> String {
        terms.fts5()
    }

    /// Reads the `(lo, hi)` row of a conversation (with whether `blocker` blocks `blocked`);
    /// `None` when it does not exist yet. The write transaction already holds the database's
    /// only write lock, so no row lock is needed.
    async fn lock_conversation(
        conn: &mut Conn,
        lo: UserId,
        hi: UserId,
        blocker: UserId,
        blocked: UserId,
    ) -> QueryResult<Option<crate::operations::LockedConversation>> {
        Self::statement(crate::operations::conversation_to_lock(
            lo, hi, blocker, blocked,
        ))
        .get_result(conn)
        .await
        .optional()
    }
}

/// The retry of the shared transaction text, on the one backend every test machine has.
#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use diesel::connection::SimpleConnection;
    use diesel::result::DatabaseErrorKind;

    use super::*;
    use crate::execution::blocking::run;
    use crate::Error;

    fn serialization_failure() -> Error {
        Error::Database(diesel::result::Error::DatabaseError(
            DatabaseErrorKind::SerializationFailure,
            Box::new(String::from("could not serialize access")),
        ))
    }

    fn conn() -> Conn {
        let mut conn = Conn::establish(":memory:").unwrap();
        conn.batch_execute("CREATE TABLE t (x INTEGER NOT NULL)")
            .unwrap();
        conn
    }

    fn rows(conn: &mut Conn) -> usize {
        diesel::RunQueryDsl::execute(diesel::sql_query("SELECT 1 FROM t"), conn).unwrap()
    }

    #[test]
    fn a_transient_failure_is_rolled_back_and_run_again() {
        let mut conn = conn();
        let mut attempts = 0;
        let result = run(transactions::retrying(&mut conn, Retry::TRANSIENT, |c| {
            attempts += 1;
            let attempt = attempts;
            Body::new(async move {
                execution::batch_execute(c, "INSERT INTO t VALUES (1)").await?;
                if attempt < 3 {
                    return Err(serialization_failure());
                }
                Ok(attempt)
            })
        }));
        assert_eq!(result.unwrap(), 3);
        assert_eq!(
            rows(&mut conn),
            1,
            "the failed attempts left nothing behind"
        );
    }

    /// With the feature `tracing`, each retry is an event.
    #[cfg(feature = "tracing")]
    #[test]
    fn a_retry_is_traced() {
        let mut conn = conn();
        let lines = crate::trace::recorder::Recorder::during(|| {
            let mut attempts = 0;
            let result = run(transactions::retrying(&mut conn, Retry::TRANSIENT, |_| {
                attempts += 1;
                let attempt = attempts;
                Body::new(async move {
                    if attempt < 2 {
                        return Err(serialization_failure());
                    }
                    Ok(())
                })
            }));
            assert!(result.is_ok());
        });
        assert!(
            lines.iter().any(|l| l.starts_with("event WARN")
                && l.contains("transaction retried")
                && l.contains("attempt=1")),
            "{lines:#?}"
        );
    }

    #[test]
    fn a_failure_that_persists_is_returned_after_the_last_attempt() {
        let mut conn = conn();
        let mut attempts = 0;
        let result: Result<()> = run(transactions::retrying(&mut conn, Retry::TRANSIENT, |_| {
            attempts += 1;
            Body::new(async { Err(serialization_failure()) })
        }));
        assert!(crate::retry::is_transient(&result.unwrap_err()));
        assert_eq!(attempts, crate::retry::MAX_ATTEMPTS);
    }

    #[test]
    fn inside_the_callers_transaction_nothing_is_retried() {
        let mut conn = conn();
        let mut attempts = 0;
        let outer: Result<()> = conn.transaction(|c| {
            let inner: Result<()> = run(transactions::retrying(c, Retry::TRANSIENT, |_| {
                attempts += 1;
                Body::new(async { Err(serialization_failure()) })
            }));
            assert!(inner.is_err());
            Ok(())
        });
        outer.unwrap();
        assert_eq!(attempts, 1);
    }

    /// A file shared by two connections, with table `t`, removed on drop.
    struct File(std::path::PathBuf);

    impl File {
        fn new(name: &str) -> Self {
            let path = std::env::temp_dir().join(format!(
                "dm-busy-{name}-{}-{:?}.db",
                std::process::id(),
                std::thread::current().id()
            ));
            let file = File(path);
            file.open()
                .batch_execute("CREATE TABLE t (x INTEGER NOT NULL)")
                .unwrap();
            file
        }

        /// A connection with SQLite's defaults: no busy timeout.
        fn open(&self) -> Conn {
            Conn::establish(&self.0.to_string_lossy()).unwrap()
        }

        fn count(&self) -> i64 {
            diesel::RunQueryDsl::get_result(
                diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
                    "(SELECT COUNT(*) FROM t)",
                )),
                &mut self.open(),
            )
            .unwrap()
        }
    }

    impl Drop for File {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn insert_one(conn: &mut Conn, wait: Retry) -> Result<()> {
        run(transactions::retrying(conn, wait, |c| {
            Body::new(async move {
                execution::batch_execute(c, "INSERT INTO t VALUES (1)").await?;
                Ok(())
            })
        }))
    }

    #[test]
    fn a_write_lock_held_past_the_deadline_is_an_error_that_wrote_nothing() {
        let file = File::new("deadline");
        let mut holder = file.open();
        holder
            .batch_execute("BEGIN IMMEDIATE; INSERT INTO t VALUES (0)")
            .unwrap();
        let started = std::time::Instant::now();
        let error = insert_one(
            &mut file.open(),
            Retry::busy_for(Duration::from_millis(300)),
        )
        .unwrap_err();
        let waited = started.elapsed();
        assert!(
            matches!(&error, Error::Database(e) if crate::retry::is_busy(e)),
            "{error:?}"
        );
        assert!(
            waited >= Duration::from_millis(150) && waited <= Duration::from_millis(400),
            "waited {waited:?} for a deadline of 300 ms"
        );
        holder.batch_execute("ROLLBACK").unwrap();
        assert_eq!(file.count(), 0, "nothing written");
    }

    #[test]
    fn a_write_lock_released_before_the_deadline_is_waited_for() {
        let file = File::new("released");
        let mut holder = file.open();
        holder
            .batch_execute("BEGIN IMMEDIATE; INSERT INTO t VALUES (0)")
            .unwrap();
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            holder.batch_execute("COMMIT").unwrap();
        });
        insert_one(&mut file.open(), Retry::BUSY).unwrap();
        release.join().unwrap();
        assert_eq!(file.count(), 2);
    }

    #[test]
    fn a_commit_that_finds_a_reader_in_the_way_is_made_again() {
        // With the rollback journal a COMMIT needs every reader gone; a reader holding
        // its shared lock makes it busy, and the attempt is rolled back and made again.
        let file = File::new("commit");
        let mut reader = file.open();
        reader
            .batch_execute("BEGIN; SELECT COUNT(*) FROM t")
            .unwrap();
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            reader.batch_execute("COMMIT").unwrap();
        });
        let mut attempts = 0;
        let mut conn = file.open();
        run(transactions::retrying(&mut conn, Retry::BUSY, |c| {
            attempts += 1;
            Body::new(async move {
                execution::batch_execute(c, "INSERT INTO t VALUES (1)").await?;
                Ok(())
            })
        }))
        .unwrap();
        release.join().unwrap();
        assert!(attempts > 1, "the first COMMIT found the reader");
        assert_eq!(file.count(), 1, "written once");
    }
}
