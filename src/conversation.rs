//! Options and results of the conversation listings.

use crate::{Message, MessageId, UserId};

/// Options of [`Inbox::conversation`](crate::Inbox::conversation).
///
/// `Default` is the whole conversation, oldest first, nothing marked read. `Copy`, and with
/// the `serde` feature `Deserialize` with every field optional (`limit`, `reversed`,
/// `mark_read`, `before`, `after`), so a web framework can read it from a query string. Pages are
/// keyset pages on the message id, so they stay exact while new messages arrive:
///
/// ```
/// use directmessages::ConversationQuery;
/// // the 20 latest messages, newest first
/// let first = ConversationQuery::new().reversed().limit(20);
/// // the 20 before the oldest one shown (id 1234)
/// let next = ConversationQuery::new().reversed().limit(20).before(1234);
/// # let _ = (first, next);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(default)
)]
pub struct ConversationQuery {
    pub(crate) limit: Option<u32>,
    pub(crate) reversed: bool,
    pub(crate) mark_read: bool,
    pub(crate) before: Option<MessageId>,
    pub(crate) after: Option<MessageId>,
}

impl ConversationQuery {
    /// The whole conversation, oldest first, nothing marked read.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// At most `n` messages.
    #[must_use]
    pub fn limit(mut self, n: u32) -> Self {
        self.limit = Some(n);
        self
    }

    /// Newest first; with [`limit`](Self::limit), the `n` latest.
    #[must_use]
    pub fn reversed(mut self) -> Self {
        self.reversed = true;
        self
    }

    /// Marks read the returned messages that the viewer received (never the ones the
    /// viewer sent), firing `message_read` once for each one this call marked.
    #[must_use]
    pub fn mark_read(mut self) -> Self {
        self.mark_read = true;
        self
    }

    /// Only messages with an id below `id`.
    #[must_use]
    pub fn before(mut self, id: MessageId) -> Self {
        self.before = Some(id);
        self
    }

    /// Only messages with an id above `id`.
    ///
    /// Polling a conversation for new messages with `after(last id shown)` is exact on
    /// every backend, under concurrent writers: within a conversation, messages commit in
    /// id order, so none ever appears behind a cursor already handed out. (Across
    /// conversations ids do not follow commit order: keep one cursor per conversation.)
    #[must_use]
    pub fn after(mut self, id: MessageId) -> Self {
        self.after = Some(id);
        self
    }
}

/// One row of a user's inbox: the other user, the latest message between them, and how
/// many messages from them the user has not read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ConversationSummary {
    /// The other user.
    pub partner: UserId,
    /// The latest message between the two that the user has not deleted.
    pub last_message: Message,
    /// Messages from `partner` the user has neither read nor deleted; 0 while the user
    /// blocks `partner`.
    pub unread_count: i64,
    /// The user archived the conversation (and no message arrived since).
    pub archived: bool,
    /// The user muted the conversation: hold back its notifications.
    pub muted: bool,
}

/// Options of [`Inbox::conversations`](crate::Inbox::conversations).
///
/// `Default` is every conversation the user has not archived, latest activity first;
/// [`archived`](Self::archived) lists the archived ones instead.
///
/// ```
/// use directmessages::ConversationsQuery;
/// // the inbox screen, 20 rows at a time
/// let first = ConversationsQuery::new().limit(20);
/// // the next 20, after a last row whose latest message has id 1234
/// let next = ConversationsQuery::new().limit(20).before(1234);
/// // the archive
/// let archive = ConversationsQuery::new().archived().limit(20);
/// # let _ = (first, next, archive);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(default)
)]
pub struct ConversationsQuery {
    pub(crate) limit: Option<u32>,
    pub(crate) before: Option<MessageId>,
    pub(crate) archived: bool,
}

impl ConversationsQuery {
    /// Every conversation the user has not archived, latest activity first.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Only the conversations the user archived (with their real unread counts), latest
    /// activity first, paged like the others.
    #[must_use]
    pub fn archived(mut self) -> Self {
        self.archived = true;
        self
    }

    /// At most `n` conversations.
    #[must_use]
    pub fn limit(mut self, n: u32) -> Self {
        self.limit = Some(n);
        self
    }

    /// The next page: conversations whose latest message is older than
    /// `last_message_id`, the `last_message.id` of the last summary already shown.
    #[must_use]
    pub fn before(mut self, last_message_id: MessageId) -> Self {
        self.before = Some(last_message_id);
        self
    }
}
