//! The contract between the shared text and a backend: everything the queries need that
//! differs between SQLite, PostgreSQL and MySQL, as the items of one trait.
//!
//! Like the rest of this folder, the trait is mounted once per connection type, so its
//! default methods are written against the concrete `Conn` and run as they are on the
//! backends they fit (`RETURNING` on SQLite and PostgreSQL, a row lock by `FOR UPDATE` on
//! PostgreSQL and MySQL); a dialect overrides only what differs. Each mount has exactly
//! one implementor, the dialect that mounts it (`H`), which the defaults name for the
//! statement hook.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::{Backend, Conn};
use crate::message::{NewMessage, StoredMessage};
use crate::operations::{Bind, Body, LockedConversation, MarkFilter, SearchSql, Sent};
use crate::retry::Retry;
use crate::schema::UtcTimestamp;
use crate::{Message, MessageId, Result, UserId};

/// What a backend provides to the shared text (see the module docs). A new backend
/// implements this for a `Hooks` type of its dialect file, and mounts this folder.
pub(crate) trait Dialect {
    /// The failures of a plain statement (outside a transaction of the inbox's) that are
    /// waited out: SQLite's busy database; `None` where the server waits for its locks.
    const PLAIN_RETRY: Option<Retry>;

    /// The statements of the backend's search index.
    const SEARCH: SearchSql;

    /// How this backend's writes return their rows.
    type Writes: Writes;

    /// A statement as the backend prepares it ([`Dialect::statement`]).
    type Statement<Q>;

    /// How a statement is prepared: as it is, in Diesel's statement cache (SQLite,
    /// PostgreSQL), or afresh each time (MySQL, whose server-side statement cache would
    /// otherwise grow without bound).
    fn statement<Q>(query: Q) -> Self::Statement<Q>;

    /// Applies the crate's migrations (`migrate::apply`) under a lock that makes instances
    /// starting together apply them one after the other.
    async fn migrate(conn: &mut Conn) -> Result<()>;

    /// Runs the outermost attempt of a transaction of the inbox's: how it begins and ends
    /// on this backend (`BEGIN IMMEDIATE`, MySQL's guarded transaction, …).
    async fn outermost<'a, T, F>(conn: &mut Conn, f: &mut F) -> Result<T>
    where
        T: Send,
        F: for<'c> FnMut(&'c mut Conn) -> Body<'a, 'c, T>;

    /// The failures after which a transaction of the inbox's is run again.
    const RETRY: Retry;

    /// Readies a connection for a pooler in transaction mode; returns whether the async
    /// flavour must keep every statement inside a transaction (`execution::pinned`).
    /// Nothing by default: SQLite has no pooler, and MySQL's statements are prepared afresh
    /// in one exchange with the server each (see `Dialect::statement`).
    fn transaction_pooling(_conn: &mut Conn) -> bool {
        false
    }

    /// Runs `f` in a transaction of the inbox's ([`Dialect::outermost`]), run again on the
    /// failures of [`Dialect::RETRY`], or in a savepoint inside the caller's transaction.
    async fn write_transaction<'a, T, F>(conn: &mut Conn, f: F) -> Result<T>
    where
        T: Send + 'a,
        F: for<'c> FnMut(&'c mut Conn) -> Body<'a, 'c, T> + Send,
    {
        super::transactions::retrying(conn, Self::RETRY, f).await
    }

    /// The key of a side's row in the search index: the message and its owner (SQLite's
    /// FTS5 keys rows by one rowid instead).
    fn search_key(id: MessageId, owner: UserId, _recipient_side: bool) -> Vec<Bind> {
        vec![Bind::Int(id), Bind::Int(owner)]
    }

    /// The key below which a search with cursor `before` looks: the message id itself.
    fn search_below(before: MessageId) -> i64 {
        before
    }

    /// A search's terms in the index's query syntax.
    fn search_match(terms: &crate::search::Terms) -> String;

    /// Sends in one statement, outside any transaction, when the backend can and the call
    /// cannot be abandoned halfway; `None`: the general path of `send` does it.
    async fn send_at_once(
        _conn: &mut Conn,
        _sender: UserId,
        _recipient: UserId,
        _content: &str,
    ) -> Result<Option<Sent>> {
        Ok(None)
    }

    /// Sends to a conversation that has its rows in one statement, inside the send's
    /// transaction; `None`: the general path does it.
    async fn send_to_conversation(
        _conn: &mut Conn,
        _sender: UserId,
        _recipient: UserId,
        _content: &str,
    ) -> Result<Option<Sent>> {
        Ok(None)
    }

    /// Locks the `(lo, hi)` row of a conversation, by its primary key, until the
    /// transaction ends, and reads it (with whether `blocker` blocks `blocked`); `None`
    /// when it does not exist yet.
    async fn lock_conversation(
        conn: &mut Conn,
        lo: UserId,
        hi: UserId,
        blocker: UserId,
        blocked: UserId,
    ) -> QueryResult<Option<LockedConversation>>;

    /// The unread messages of `user`, in no set order, in one statement.
    async fn unread_messages(conn: &mut Conn, user: UserId) -> QueryResult<Vec<Message>> {
        super::read::load_unread(conn, user).await
    }

    /// The message as last committed, from inside a write transaction: every statement
    /// sees it on SQLite and at READ COMMITTED.
    async fn find_current(conn: &mut Conn, id: MessageId) -> QueryResult<Option<StoredMessage>> {
        super::read::find_stored(conn, id).await
    }
}

