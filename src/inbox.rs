//! The facade: validate, authorize, run one operation, fire signals.

use crate::connection::InboxConnection;
use crate::execution::blocking::run;
use crate::operations::{ConversationFlag, Operations};
use crate::signals::Draft;
use crate::{
    ConversationQuery, ConversationSummary, ConversationsQuery, Error, Message, MessageId, Result,
    SearchQuery, Signals, UserId,
};

/// The default [`InboxBuilder::max_message_chars`].
pub const DEFAULT_MAX_MESSAGE_CHARS: usize = 10_000;

/// The entry point: every operation on 1-to-1 messages, on the caller's own connection.
///
/// `Inbox` holds no connection, only its limits and [`Signals`]; it is `Send + Sync`, so
/// build one at start-up and share it by reference or in an `Arc`. Each method runs in a
/// transaction of its own, or in a savepoint when the connection is already inside one of
/// yours; handlers fire after that committed, so your outer transaction can still roll back
/// after they ran. A call that changes nothing (reading an already read message, a page
/// with nothing to mark) takes no write lock and works on a read-only connection.
///
/// ```
/// # #[cfg(feature = "sqlite")]
/// # fn main() -> directmessages::Result<()> {
/// use diesel::{Connection, SqliteConnection};
/// use directmessages::Inbox;
///
/// let mut conn = SqliteConnection::establish(":memory:").expect("in-memory database");
/// directmessages::run_migrations(&mut conn)?;
///
/// let inbox = Inbox::new();
/// inbox.signals().on_message_sent(|e| println!("{} wrote to {}", e.sender, e.recipient));
/// let hello = inbox.send_message(&mut conn, 1, 2, "Hello!")?;
/// assert_eq!(inbox.unread_messages(&mut conn, 2)?, vec![hello.clone()]);
/// assert!(inbox.read_message(&mut conn, hello.id)?.read_at.is_some());
/// # Ok(()) }
/// # #[cfg(not(feature = "sqlite"))] fn main() {}
/// ```
#[derive(Debug)]
pub struct Inbox {
    max_message_chars: usize,
    edit_window: Option<chrono::Duration>,
    transaction_pooling: bool,
    signals: Signals,
}

/// Configures an [`Inbox`]; see [`Inbox::builder`].
#[derive(Debug, Clone)]
pub struct InboxBuilder {
    max_message_chars: usize,
    edit_window: Option<chrono::Duration>,
    transaction_pooling: bool,
}

impl InboxBuilder {
    /// The longest message accepted, in `char`s (default 10,000).
    ///
    /// On MySQL/MariaDB the server also bounds a message: `MEDIUMTEXT` holds 16 MiB and
    /// `max_allowed_packet` caps a statement (16 MiB by default on MariaDB), so above
    /// about 4 million chars a message of 4-byte chars can fail with
    /// [`Error::Database`], storing nothing.
    pub fn max_message_chars(mut self, n: usize) -> Self {
        self.max_message_chars = n;
        self
    }

    /// How long after `sent_at` its sender may still edit or unsend a message (by the crate's
    /// clock; exactly at the limit is still open). A zero or negative window closes every
    /// message; without one, the default, none ever closes. A closed message is
    /// [`Error::EditWindowClosed`].
    ///
    /// ```
    /// let inbox = directmessages::Inbox::builder()
    ///     .edit_window(chrono::Duration::minutes(15))
    ///     .build();
    /// assert_eq!(inbox.edit_window(), Some(chrono::Duration::minutes(15)));
    /// ```
    pub fn edit_window(mut self, window: chrono::Duration) -> Self {
        self.edit_window = Some(window);
        self
    }

    /// The connections reach PostgreSQL through a pooler in transaction mode that keeps
    /// no prepared statements of its own: PgBouncer before 1.21, or later without
    /// `max_prepared_statements` (default off). There, a statement prepared under a name
    /// on one server connection is missing on the next (`prepared statement
    /// "__diesel_stmt_1" does not exist`) or already there for another client (`prepared
    /// statement "s3" already exists`).
    ///
    /// With it on, every call turns the prepared-statement cache of the connection it is
    /// handed off (`set_prepared_statement_cache_size(CacheSize::Disabled)`): Diesel then
    /// sends each statement unnamed, parsed, bound and executed in one exchange. On
    /// diesel-async's `AsyncPgConnection`, which still prepares and executes in two, the
    /// `AsyncInbox` also keeps each of its statements inside a
    /// transaction, where the pooler holds one server connection: a plain read costs a
    /// `BEGIN` and a `COMMIT` more. Turn the cache off on your connections for your own
    /// statements too (and for [`run_migrations`](crate::run_migrations)), e.g. in the
    /// pool's connection set-up. No effect on SQLite and MySQL. Default off. The cost is
    /// measured in the README ("Performance"), next to a direct connection.
    ///
    /// ```
    /// let inbox = directmessages::Inbox::builder().transaction_pooling(true).build();
    /// assert!(inbox.transaction_pooling());
    /// ```
    pub fn transaction_pooling(mut self, on: bool) -> Self {
        self.transaction_pooling = on;
        self
    }

    /// The inbox, with no signal handlers yet.
    pub fn build(self) -> Inbox {
        Inbox {
            max_message_chars: self.max_message_chars,
            edit_window: self.edit_window,
            transaction_pooling: self.transaction_pooling,
            signals: Signals::new(),
        }
    }
}

impl Default for Inbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Inbox {
    /// An inbox with the default limits.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// Configures limits before building.
    ///
    /// ```
    /// let inbox = directmessages::Inbox::builder().max_message_chars(500).build();
    /// assert_eq!(inbox.max_message_chars(), 500);
    /// ```
    pub fn builder() -> InboxBuilder {
        InboxBuilder {
            max_message_chars: DEFAULT_MAX_MESSAGE_CHARS,
            edit_window: None,
            transaction_pooling: false,
        }
    }

