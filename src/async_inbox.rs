//! The async facade: [`Inbox`]'s operations on diesel-async's connections.

use crate::connection::AsyncInboxConnection;
use crate::execution::pin;
use crate::inbox::formatted;
use crate::{
    ConversationQuery, ConversationSummary, ConversationsQuery, Inbox, InboxBuilder, Message,
    MessageId, Result, SearchQuery, Signals, UserId,
};

/// [`Inbox`] for async services: the same operations, under the same names and with the
/// same arguments, as `async fn`s on diesel-async's connections.
///
/// Semantics, errors, retries and signals are exactly those of [`Inbox`]: each call runs
/// in a transaction of its own (a savepoint inside yours), and handlers run after the
/// write committed, before the future completes. Every future is `Send`, so an axum or
/// actix-web handler can await it; build one `AsyncInbox` at start-up and share it in an
/// `Arc` or by reference.
///
/// Transactions that lost a race are retried after a short wait on tokio's timer, so the
/// runtime needs its time driver (`#[tokio::main]` and `#[tokio::test]` enable it). A
/// future dropped before it completes (a client gone) leaves the connection inside the
/// inbox's transaction: diesel-async's pools see that and discard the connection; drop a
/// bare connection in that case. On SQLite the operation runs whole on a blocking thread
/// and completes there either way; a dropped future then only misses its signals.
///
/// ```
/// # #[cfg(feature = "sqlite")]
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use diesel::SqliteConnection;
/// use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
/// use diesel_async::AsyncConnection;
/// use directmessages::{AsyncInbox, ConversationQuery};
///
/// let mut conn = SyncConnectionWrapper::<SqliteConnection>::establish(":memory:").await?;
/// directmessages::run_migrations_async(&mut conn).await?;
///
/// let inbox = AsyncInbox::new();
/// inbox.signals().on_message_read(|e| println!("{} read {}", e.recipient, e.message.id));
/// let hello = inbox.send_message(&mut conn, 1, 2, "Hello Bob").await?;
/// assert_eq!(inbox.unread_count(&mut conn, 2).await?, 1);
/// inbox.read_message_as(&mut conn, 2, hello.id).await?;
/// let page = inbox.conversation(&mut conn, 2, 1, ConversationQuery::new()).await?;
/// assert!(page[0].read_at.is_some());
/// # Ok(()) }
/// # #[cfg(not(feature = "sqlite"))] fn main() {}
/// ```
#[derive(Debug, Default)]
#[cfg_attr(docsrs, doc(cfg(feature = "diesel-async")))]
pub struct AsyncInbox {
    inbox: Inbox,
}

impl From<Inbox> for AsyncInbox {
    /// The same limits and the same registered handlers.
    fn from(inbox: Inbox) -> Self {
        Self { inbox }
    }
}

impl AsyncInbox {
    /// The operations of `conn`, readied for a pooler in transaction mode when the inbox
    /// works through one ([`InboxBuilder::transaction_pooling`]), and whether each of
    /// their statements must then stay inside a transaction.
    fn ops<'c, C: AsyncInboxConnection>(&self, conn: &'c mut C) -> (&'c mut C::Operations, bool) {
        let ops = conn.operations();
        let pinned = self.inbox.readied(ops);
        (ops, pinned)
    }
}

impl InboxBuilder {
    /// The [`AsyncInbox`], with no signal handlers yet.
    #[cfg_attr(docsrs, doc(cfg(feature = "diesel-async")))]
    pub fn build_async(self) -> AsyncInbox {
        AsyncInbox::from(self.build())
    }
}

impl AsyncInbox {
    /// An async inbox with the default limits; [`Inbox::builder`] and
    /// [`InboxBuilder::build_async`] configure one.
    pub fn new() -> Self {
        Self::default()
    }

    /// The longest message this inbox accepts, in `char`s.
    pub fn max_message_chars(&self) -> usize {
        self.inbox.max_message_chars()
    }

    /// The handlers this inbox calls.
    pub fn signals(&self) -> &Signals {
        self.inbox.signals()
    }

    /// As [`Inbox::validate`].
    pub fn validate(&self, sender: UserId, recipient: UserId, content: &str) -> Result<()> {
        self.inbox.validate(sender, recipient, content)
    }