/// How the writes that return their rows do it: through `RETURNING` on SQLite and
/// PostgreSQL (`src/dialect/returning.rs`), by reading back under a lock on MySQL.
pub(crate) trait Writes {
    /// Inserts a message and returns the stored row.
    async fn insert_message(conn: &mut Conn, new: &NewMessage<'_>) -> QueryResult<Message>;

    /// Lowers the unread counter of `side`'s conversation row by `n`; whether its owner
    /// muted it (read by the same statement, whether or not `read_muted`).
    ///
    /// This and `set_latest_message` are loaded through `RETURNING` (which also reads the
    /// flag): Diesel keeps a statement it executes (rather than loads) prepared only if
    /// every part of it is cacheable, which no UPDATE is, whatever `Cached` says.
    async fn lower_unread(
        conn: &mut Conn,
        side: (UserId, UserId),
        n: i64,
        read_muted: bool,
    ) -> QueryResult<bool>;

    /// Makes `id`, sent at `sent_at`, the latest message on both sides' rows, and counts it
    /// unread for `recipient`; whether `recipient` muted the conversation.
    async fn set_latest_message(
        conn: &mut Conn,
        sender: UserId,
        recipient: UserId,
        id: MessageId,
        sent_at: UtcTimestamp,
    ) -> QueryResult<bool>;

    /// Sets the text of message `id` and its `edited_at`, if `sender` sent it and has not
    /// deleted it; the message as edited.
    async fn update_sent(
        conn: &mut Conn,
        sender: UserId,
        id: MessageId,
        content: &str,
        at: UtcTimestamp,
    ) -> QueryResult<Option<Message>>;

    /// Deletes message `id` if `sender` sent it and has not deleted it; the row as it was
    /// last stored.
    async fn delete_sent(
        conn: &mut Conn,
        sender: UserId,
        id: MessageId,
    ) -> QueryResult<Option<StoredMessage>>;

    /// Marks message `id` read if it is unread and its recipient still sees it; the
    /// message if it changed (see [`Dialect::mark_read_returning`]).
    async fn mark_one_read(
        conn: &mut Conn,
        id: MessageId,
        at: DateTime<Utc>,
    ) -> QueryResult<(Vec<Message>, Option<bool>)>;

    /// Marks read the messages `filter` selects and returns exactly the ones it changed;
    /// kept prepared when `fixed_text` (see `Cached`). Whether their recipient muted the
    /// conversation is left to `lower_unread`, whose statement returns it.
    async fn mark_read_returning(
        conn: &mut Conn,
        filter: impl MarkFilter<Backend>,
        at: DateTime<Utc>,
        fixed_text: bool,
        few: bool,
    ) -> QueryResult<(Vec<Message>, Option<bool>)>;
}