    /// The longest message this inbox accepts, in `char`s.
    pub fn max_message_chars(&self) -> usize {
        self.max_message_chars
    }

    /// How long a message may still be edited or unsent; `None`: always.
    pub fn edit_window(&self) -> Option<chrono::Duration> {
        self.edit_window
    }

    /// The operations of `conn`, readied by [`Inbox::readied`].
    fn ops<'c, C: InboxConnection>(&self, conn: &'c mut C) -> &'c mut C::Operations {
        let ops = conn.operations();
        self.readied(ops);
        ops
    }

    /// Whether this inbox works through a pooler in transaction mode
    /// ([`InboxBuilder::transaction_pooling`]).
    pub fn transaction_pooling(&self) -> bool {
        self.transaction_pooling
    }

    /// The connection's operations, readied for a pooler in transaction mode when this
    /// inbox works through one; whether the async flavour must then keep each statement
    /// inside a transaction.
    pub(crate) fn readied<O: Operations>(&self, ops: &mut O) -> bool {
        self.transaction_pooling && ops.transaction_pooling()
    }

    /// The handlers this inbox calls.
    pub fn signals(&self) -> &Signals {
        &self.signals
    }

    /// Checks a message the way [`send_message`](Self::send_message) does, without a
    /// database: self-message, empty or whitespace-only, too long, NUL character.
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")]
    /// # fn main() -> directmessages::Result<()> {
    /// # use diesel::prelude::*;
    /// # let mut conn = SqliteConnection::establish(":memory:").unwrap();
    /// # directmessages::run_migrations(&mut conn)?;
    /// let inbox = directmessages::Inbox::new();
    /// assert!(inbox.validate(1, 2, "hi").is_ok());
    /// assert!(matches!(inbox.validate(1, 1, "hi"), Err(directmessages::Error::SelfMessage { .. })));
    /// assert!(matches!(inbox.validate(1, 2, " "), Err(directmessages::Error::EmptyMessage)));
    /// # Ok(()) }
    /// # #[cfg(not(feature = "sqlite"))] fn main() {}
    /// ```
    pub fn validate(&self, sender: UserId, recipient: UserId, content: &str) -> Result<()> {
        if sender == recipient {
            return Err(Error::SelfMessage { user: sender });
        }
        if content.trim().is_empty() {
            return Err(Error::EmptyMessage);
        }
        let length = content.chars().count();
        if length > self.max_message_chars {
            return Err(Error::MessageTooLong {
                length,
                max: self.max_message_chars,
            });
        }
        // PostgreSQL rejects NUL in text and C clients cut strings at it.
        if content.contains('\0') {
            return Err(Error::InvalidContent {
                reason: "contains a NUL character",
            });
        }
        Ok(())
    }

    /// Stores a message from `sender` to `recipient` and fires `message_sent`.
    ///
    /// Validation and before-send policies run before the database is touched; then
    /// [`Error::Blocked`] if `recipient` blocks `sender`. Returns the stored row.
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")]
    /// # fn main() -> directmessages::Result<()> {
    /// # use diesel::{Connection, SqliteConnection};
    /// # let mut conn = SqliteConnection::establish(":memory:").expect("db");
    /// # directmessages::run_migrations(&mut conn)?;
    /// let inbox = directmessages::Inbox::new();
    /// let message = inbox.send_message(&mut conn, 1, 2, "Lunch?")?;
    /// assert_eq!((message.sender_id, message.recipient_id), (1, 2));
    /// assert!(message.is_unread());
    /// assert!(matches!(
    ///     inbox.send_message(&mut conn, 1, 2, "   "),
    ///     Err(directmessages::Error::EmptyMessage)
    /// ));
    /// # Ok(()) }
    /// # #[cfg(not(feature = "sqlite"))] fn main() {}
    /// ```
    pub fn send_message<C: InboxConnection>(
        &self,
        conn: &mut C,
        sender: UserId,
        recipient: UserId,
        content: &str,
    ) -> Result<Message> {
        run(self.send_on(self.ops(conn), sender, recipient, content))
    }

    /// The messages to `user` not read yet, oldest first. Messages `user` deleted or got
    /// from users `user` blocks are left out.
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")]
    /// # fn main() -> directmessages::Result<()> {
    /// # use diesel::prelude::*;
    /// # let mut conn = SqliteConnection::establish(":memory:").unwrap();
    /// # directmessages::run_migrations(&mut conn)?;
    /// let inbox = directmessages::Inbox::new();
    /// let m = inbox.send_message(&mut conn, 1, 2, "ping")?;
    /// assert_eq!(inbox.unread_messages(&mut conn, 2)?, vec![m]);
    /// assert!(inbox.unread_messages(&mut conn, 1)?.is_empty());
    /// # Ok(()) }
    /// # #[cfg(not(feature = "sqlite"))] fn main() {}
    /// ```
    pub fn unread_messages<C: InboxConnection>(
        &self,
        conn: &mut C,
        user: UserId,
    ) -> Result<Vec<Message>> {
        run(self.unread_messages_on(self.ops(conn), user))
    }

    /// How many messages [`unread_messages`](Self::unread_messages) would return, without
    /// loading them.
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")]
    /// # fn main() -> directmessages::Result<()> {
    /// # use diesel::prelude::*;
    /// # let mut conn = SqliteConnection::establish(":memory:").unwrap();
    /// # directmessages::run_migrations(&mut conn)?;
    /// let inbox = directmessages::Inbox::new();
    /// inbox.send_message(&mut conn, 1, 2, "one")?;
    /// inbox.send_message(&mut conn, 3, 2, "two")?;
    /// assert_eq!(inbox.unread_count(&mut conn, 2)?, 2);
    /// inbox.block_user(&mut conn, 2, 3)?;
    /// assert_eq!(inbox.unread_count(&mut conn, 2)?, 1);
    /// # Ok(()) }
    /// # #[cfg(not(feature = "sqlite"))] fn main() {}
    /// ```
    pub fn unread_count<C: InboxConnection>(&self, conn: &mut C, user: UserId) -> Result<i64> {
        run(self.unread_count_on(self.ops(conn), user))
    }

    /// Returns a message and marks it read if it was unread, firing `message_read`
    /// exactly once per message even when several connections read it at once.
    ///
    /// Unchecked: it does not ask who reads. Prefer [`read_message_as`](Self::read_message_as)
    /// where a user is known. A message its recipient deleted is returned unchanged.
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")]
    /// # fn main() -> directmessages::Result<()> {
    /// # use diesel::{Connection, SqliteConnection};
    /// # let mut conn = SqliteConnection::establish(":memory:").expect("db");
    /// # directmessages::run_migrations(&mut conn)?;
    /// let inbox = directmessages::Inbox::new();
    /// let sent = inbox.send_message(&mut conn, 1, 2, "Lunch?")?;
    /// let read = inbox.read_message(&mut conn, sent.id)?;
    /// assert!(read.read_at.is_some());
    /// assert_eq!(inbox.read_message(&mut conn, sent.id)?, read); // unchanged
    /// # Ok(()) }
    /// # #[cfg(not(feature = "sqlite"))] fn main() {}
    /// ```
    pub fn read_message<C: InboxConnection>(&self, conn: &mut C, id: MessageId) -> Result<Message> {
        run(self.read_on(self.ops(conn), id, None))
    }

    /// The checked read: the recipient reads it and marks it read; the sender may view it
    /// without marking it read; anyone else gets [`Error::NotAllowed`]. A message `reader`
    /// deleted is [`Error::MessageNotFound`] to them.
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")]
    /// # fn main() -> directmessages::Result<()> {
    /// # use diesel::prelude::*;
    /// # let mut conn = SqliteConnection::establish(":memory:").unwrap();
    /// # directmessages::run_migrations(&mut conn)?;
    /// let inbox = directmessages::Inbox::new();
    /// let m = inbox.send_message(&mut conn, 1, 2, "ping")?;
    /// assert!(inbox.read_message_as(&mut conn, 1, m.id)?.read_at.is_none()); // the sender looks
    /// assert!(inbox.read_message_as(&mut conn, 2, m.id)?.read_at.is_some()); // the recipient reads
    /// assert!(matches!(
    ///     inbox.read_message_as(&mut conn, 3, m.id),
    ///     Err(directmessages::Error::NotAllowed { .. })
    /// ));
    /// # Ok(()) }
    /// # #[cfg(not(feature = "sqlite"))] fn main() {}
    /// ```
    pub fn read_message_as<C: InboxConnection>(
        &self,
        conn: &mut C,
        reader: UserId,
        id: MessageId,
    ) -> Result<Message> {
        run(self.read_on(self.ops(conn), id, Some(reader)))
    }

    /// Reads a message like [`read_message`](Self::read_message) and returns it as
    /// `"<sender name>: <content>"`, asking `sender_name` for the name.
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")]
    /// # fn main() -> directmessages::Result<()> {
    /// # use diesel::prelude::*;
    /// # let mut conn = SqliteConnection::establish(":memory:").unwrap();
    /// # directmessages::run_migrations(&mut conn)?;
    /// let inbox = directmessages::Inbox::new();
    /// let m = inbox.send_message(&mut conn, 1, 2, "hi")?;
    /// let text = inbox.read_message_formatted(&mut conn, m.id, |id| format!("user{id}"))?;
    /// assert_eq!(text, "user1: hi");
    /// # Ok(()) }
    /// # #[cfg(not(feature = "sqlite"))] fn main() {}
    /// ```
    pub fn read_message_formatted<C: InboxConnection>(
        &self,
        conn: &mut C,
        id: MessageId,
        sender_name: impl FnOnce(UserId) -> String,
    ) -> Result<String> {
        let message = self.read_message(conn, id)?;
        Ok(formatted(&message, sender_name))
    }

    /// Every user that `user` has sent to or received from, each once, most recent
    /// conversation first. Conversations `user` deleted every message of are left out.
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")]
    /// # fn main() -> directmessages::Result<()> {
    /// # use diesel::prelude::*;
    /// # let mut conn = SqliteConnection::establish(":memory:").unwrap();
    /// # directmessages::run_migrations(&mut conn)?;
    /// let inbox = directmessages::Inbox::new();
    /// inbox.send_message(&mut conn, 1, 2, "a")?;
    /// inbox.send_message(&mut conn, 3, 1, "b")?;
    /// assert_eq!(inbox.conversation_partners(&mut conn, 1)?, vec![3, 2]);
    /// # Ok(()) }
    /// # #[cfg(not(feature = "sqlite"))] fn main() {}
    /// ```
    pub fn conversation_partners<C: InboxConnection>(
        &self,
        conn: &mut C,
        user: UserId,
    ) -> Result<Vec<UserId>> {
        run(self.conversation_partners_on(self.ops(conn), user))
    }

    /// The messages between `user` and `partner`, both directions, oldest first unless
    /// [`reversed`](ConversationQuery::reversed); see [`ConversationQuery`] for paging.
    /// With [`mark_read`](ConversationQuery::mark_read) the returned messages `user`
    /// received are marked read (and come back marked), firing `message_read` for each.
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")]
    /// # fn main() -> directmessages::Result<()> {
    /// # use diesel::{Connection, SqliteConnection};
    /// # let mut conn = SqliteConnection::establish(":memory:").expect("db");
    /// # directmessages::run_migrations(&mut conn)?;
    /// use directmessages::{ConversationQuery, Inbox};
    /// let inbox = Inbox::new();
    /// for text in ["one", "two", "three"] {
    ///     inbox.send_message(&mut conn, 1, 2, text)?;
    /// }
    /// let latest = inbox.conversation(&mut conn, 2, 1, ConversationQuery::new().reversed().limit(2))?;
    /// assert_eq!(latest.iter().map(|m| m.content.as_str()).collect::<Vec<_>>(), ["three", "two"]);
    /// let older = inbox.conversation(&mut conn, 2, 1, ConversationQuery::new().reversed().before(latest[1].id))?;
    /// assert_eq!(older[0].content, "one");
    /// # Ok(()) }
    /// # #[cfg(not(feature = "sqlite"))] fn main() {}
    /// ```
    pub fn conversation<C: InboxConnection>(
        &self,
        conn: &mut C,
        user: UserId,
        partner: UserId,
        query: ConversationQuery,
    ) -> Result<Vec<Message>> {
        run(self.conversation_on(self.ops(conn), user, partner, query))
    }

    /// The inbox screen of `user`: one [`ConversationSummary`] per partner, latest activity
    /// first, keyset-paginated with [`ConversationsQuery::before`].
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")]
    /// # fn main() -> directmessages::Result<()> {
    /// # use diesel::{Connection, SqliteConnection};
    /// # let mut conn = SqliteConnection::establish(":memory:").expect("db");
    /// # directmessages::run_migrations(&mut conn)?;
    /// use directmessages::{ConversationsQuery, Inbox};
    /// let inbox = Inbox::new();
    /// inbox.send_message(&mut conn, 2, 1, "hi from 2")?;
    /// inbox.send_message(&mut conn, 3, 1, "hi from 3")?;
    /// let rows = inbox.conversations(&mut conn, 1, ConversationsQuery::new().limit(10))?;
    /// assert_eq!(rows[0].partner, 3);
    /// assert_eq!(rows[0].unread_count, 1);
    /// # Ok(()) }
    /// # #[cfg(not(feature = "sqlite"))] fn main() {}
    /// ```
    pub fn conversations<C: InboxConnection>(
        &self,
        conn: &mut C,
        user: UserId,
        query: ConversationsQuery,
    ) -> Result<Vec<ConversationSummary>> {
        run(self.conversations_on(self.ops(conn), user, query))
    }

    /// Marks read every unread message from `partner` to `user` (but those `user`
    /// deleted), fires `message_read` once for each, and returns how many it marked.
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")]
    /// # fn main() -> directmessages::Result<()> {
    /// # use diesel::prelude::*;
    /// # let mut conn = SqliteConnection::establish(":memory:").unwrap();
    /// # directmessages::run_migrations(&mut conn)?;
    /// let inbox = directmessages::Inbox::new();
    /// inbox.send_message(&mut conn, 1, 2, "a")?;
    /// inbox.send_message(&mut conn, 1, 2, "b")?;
    /// assert_eq!(inbox.mark_conversation_read(&mut conn, 2, 1)?, 2);
    /// assert_eq!(inbox.mark_conversation_read(&mut conn, 2, 1)?, 0);
    /// assert_eq!(inbox.unread_count(&mut conn, 2)?, 0);
    /// # Ok(()) }
    /// # #[cfg(not(feature = "sqlite"))] fn main() {}
    /// ```
    pub fn mark_conversation_read<C: InboxConnection>(
        &self,
        conn: &mut C,
        user: UserId,
        partner: UserId,
    ) -> Result<usize> {
        run(self.mark_conversation_read_on(self.ops(conn), user, partner))
    }

    /// Hides a message from `user` only (its sender or recipient, else
    /// [`Error::NotAllowed`]); the other side still sees it. Once both sides deleted it,
    /// it is gone from the database.
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")]
    /// # fn main() -> directmessages::Result<()> {
    /// # use diesel::prelude::*;
    /// # let mut conn = SqliteConnection::establish(":memory:").unwrap();
    /// # directmessages::run_migrations(&mut conn)?;
    /// let inbox = directmessages::Inbox::new();
    /// let m = inbox.send_message(&mut conn, 1, 2, "oops")?;
    /// inbox.delete_message(&mut conn, 1, m.id)?;
    /// assert!(matches!(
    ///     inbox.read_message_as(&mut conn, 1, m.id),
    ///     Err(directmessages::Error::MessageNotFound(_))
    /// ));
    /// assert_eq!(inbox.read_message_as(&mut conn, 2, m.id)?.id, m.id); // still there for user 2
    /// # Ok(()) }
    /// # #[cfg(not(feature = "sqlite"))] fn main() {}
    /// ```
    pub fn delete_message<C: InboxConnection>(
        &self,
        conn: &mut C,
        user: UserId,
        id: MessageId,
    ) -> Result<()> {
        run(self.delete_on(self.ops(conn), user, id))
    }

    /// While `user` blocks `blocked`, messages from `blocked` to `user` are refused with
    /// [`Error::Blocked`] and old ones from `blocked` no longer count as unread for
    /// `user`. History is kept. Blocking twice is the same as once.
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")]
    /// # fn main() -> directmessages::Result<()> {
    /// # use diesel::prelude::*;
    /// # let mut conn = SqliteConnection::establish(":memory:").unwrap();
    /// # directmessages::run_migrations(&mut conn)?;
    /// let inbox = directmessages::Inbox::new();
    /// inbox.block_user(&mut conn, 2, 1)?;
    /// assert!(inbox.is_blocked(&mut conn, 2, 1)?);
    /// assert!(matches!(
    ///     inbox.send_message(&mut conn, 1, 2, "hi"),
    ///     Err(directmessages::Error::Blocked { .. })
    /// ));
    /// # Ok(()) }
    /// # #[cfg(not(feature = "sqlite"))] fn main() {}
    /// ```
    pub fn block_user<C: InboxConnection>(
        &self,
        conn: &mut C,
        user: UserId,
        blocked: UserId,
    ) -> Result<()> {
        run(self.block_on(self.ops(conn), user, blocked, true))
    }

    /// Lifts the block `user` put on `blocked`, if any.
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")]
    /// # fn main() -> directmessages::Result<()> {
    /// # use diesel::prelude::*;
    /// # let mut conn = SqliteConnection::establish(":memory:").unwrap();
    /// # directmessages::run_migrations(&mut conn)?;
    /// let inbox = directmessages::Inbox::new();
    /// inbox.block_user(&mut conn, 2, 1)?;
    /// inbox.unblock_user(&mut conn, 2, 1)?;
    /// inbox.send_message(&mut conn, 1, 2, "hi again")?;
    /// # Ok(()) }
    /// # #[cfg(not(feature = "sqlite"))] fn main() {}
    /// ```
    pub fn unblock_user<C: InboxConnection>(
        &self,
        conn: &mut C,
        user: UserId,
        blocked: UserId,
    ) -> Result<()> {
        run(self.block_on(self.ops(conn), user, blocked, false))
    }

    /// Archives `user`'s side of the conversation with `partner`: it leaves
    /// [`conversations`](Self::conversations) (and is listed by
    /// [`ConversationsQuery::archived`]) until a new message in it arrives, sent by either
    /// side. It changes no count and no other listing, and not the partner's side.
    ///
    /// Idempotent. Before the conversation's first message it is `Ok`, and the
    /// conversation starts archived for `user`, until that message arrives; with
    /// oneself it does nothing.
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")]
    /// # fn main() -> directmessages::Result<()> {
    /// # use diesel::prelude::*;
    /// use directmessages::{ConversationsQuery, Inbox};
    /// # let mut conn = SqliteConnection::establish(":memory:").unwrap();
    /// # directmessages::run_migrations(&mut conn)?;
    /// let inbox = Inbox::new();
    /// inbox.send_message(&mut conn, 2, 1, "a newsletter")?;
    /// inbox.archive_conversation(&mut conn, 1, 2)?;
    /// assert!(inbox.conversations(&mut conn, 1, ConversationsQuery::new())?.is_empty());
    /// let archive = inbox.conversations(&mut conn, 1, ConversationsQuery::new().archived())?;
    /// assert_eq!(archive[0].partner, 2);
    ///
    /// inbox.send_message(&mut conn, 2, 1, "another one")?; // back in the inbox
    /// assert_eq!(inbox.conversations(&mut conn, 1, ConversationsQuery::new())?.len(), 1);
    /// # Ok(()) }
    /// # #[cfg(not(feature = "sqlite"))] fn main() {}
    /// ```
    pub fn archive_conversation<C: InboxConnection>(
        &self,
        conn: &mut C,
        user: UserId,
        partner: UserId,
    ) -> Result<()> {
        let flag = ConversationFlag::Archived;
        run(self.set_flag_on(self.ops(conn), user, partner, flag, true))
    }

    /// Brings `user`'s side of the conversation with `partner` back from the archive.
    /// Idempotent; with oneself it does nothing.
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")]
    /// # fn main() -> directmessages::Result<()> {
    /// # use diesel::prelude::*;
    /// # let mut conn = SqliteConnection::establish(":memory:").unwrap();
    /// # directmessages::run_migrations(&mut conn)?;
    /// let inbox = directmessages::Inbox::new();
    /// inbox.send_message(&mut conn, 1, 2, "hi")?;
    /// inbox.archive_conversation(&mut conn, 2, 1)?;
    /// inbox.unarchive_conversation(&mut conn, 2, 1)?;
    /// let inbox_screen = inbox.conversations(&mut conn, 2, directmessages::ConversationsQuery::new())?;
    /// assert_eq!(inbox_screen.len(), 1);
    /// # Ok(()) }
    /// # #[cfg(not(feature = "sqlite"))] fn main() {}
    /// ```
    pub fn unarchive_conversation<C: InboxConnection>(
        &self,
        conn: &mut C,
        user: UserId,
        partner: UserId,
    ) -> Result<()> {
        let flag = ConversationFlag::Archived;
        run(self.set_flag_on(self.ops(conn), user, partner, flag, false))
    }

    /// Replaces the text of a message `editor` sent, and returns it as edited. It keeps
    /// `sent_at` and the read state and sets `edited_at` (again on every later edit); the
    /// conversation's summary shows the new text if it is the latest message, without
    /// reordering the inbox or bringing back an archived conversation. Fires
    /// `message_edited`; an edit to the same text changes nothing and fires nothing.
    ///
    /// Checks, in this order: [`Error::MessageNotFound`] (no such id, unsent, or deleted
    /// by `editor`); [`Error::NotAllowed`] (`editor` did not send it);
    /// [`Error::EditWindowClosed`] (see [`InboxBuilder::edit_window`]); [`Error::Blocked`]
    /// (the recipient blocks `editor`: new text must not pass a block); then the
    /// validation of a send and the before-send policies, with a [`Draft`] of the
    /// message's sender, recipient and the new text.
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")]
    /// # fn main() -> directmessages::Result<()> {
    /// # use diesel::prelude::*;
    /// use directmessages::Inbox;
    /// # let mut conn = SqliteConnection::establish(":memory:").unwrap();
    /// # directmessages::run_migrations(&mut conn)?;
    /// let inbox = Inbox::new();
    /// let m = inbox.send_message(&mut conn, 1, 2, "Lunhc at 12?")?;
    /// let fixed = inbox.edit_message(&mut conn, 1, m.id, "Lunch at 12?")?;
    /// assert_eq!((fixed.content.as_str(), fixed.sent_at), ("Lunch at 12?", m.sent_at));
    /// assert!(fixed.edited_at.is_some());
    /// # Ok(()) }
    /// # #[cfg(not(feature = "sqlite"))] fn main() {}
    /// ```
    pub fn edit_message<C: InboxConnection>(
        &self,
        conn: &mut C,
        editor: UserId,
        id: MessageId,
        content: &str,
    ) -> Result<Message> {
        run(self.edit_on(self.ops(conn), editor, id, content))
    }

    /// Removes a message for both sides at once: listings, unread counts, summaries
    /// (which fall back to the previous message) and partners forget it; afterwards every
    /// call by its id is [`Error::MessageNotFound`], and `purge_user` does not count it.
    /// Fires `message_unsent` with the message as it was last stored.
    ///
    /// Checks, in this order: [`Error::MessageNotFound`] (no such id, already unsent, or
    /// deleted by `sender`); [`Error::NotAllowed`] (`sender` did not send it);
    /// [`Error::EditWindowClosed`] (see [`InboxBuilder::edit_window`]). A block does not
    /// stop it.
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")]
    /// # fn main() -> directmessages::Result<()> {
    /// # use diesel::prelude::*;
    /// use directmessages::{Error, Inbox};
    /// # let mut conn = SqliteConnection::establish(":memory:").unwrap();
    /// # directmessages::run_migrations(&mut conn)?;
    /// let inbox = Inbox::new();
    /// let oops = inbox.send_message(&mut conn, 1, 2, "wrong chat")?;
    /// assert!(matches!(inbox.unsend_message(&mut conn, 2, oops.id), Err(Error::NotAllowed { .. })));
    /// inbox.unsend_message(&mut conn, 1, oops.id)?;
    /// assert_eq!(inbox.unread_count(&mut conn, 2)?, 0);
    /// assert!(matches!(inbox.read_message(&mut conn, oops.id), Err(Error::MessageNotFound(_))));
    /// # Ok(()) }
    /// # #[cfg(not(feature = "sqlite"))] fn main() {}
    /// ```
    pub fn unsend_message<C: InboxConnection>(
        &self,
        conn: &mut C,
        sender: UserId,
        id: MessageId,
    ) -> Result<()> {
        run(self.unsend_on(self.ops(conn), sender, id))
    }

    /// Mutes `user`'s side of the conversation with `partner`: a flag for the app, which
    /// holds back its notifications. It changes no listing and no count; it shows as
    /// [`ConversationSummary::muted`](crate::ConversationSummary::muted) and as
    /// [`MessageEvent::muted`](crate::MessageEvent::muted) on every event of a message
    /// `user` receives from `partner`.
    ///
    /// Idempotent; per side; before the first message it is `Ok` and applies once the
    /// conversation exists; with oneself it does nothing.
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")]
    /// # fn main() -> directmessages::Result<()> {
    /// # use diesel::prelude::*;
    /// # use std::sync::{Arc, Mutex};
    /// use directmessages::Inbox;
    /// # let mut conn = SqliteConnection::establish(":memory:").unwrap();
    /// # directmessages::run_migrations(&mut conn)?;
    /// let inbox = Inbox::new();
    /// let pushed = Arc::new(Mutex::new(Vec::new()));
    /// let push = Arc::clone(&pushed);
    /// inbox.signals().on_message_sent(move |e| {
    ///     if !e.muted {
    ///         push.lock().unwrap().push(e.message.id); // a push notification
    ///     }
    /// });
    /// inbox.mute_conversation(&mut conn, 1, 2)?;
    /// inbox.send_message(&mut conn, 2, 1, "psst")?; // stored and counted, no push
    /// assert!(pushed.lock().unwrap().is_empty());
    /// assert_eq!(inbox.unread_count(&mut conn, 1)?, 1);
    /// # Ok(()) }
    /// # #[cfg(not(feature = "sqlite"))] fn main() {}
    /// ```
    pub fn mute_conversation<C: InboxConnection>(
        &self,
        conn: &mut C,
        user: UserId,
        partner: UserId,
    ) -> Result<()> {
        let flag = ConversationFlag::Muted;
        run(self.set_flag_on(self.ops(conn), user, partner, flag, true))
    }

    /// Unmutes `user`'s side of the conversation with `partner`. Idempotent; with oneself
    /// it does nothing.
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")]
    /// # fn main() -> directmessages::Result<()> {
    /// # use diesel::prelude::*;
    /// # let mut conn = SqliteConnection::establish(":memory:").unwrap();
    /// # directmessages::run_migrations(&mut conn)?;
    /// let inbox = directmessages::Inbox::new();
    /// inbox.send_message(&mut conn, 1, 2, "hi")?;
    /// inbox.mute_conversation(&mut conn, 2, 1)?;
    /// inbox.unmute_conversation(&mut conn, 2, 1)?;
    /// let rows = inbox.conversations(&mut conn, 2, directmessages::ConversationsQuery::new())?;
    /// assert!(!rows[0].muted);
    /// # Ok(()) }
    /// # #[cfg(not(feature = "sqlite"))] fn main() {}
    /// ```
    pub fn unmute_conversation<C: InboxConnection>(
        &self,
        conn: &mut C,
        user: UserId,
        partner: UserId,
    ) -> Result<()> {
        let flag = ConversationFlag::Muted;
        run(self.set_flag_on(self.ops(conn), user, partner, flag, false))
    }

    /// Whether `user` blocks `other` (one direction only).
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")]
    /// # fn main() -> directmessages::Result<()> {
    /// # use diesel::prelude::*;
    /// # let mut conn = SqliteConnection::establish(":memory:").unwrap();
    /// # directmessages::run_migrations(&mut conn)?;
    /// let inbox = directmessages::Inbox::new();
    /// inbox.block_user(&mut conn, 2, 1)?;
    /// assert!(inbox.is_blocked(&mut conn, 2, 1)?);
    /// assert!(!inbox.is_blocked(&mut conn, 1, 2)?, "one direction only");
    /// # Ok(()) }
    /// # #[cfg(not(feature = "sqlite"))] fn main() {}
    /// ```
    pub fn is_blocked<C: InboxConnection>(
        &self,
        conn: &mut C,
        user: UserId,
        other: UserId,
    ) -> Result<bool> {
        run(self.is_blocked_on(self.ops(conn), user, other))
    }

    /// The messages `user` can see (sent or received; not deleted by `user`, unsent or
    /// purged; from users `user` blocks too) that hold every word of the query, each as
    /// the start of a word: "lunc" finds "Lunch". Newest first, keyset-paged with
    /// [`SearchQuery::before`], within one conversation with [`SearchQuery::with`].
    ///
    /// A word is a run of letters and digits, compared in lowercase, accents kept (`café`
    /// is not `cafe`); every word counts, however short or common. The text is never read
    /// as query syntax: quotes, `*`, `-` or `AND` are only separators or words. Each
    /// backend's own full-text index (FTS5, a GIN `tsvector`, InnoDB `FULLTEXT`) answers,
    /// within the user's own part of it, and all three find the same messages: see the
    /// README for the one limit (a word of over 64 characters need not be findable).
    /// Writes nothing and fires nothing. A message sent inside your own open transaction
    /// may be found only once it commits.
    ///
    /// [`Error::EmptySearch`] when the text holds no word.
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")]
    /// # fn main() -> directmessages::Result<()> {
    /// # use diesel::prelude::*;
    /// use directmessages::{Error, Inbox, SearchQuery};
    /// # let mut conn = SqliteConnection::establish(":memory:").unwrap();
    /// # directmessages::run_migrations(&mut conn)?;
    /// let inbox = Inbox::new();
    /// inbox.send_message(&mut conn, 1, 2, "Lunch at Café Zoë?")?;
    /// inbox.send_message(&mut conn, 2, 1, "lunch, sure")?;
    /// inbox.send_message(&mut conn, 3, 1, "LUNCH tomorrow")?;
    /// let found = inbox.search(&mut conn, 1, SearchQuery::new("lunc café"))?;
    /// assert_eq!(found[0].content, "Lunch at Café Zoë?");
    /// assert_eq!(inbox.search(&mut conn, 1, SearchQuery::new("lunch"))?.len(), 3);
    /// assert_eq!(inbox.search(&mut conn, 1, SearchQuery::new("lunch").with(3))?.len(), 1);
    /// assert!(matches!(inbox.search(&mut conn, 1, SearchQuery::new("?!")), Err(Error::EmptySearch)));
    /// # Ok(()) }
    /// # #[cfg(not(feature = "sqlite"))] fn main() {}
    /// ```
    pub fn search<C: InboxConnection>(
        &self,
        conn: &mut C,
        user: UserId,
        query: SearchQuery,
    ) -> Result<Vec<Message>> {
        run(self.search_on(self.ops(conn), user, &query))
    }

    /// Deletes everything of `user` for account deletion, in one transaction: messages
    /// sent and received, conversation rows on both sides, blocks both ways. Returns how
    /// many messages went. Fires nothing.
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")]
    /// # fn main() -> directmessages::Result<()> {
    /// # use diesel::prelude::*;
    /// # let mut conn = SqliteConnection::establish(":memory:").unwrap();
    /// # directmessages::run_migrations(&mut conn)?;
    /// let inbox = directmessages::Inbox::new();
    /// inbox.send_message(&mut conn, 1, 2, "a")?;
    /// inbox.send_message(&mut conn, 3, 1, "b")?;
    /// inbox.send_message(&mut conn, 2, 3, "c")?;
    /// assert_eq!(inbox.purge_user(&mut conn, 1)?, 2);
    /// assert_eq!(inbox.conversation_partners(&mut conn, 2)?, vec![3]);
    /// # Ok(()) }
    /// # #[cfg(not(feature = "sqlite"))] fn main() {}
    /// ```
    pub fn purge_user<C: InboxConnection>(&self, conn: &mut C, user: UserId) -> Result<u64> {
        run(self.purge_on(self.ops(conn), user))
    }
}

