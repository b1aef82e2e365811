//! SQLite: `RETURNING` (3.35+, bundled) and `BEGIN IMMEDIATE` write transactions, which
//! also serialize every send, so no row lock is needed.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sqlite::Sqlite as Backend;
use diesel::QueryResult;

use super::{self as execution, SqliteConn as Conn};
use crate::message::{NewMessage, StoredMessage};
use crate::operations::{Bind, Body, MarkFilter};
use crate::retry::backoff;
use crate::schema::direct_message_conversations as conv;
use crate::schema::direct_messages as dm;
use crate::schema::UtcTimestamp;
use crate::{Error, Message, MessageId, Result, UserId};
use execution::RunQueryDsl;

// The shared operations, compiled for `Conn`: one text, mounted once per backend and flavour.
#[allow(clippy::duplicate_mod)]
#[path = "../operations/queries.rs"]
mod operations;

#[allow(clippy::duplicate_mod)]
#[path = "../operations/migrate.rs"]
mod migrate;

// SQLite never retries: its writers wait for the write lock instead (busy timeout).
#[allow(clippy::duplicate_mod, dead_code)]
#[path = "../operations/transactions.rs"]
mod transactions;

/// The embedded migrations, oldest first.
const MIGRATIONS: &[migrate::Migration] = &[
    (
        "00000000000101",
        include_str!("../../migrations/sqlite/00000000000101_create_direct_messages/up.sql"),
    ),
    (
        "00000000000102",
        include_str!(
            "../../migrations/sqlite/00000000000102_create_direct_message_conversations/up.sql"
        ),
    ),
    (
        "00000000000103",
        include_str!("../../migrations/sqlite/00000000000103_create_direct_message_blocks/up.sql"),
    ),
    (
        "00000000000104",
        include_str!("../../migrations/sqlite/00000000000104_create_direct_message_search/up.sql"),
    ),
];

/// How long `run_migrations` waits for other connections' write transactions.
const MIGRATION_LOCK_WAIT: Duration = Duration::from_secs(60);

/// What opens a transaction that may write: the write lock up front. A deferred
/// transaction that reads first and then writes fails at once with "database is locked"
/// when another writer got in between, whatever the busy timeout, while
/// `BEGIN IMMEDIATE` waits for the timeout.
const BEGIN_IMMEDIATE: &str = "BEGIN IMMEDIATE";

/// Statements are cached by Diesel as usual.
fn statement<Q>(query: Q) -> Q {
    query
}

/// Whether SQLite refused a lock another connection holds.
fn is_busy(error: &Error) -> bool {
    let text = match error {
        Error::Database(diesel::result::Error::DatabaseError(_, info)) => info.message(),
        Error::Migration(text) => text,
        _ => return false,
    };
    text.contains("database is locked")
}

/// One write transaction around the whole run, so instances starting together apply the
/// migrations one after the other; a connection without a busy timeout gets "database is
/// locked" at once, so the lock is asked for again until it is free.
async fn migrate(conn: &mut Conn) -> Result<()> {
    if transactions::is_nested(conn)? {
        return migrate::apply(conn, MIGRATIONS).await;
    }
    let deadline = Instant::now() + MIGRATION_LOCK_WAIT;
    let mut attempt = 1;
    loop {
        let run = transactions::transaction(conn, Some(BEGIN_IMMEDIATE), &mut |conn| {
            Body::new(migrate::apply(conn, MIGRATIONS))
        })
        .await;
        match run {
            Err(e) if is_busy(&e) && Instant::now() < deadline => {
                execution::sleep(backoff(attempt)).await;
                attempt += 1;
            }
            result => return result,
        }
    }
}

/// Runs `f` in a transaction that takes the write lock up front (a savepoint inside the
/// caller's own).
async fn write_transaction<'a, T, F>(conn: &mut Conn, mut f: F) -> Result<T>
where
    F: for<'c> FnMut(&'c mut Conn) -> Body<'a, 'c, T> + Send,
{
    let begin = if transactions::is_nested(conn)? {
        None
    } else {
        Some(BEGIN_IMMEDIATE)
    };
    transactions::transaction(conn, begin, &mut f).await
}

crate::dialect::returning_hooks!();

// SQLite's write lock is the conversation's lock, and each statement a call into this
// process: the general path of `send` costs no round trips.
crate::dialect::no_one_statement_send!();

/// The unread messages of `user`, in one statement.
async fn unread_messages(conn: &mut Conn, user: UserId) -> QueryResult<Vec<Message>> {
    operations::load_unread(conn, user).await
}

/// The message as last committed: every statement sees it.
async fn find_current(conn: &mut Conn, id: MessageId) -> QueryResult<Option<StoredMessage>> {
    operations::find_stored(conn, id).await
}

/// The search index (an FTS5 table): a side's row is at rowid `2 * id`, `+ 1` for the
/// recipient's. FTS5 answers a match with a rowid bound and order by itself, walking its
/// rowids backwards (see `Limited` for the `+ 0`).
const SEARCH: crate::operations::SearchSql = crate::operations::SearchSql {
    insert: "INSERT INTO direct_message_search (rowid, terms) VALUES (?, ?), (?, ?)",
    update: "UPDATE direct_message_search SET terms = ? WHERE rowid = ?",
    delete: "DELETE FROM direct_message_search WHERE rowid = ?",
    select: "SELECT rowid / 2 AS id FROM direct_message_search \
             WHERE direct_message_search MATCH ? AND rowid < ? ORDER BY rowid DESC LIMIT ? + 0",
    recent: None,
};

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
    statement(crate::operations::conversation_to_lock(
        lo, hi, blocker, blocked,
    ))
    .get_result(conn)
    .await
    .optional()
}

/// The outermost transaction a retry runs. SQLite's writers wait for the write lock
/// rather than retry, so only the tests of the retry below use it.
#[cfg_attr(not(test), allow(dead_code))]
async fn outermost<'a, T, F>(conn: &mut Conn, f: &mut F) -> Result<T>
where
    F: for<'c> FnMut(&'c mut Conn) -> Body<'a, 'c, T>,
{
    transactions::transaction(conn, None, f).await
}

/// The retry of the shared transaction text, on the one backend every test machine has.
#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use diesel::connection::SimpleConnection;
    use diesel::result::DatabaseErrorKind;

    use super::*;
    use crate::execution::blocking::run;

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
        let result = run(transactions::retrying(&mut conn, |c| {
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
            let result = run(transactions::retrying(&mut conn, |_| {
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
        let result: Result<()> = run(transactions::retrying(&mut conn, |_| {
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
            let inner: Result<()> = run(transactions::retrying(c, |_| {
                attempts += 1;
                Body::new(async { Err(serialization_failure()) })
            }));
            assert!(inner.is_err());
            Ok(())
        });
        outer.unwrap();
        assert_eq!(attempts, 1);
    }
}