    /// As [`Inbox::send_message`].
    pub async fn send_message<C: AsyncInboxConnection>(
        &self,
        conn: &mut C,
        sender: UserId,
        recipient: UserId,
        content: &str,
    ) -> Result<Message> {
        let (ops, pinned) = self.ops(conn);
        pin(pinned, self.inbox.send_on(ops, sender, recipient, content)).await
    }

    /// As [`Inbox::unread_messages`].
    pub async fn unread_messages<C: AsyncInboxConnection>(
        &self,
        conn: &mut C,
        user: UserId,
    ) -> Result<Vec<Message>> {
        let (ops, pinned) = self.ops(conn);
        pin(pinned, self.inbox.unread_messages_on(ops, user)).await
    }

    /// As [`Inbox::unread_count`].
    pub async fn unread_count<C: AsyncInboxConnection>(
        &self,
        conn: &mut C,
        user: UserId,
    ) -> Result<i64> {
        let (ops, pinned) = self.ops(conn);
        pin(pinned, self.inbox.unread_count_on(ops, user)).await
    }

    /// As [`Inbox::read_message`].
    pub async fn read_message<C: AsyncInboxConnection>(
        &self,
        conn: &mut C,
        id: MessageId,
    ) -> Result<Message> {
        let (ops, pinned) = self.ops(conn);
        pin(pinned, self.inbox.read_on(ops, id, None)).await
    }

    /// As [`Inbox::read_message_as`].
    pub async fn read_message_as<C: AsyncInboxConnection>(
        &self,
        conn: &mut C,
        reader: UserId,
        id: MessageId,
    ) -> Result<Message> {
        let (ops, pinned) = self.ops(conn);
        pin(pinned, self.inbox.read_on(ops, id, Some(reader))).await
    }

    /// As [`Inbox::read_message_formatted`].
    pub async fn read_message_formatted<C: AsyncInboxConnection>(
        &self,
        conn: &mut C,
        id: MessageId,
        sender_name: impl FnOnce(UserId) -> String + Send,
    ) -> Result<String> {
        let message = self.read_message(conn, id).await?;
        Ok(formatted(&message, sender_name))
    }

    /// As [`Inbox::conversation_partners`].
    pub async fn conversation_partners<C: AsyncInboxConnection>(
        &self,
        conn: &mut C,
        user: UserId,
    ) -> Result<Vec<UserId>> {
        let (ops, pinned) = self.ops(conn);
        pin(pinned, self.inbox.conversation_partners_on(ops, user)).await
    }

    /// As [`Inbox::conversation`].
    pub async fn conversation<C: AsyncInboxConnection>(
        &self,
        conn: &mut C,
        user: UserId,
        partner: UserId,
        query: ConversationQuery,
    ) -> Result<Vec<Message>> {
        let (ops, pinned) = self.ops(conn);
        pin(
            pinned,
            self.inbox.conversation_on(ops, user, partner, query),
        )
        .await
    }

    /// As [`Inbox::conversations`].
    pub async fn conversations<C: AsyncInboxConnection>(
        &self,
        conn: &mut C,
        user: UserId,
        query: ConversationsQuery,
    ) -> Result<Vec<ConversationSummary>> {
        let (ops, pinned) = self.ops(conn);
        pin(pinned, self.inbox.conversations_on(ops, user, query)).await
    }

    /// As [`Inbox::mark_conversation_read`].
    pub async fn mark_conversation_read<C: AsyncInboxConnection>(
        &self,
        conn: &mut C,
        user: UserId,
        partner: UserId,
    ) -> Result<usize> {
        let (ops, pinned) = self.ops(conn);
        pin(
            pinned,
            self.inbox.mark_conversation_read_on(ops, user, partner),
        )
        .await
    }

    /// As [`Inbox::delete_message`].
    pub async fn delete_message<C: AsyncInboxConnection>(
        &self,
        conn: &mut C,
        user: UserId,
        id: MessageId,
    ) -> Result<()> {
        let (ops, pinned) = self.ops(conn);
        pin(pinned, self.inbox.delete_on(ops, user, id)).await
    }