/// What the facade does around each operation, written once for [`Inbox`] and
/// [`AsyncInbox`](crate::AsyncInbox): validation before, the operation on the connection's
/// [`Operations`], and the signals after it committed.
impl Inbox {
    pub(crate) async fn send_on<O: Operations>(
        &self,
        ops: &mut O,
        sender: UserId,
        recipient: UserId,
        content: &str,
    ) -> Result<Message> {
        crate::trace::traced!("send_message", sender = sender, recipient = recipient; async {
            self.validate(sender, recipient, content)?;
            let draft = Draft {
                sender,
                recipient,
                content,
            };
            self.signals
                .before_send(&draft)
                .map_err(|reason| Error::Rejected { reason })?;
            let sent = ops.send(sender, recipient, content).await?;
            self.signals.message_sent(&sent.message, sent.muted);
            Ok(sent.message)
        })
    }

    pub(crate) async fn unread_messages_on<O: Operations>(
        &self,
        ops: &mut O,
        user: UserId,
    ) -> Result<Vec<Message>> {
        crate::trace::traced!("unread_messages", user = user; async {
            Ok(ops.unread_messages(user).await?)
        })
    }

    pub(crate) async fn unread_count_on<O: Operations>(
        &self,
        ops: &mut O,
        user: UserId,
    ) -> Result<i64> {
        crate::trace::traced!("unread_count", user = user; async {
            Ok(ops.unread_count(user).await?)
        })
    }

