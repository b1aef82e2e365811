//! PostgreSQL: `RETURNING`, row locks by primary key, write transactions retried on
//! serialization failures and deadlocks, and migrations under an advisory lock.

use diesel::pg::Pg as Backend;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel::QueryResult;

use super::{self as execution, PgConn as Conn};
use crate::dialect::postgres_send::SendToConversation;
use crate::operations::SearchSql;
use crate::operations::{Body, Sent};
use crate::retry::Retry;
use crate::schema::UtcTimestamp;
use crate::{Error, Message, MessageId, Result, UserId};
use execution::RunQueryDsl;

// The shared text, for `Conn`, and the writes of the backends with `RETURNING`.
#[path = "../queries/mod.rs"]
mod queries;
#[path = "returning.rs"]
mod returning;
#[path = "row_lock.rs"]
mod row_lock;

use queries::{transactions, Dialect};

/// The key of the advisory lock `run_migrations` holds ("directmessages" in ASCII,
/// truncated), so that instances starting together migrate one after the other.
const MIGRATION_LOCK: i64 = 0x6469_7265_6374_6d73;

/// After a failed top-level transaction of ours whose ROLLBACK failed too (on MySQL, a
/// `KILL QUERY` or `max_statement_time` can cut off the ROLLBACK itself), Diesel marks the
/// connection's transaction manager broken and refuses every later transaction: a pool
/// would lose the connection for good. The transaction was ours, begun at depth 0, so
/// roll it back again, and once the server confirms, the connection is as it was before.
async fn restore_after_failed_rollback(conn: &mut Conn) {
    if execution::status(conn).transaction_depth().is_ok() {
        return;
    }
    transactions::end_transaction(conn, &["ROLLBACK"], &["ROLLBACK"]).await;
}

/// What [`SendToConversation`] yields: blocked, then the message's id and time, and the
/// recipient's mute (the last three `NULL` when blocked).
type SentRow = (bool, Option<MessageId>, Option<UtcTimestamp>, Option<bool>);

/// PostgreSQL's side of the contract with the shared text.
#[derive(Debug)]
struct Hooks;

impl Dialect for Hooks {
    /// Statements outside a transaction of the inbox's are not retried: PostgreSQL waits for
    /// the locks they need.
    const PLAIN_RETRY: Option<Retry> = None;

    /// Transactions are run again after serialization failures and deadlocks.
    const RETRY: Retry = Retry::TRANSIENT;

    /// The search index: the GIN index finds a user's rows by their terms (kept as one
    /// space-separated text by the crate, turned into lexemes as they are); `+ 0` keeps the
    /// planner from walking the primary key instead, through every older row for a rare word.
    /// (The one-statement send adds its rows itself.)
    const SEARCH: SearchSql = SearchSql {
        insert: "INSERT INTO direct_message_search (message_id, owner_id, terms) VALUES \
                 (?, ?, array_to_tsvector(string_to_array(?, ' '))), \
                 (?, ?, array_to_tsvector(string_to_array(?, ' ')))",
        update:
            "UPDATE direct_message_search SET terms = array_to_tsvector(string_to_array(?, ' ')) \
                 WHERE message_id = ? AND owner_id = ?",
        delete: "DELETE FROM direct_message_search WHERE message_id = ? AND owner_id = ?",
        select: "SELECT message_id AS id FROM direct_message_search \
                 WHERE terms @@ CAST(? AS tsquery) AND message_id + 0 < ? \
                 ORDER BY message_id + 0 DESC LIMIT ?",
        recent: Some(
            "SELECT message_id AS id, array_to_string(tsvector_to_array(terms), ' ') AS terms \
             FROM direct_message_search WHERE owner_id = ? AND message_id < ? \
             ORDER BY owner_id DESC, message_id DESC LIMIT ?",
        ),
    };

    type Writes = returning::Returning;

    type Statement<Q> = Q;

    /// Statements are cached by Diesel as usual.
    fn statement<Q>(query: Q) -> Q {
        query
    }