    /// As [`Inbox::block_user`].
    pub async fn block_user<C: AsyncInboxConnection>(
        &self,
        conn: &mut C,
        user: UserId,
        blocked: UserId,
    ) -> Result<()> {
        let (ops, pinned) = self.ops(conn);
        pin(pinned, self.inbox.block_on(ops, user, blocked, true)).await
    }

    /// As [`Inbox::unblock_user`].
    pub async fn unblock_user<C: AsyncInboxConnection>(
        &self,
        conn: &mut C,
        user: UserId,
        blocked: UserId,
    ) -> Result<()> {
        let (ops, pinned) = self.ops(conn);
        pin(pinned, self.inbox.block_on(ops, user, blocked, false)).await
    }

    /// As [`Inbox::archive_conversation`].
    pub async fn archive_conversation<C: AsyncInboxConnection>(
        &self,
        conn: &mut C,
        user: UserId,
        partner: UserId,
    ) -> Result<()> {
        let flag = crate::operations::ConversationFlag::Archived;
        let (ops, pinned) = self.ops(conn);
        pin(
            pinned,
            self.inbox.set_flag_on(ops, user, partner, flag, true),
        )
        .await
    }

    /// As [`Inbox::unarchive_conversation`].
    pub async fn unarchive_conversation<C: AsyncInboxConnection>(
        &self,
        conn: &mut C,
        user: UserId,
        partner: UserId,
    ) -> Result<()> {
        let flag = crate::operations::ConversationFlag::Archived;
        let (ops, pinned) = self.ops(conn);
        pin(
            pinned,
            self.inbox.set_flag_on(ops, user, partner, flag, false),
        )
        .await
    }

    /// As [`Inbox::edit_message`].
    pub async fn edit_message<C: AsyncInboxConnection>(
        &self,
        conn: &mut C,
        editor: UserId,
        id: MessageId,
        content: &str,
    ) -> Result<Message> {
        let (ops, pinned) = self.ops(conn);
        pin(pinned, self.inbox.edit_on(ops, editor, id, content)).await
    }

    /// As [`Inbox::unsend_message`].
    pub async fn unsend_message<C: AsyncInboxConnection>(
        &self,
        conn: &mut C,
        sender: UserId,
        id: MessageId,
    ) -> Result<()> {
        let (ops, pinned) = self.ops(conn);
        pin(pinned, self.inbox.unsend_on(ops, sender, id)).await
    }

    /// As [`Inbox::mute_conversation`].
    pub async fn mute_conversation<C: AsyncInboxConnection>(
        &self,
        conn: &mut C,
        user: UserId,
        partner: UserId,
    ) -> Result<()> {
        let flag = crate::operations::ConversationFlag::Muted;
        let (ops, pinned) = self.ops(conn);
        pin(
            pinned,
            self.inbox.set_flag_on(ops, user, partner, flag, true),
        )
        .await
    }

    /// As [`Inbox::unmute_conversation`].
    pub async fn unmute_conversation<C: AsyncInboxConnection>(
        &self,
        conn: &mut C,
        user: UserId,
        partner: UserId,
    ) -> Result<()> {
        let flag = crate::operations::ConversationFlag::Muted;
        let (ops, pinned) = self.ops(conn);
        pin(
            pinned,
            self.inbox.set_flag_on(ops, user, partner, flag, false),
        )
        .await
    }

    /// As [`Inbox::is_blocked`].
    pub async fn is_blocked<C: AsyncInboxConnection>(
        &self,
        conn: &mut C,
        user: UserId,
        other: UserId,
    ) -> Result<bool> {
        let (ops, pinned) = self.ops(conn);
        pin(pinned, self.inbox.is_blocked_on(ops, user, other)).await
    }

    /// As [`Inbox::search`].
    pub async fn search<C: AsyncInboxConnection>(
        &self,
        conn: &mut C,
        user: UserId,
        query: SearchQuery,
    ) -> Result<Vec<Message>> {
        let (ops, pinned) = self.ops(conn);
        pin(pinned, self.inbox.search_on(ops, user, &query)).await
    }

    /// As [`Inbox::purge_user`].
    pub async fn purge_user<C: AsyncInboxConnection>(
        &self,
        conn: &mut C,
        user: UserId,
    ) -> Result<u64> {
        let (ops, pinned) = self.ops(conn);
        pin(pinned, self.inbox.purge_on(ops, user)).await
    }
}