    pub(crate) async fn read_on<O: Operations>(
        &self,
        ops: &mut O,
        id: MessageId,
        reader: Option<UserId>,
    ) -> Result<Message> {
        crate::trace::traced!("read_message", message = id, reader = reader; async {
            let read = ops.read(id, reader).await?;
            if read.newly_read {
                self.signals
                    .message_read(std::slice::from_ref(&read.message), read.muted);
            }
            Ok(read.message)
        })
    }

    pub(crate) async fn conversation_partners_on<O: Operations>(
        &self,
        ops: &mut O,
        user: UserId,
    ) -> Result<Vec<UserId>> {
        crate::trace::traced!("conversation_partners", user = user; async {
            Ok(ops.partners(user).await?)
        })
    }

    pub(crate) async fn conversation_on<O: Operations>(
        &self,
        ops: &mut O,
        user: UserId,
        partner: UserId,
        query: ConversationQuery,
    ) -> Result<Vec<Message>> {
        crate::trace::traced!("conversation", user = user, partner = partner; async {
            let page = ops.conversation(user, partner, query).await?;
            self.signals
                .message_read(&page.marked.messages, page.marked.muted);
            Ok(page.messages)
        })
    }

    pub(crate) async fn conversations_on<O: Operations>(
        &self,
        ops: &mut O,
        user: UserId,
        query: ConversationsQuery,
    ) -> Result<Vec<ConversationSummary>> {
        crate::trace::traced!("conversations", user = user; async {
            Ok(ops.conversations(user, query).await?)
        })
    }