    /// Applies the migrations in one transaction that first takes a transaction-scoped
    /// advisory lock, so instances starting together migrate one after the other, and the
    /// lock cannot outlive a failure, nor stay behind on a server connection that a
    /// pooler in transaction mode hands to another client (as a session lock would). Inside
    /// the caller's transaction, a savepoint of it.
    async fn migrate(conn: &mut Conn) -> Result<()> {
        transactions::transaction::<_, crate::Error, _>(conn, None, &mut |conn: &mut Conn| {
            Body::new(async move {
                diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
                    .bind::<BigInt, _>(MIGRATION_LOCK)
                    .execute(conn)
                    .await?;
                queries::apply_migrations(
                    conn,
                    crate::migrations::POSTGRES,
                    crate::migrations::POSTGRES_LISTED,
                )
                .await
            })
        })
        .await
    }

    /// Behind a pooler in transaction mode (PgBouncer before 1.21, without
    /// `max_prepared_statements`), a named statement prepared on one server connection is
    /// missing on the next, or already there under the same name for another client: the
    /// connection's statement cache goes off, so that Diesel sends each statement unnamed,
    /// parsed, bound and executed in one exchange. diesel-async still prepares each under
    /// a name and executes it in a second exchange: its statements stay inside
    /// transactions.
    fn transaction_pooling(conn: &mut Conn) -> bool {
        execution::uncached(conn);
        true
    }

    /// PostgreSQL's transactions need nothing beyond Diesel's `BEGIN` … `COMMIT`, and a
    /// connection whose ROLLBACK failed brought back to a usable state.
    async fn outermost<'a, T, F>(conn: &mut Conn, f: &mut F) -> Result<T>
    where
        F: for<'c> FnMut(&'c mut Conn) -> Body<'a, 'c, T>,
    {
        let result = transactions::transaction(conn, None, f).await;
        if result.is_err() {
            restore_after_failed_rollback(conn).await;
        }
        result
    }

    /// A search as a `tsquery`.
    fn search_match(terms: &crate::search::Terms) -> String {
        terms.tsquery()
    }

    /// Sends to an existing conversation in one statement that is its own transaction,
    /// retried like one, where nothing can abandon the call halfway: on the blocking flavour,
    /// outside the caller's transaction. `None` elsewhere (the send's transaction runs
    /// [`send_to_conversation`] first), and when the conversation has no row yet.
    ///
    /// On the async flavour the transaction stays: a future dropped while its statement waits
    /// for the conversation's lock would otherwise leave the statement to commit on the
    /// server, a send the caller gave up on.
    async fn send_at_once(
        conn: &mut Conn,
        sender: UserId,
        recipient: UserId,
        content: &str,
    ) -> Result<Option<Sent>> {
        if execution::CANCELLABLE || transactions::is_nested(conn)? {
            return Ok(None);
        }
        transactions::again(conn, Retry::TRANSIENT, |conn: &mut Conn| {
            Body::new(Self::send_to_conversation(conn, sender, recipient, content))
        })
        .await
    }

    /// Sends to an existing conversation in one statement ([`SendToConversation`]); `None`
    /// when the conversation has no row yet, which the general path makes. The clock is read
    /// before the lock here, but the stamp is still never earlier than the conversation's
    /// latest: the statement reads that under the lock.
    async fn send_to_conversation(
        conn: &mut Conn,
        sender: UserId,
        recipient: UserId,
        content: &str,
    ) -> Result<Option<Sent>> {
        let now = UtcTimestamp(crate::timestamp::now());
        let row: Option<SentRow> =
            Self::statement(SendToConversation::new(sender, recipient, content, now))
                .get_result(conn)
                .await
                .optional()?;
        match row {
            None => Ok(None),
            Some((true, ..)) => Err(Error::Blocked { sender, recipient }),
            Some((false, Some(id), Some(sent_at), muted)) => Ok(Some(Sent {
                message: Message {
                    id,
                    sender_id: sender,
                    recipient_id: recipient,
                    content: content.to_owned(),
                    sent_at: sent_at.0,
                    read_at: None,
                    edited_at: None,
                },
                muted: muted.unwrap_or(false),
            })),
            // Not blocked, yet nothing inserted: the statement cannot do that.
            Some((false, ..)) => Err(diesel::result::Error::NotFound.into()),
        }
    }

    /// Locks the `(lo, hi)` row of a conversation by its primary key, until the transaction
    /// ends, and reads it.
    async fn lock_conversation(
        conn: &mut Conn,
        lo: UserId,
        hi: UserId,
        blocker: UserId,
        blocked: UserId,
    ) -> QueryResult<Option<crate::operations::LockedConversation>> {
        row_lock::lock_conversation(conn, lo, hi, blocker, blocked).await
    }
}