    pub(crate) async fn mark_conversation_read_on<O: Operations>(
        &self,
        ops: &mut O,
        user: UserId,
        partner: UserId,
    ) -> Result<usize> {
        crate::trace::traced!("mark_conversation_read", user = user, partner = partner; async {
            let marked = ops.mark_conversation_read(user, partner).await?;
            self.signals.message_read(&marked.messages, marked.muted);
            Ok(marked.messages.len())
        })
    }

    pub(crate) async fn edit_on<O: Operations>(
        &self,
        ops: &mut O,
        editor: UserId,
        id: MessageId,
        content: &str,
    ) -> Result<Message> {
        crate::trace::traced!("edit_message", editor = editor, message = id; async {
            let current = ops.edit_target(editor, id, self.edit_window).await?;
            if current.content == content {
                return Ok(current);
            }
            self.validate(current.sender_id, current.recipient_id, content)?;
            let draft = Draft {
                sender: current.sender_id,
                recipient: current.recipient_id,
                content,
            };
            self.signals
                .before_send(&draft)
                .map_err(|reason| Error::Rejected { reason })?;
            let edited = ops.edit(editor, id, content).await?;
            self.signals.message_edited(&edited.message, edited.muted);
            Ok(edited.message)
        })
    }

    pub(crate) async fn unsend_on<O: Operations>(
        &self,
        ops: &mut O,
        sender: UserId,
        id: MessageId,
    ) -> Result<()> {
        crate::trace::traced!("unsend_message", sender = sender, message = id; async {
            let unsent = ops.unsend(sender, id, self.edit_window).await?;
            self.signals.message_unsent(&unsent.message, unsent.muted);
            Ok(())
        })
    }

    pub(crate) async fn search_on<O: Operations>(
        &self,
        ops: &mut O,
        user: UserId,
        query: &SearchQuery,
    ) -> Result<Vec<Message>> {
        crate::trace::traced!("search", user = user, partner = query.partner; async {
            match crate::search::terms(user, query)? {
                Some(terms) => ops.search(user, terms, query.before, query.limit).await,
                None => Ok(Vec::new()),
            }
        })
    }

    pub(crate) async fn is_blocked_on<O: Operations>(
        &self,
        ops: &mut O,
        user: UserId,
        other: UserId,
    ) -> Result<bool> {
        crate::trace::traced!("is_blocked", user = user, other = other; async {
            Ok(ops.is_blocked(user, other).await?)
        })
    }
    pub(crate) async fn delete_on<O: Operations>(
        &self,
        ops: &mut O,
        user: UserId,
        id: MessageId,
    ) -> Result<()> {
        crate::trace::traced!("delete_message", user = user, message = id; ops.delete(user, id))
    }

    pub(crate) async fn block_on<O: Operations>(
        &self,
        ops: &mut O,
        user: UserId,
        blocked: UserId,
        on: bool,
    ) -> Result<()> {
        crate::trace::traced!("block_user", user = user, blocked = blocked, on = on; async {
            if on {
                ops.block(user, blocked).await
            } else {
                ops.unblock(user, blocked).await
            }
        })
    }

    pub(crate) async fn set_flag_on<O: Operations>(
        &self,
        ops: &mut O,
        user: UserId,
        partner: UserId,
        flag: ConversationFlag,
        on: bool,
    ) -> Result<()> {
        crate::trace::traced!(
            "set_conversation_flag", user = user, partner = partner, flag = flag.name(), on = on;
            ops.set_flag(user, partner, flag, on)
        )
    }

    pub(crate) async fn purge_on<O: Operations>(&self, ops: &mut O, user: UserId) -> Result<u64> {
        crate::trace::traced!("purge_user", user = user; ops.purge(user))
    }
}

/// `"<sender name>: <content>"`, for `read_message_formatted`.
pub(crate) fn formatted(message: &Message, sender_name: impl FnOnce(UserId) -> String) -> String {
    format!("{}: {}", sender_name(message.sender_id), message.content)
}
