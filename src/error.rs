//! The crate's error type.

use crate::{MessageId, UserId};

/// Everything that can go wrong in the inbox.
///
/// Validation and authorization errors are detected before anything is written, so the
/// database is unchanged when one of them is returned.
///
/// ```
/// # #[cfg(feature = "sqlite")]
/// # fn main() -> directmessages::Result<()> {
/// # use diesel::prelude::*;
/// # let mut conn = SqliteConnection::establish(":memory:").unwrap();
/// # directmessages::run_migrations(&mut conn)?;
/// use directmessages::{Error, Inbox};
/// let inbox = Inbox::new();
/// match inbox.read_message_as(&mut conn, 2, 42) {
///     Err(Error::MessageNotFound(id)) => assert_eq!(id, 42), // a 404 in a web app
///     other => panic!("{other:?}"),
/// }
/// let err = inbox.send_message(&mut conn, 1, 1, "me").unwrap_err();
/// assert_eq!(err.to_string(), "user 1 cannot send a message to themselves");
/// # Ok(()) }
/// # #[cfg(not(feature = "sqlite"))] fn main() {}
/// ```
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The sender and the recipient are the same user.
    #[error("user {user} cannot send a message to themselves")]
    SelfMessage {
        /// The user who tried.
        user: UserId,
    },
    /// The content is empty or only whitespace.
    #[error("message is empty")]
    EmptyMessage,
    /// The content is longer than the inbox allows.
    #[error("message is {length} characters long, the maximum is {max}")]
    MessageTooLong {
        /// Its length in `char`s.
        length: usize,
        /// The configured maximum, see [`InboxBuilder::max_message_chars`](crate::InboxBuilder::max_message_chars).
        max: usize,
    },
    /// The content holds something no backend can store faithfully.
    #[error("invalid message content: {reason}")]
    InvalidContent {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No message has this id, or it is hidden from the user asking.
    #[error("message {0} not found")]
    MessageNotFound(MessageId),
    /// The user is neither the sender nor the recipient of the message.
    #[error("user {user} may not access message {message}")]
    NotAllowed {
        /// The user who asked.
        user: UserId,
        /// The message asked for.
        message: MessageId,
    },
    /// The recipient blocks the sender; nothing was stored.
    #[error("user {recipient} blocks messages from user {sender}")]
    Blocked {
        /// Who tried to send.
        sender: UserId,
        /// Who blocks them.
        recipient: UserId,
    },
    /// The message is older than the inbox's
    /// [`edit_window`](crate::InboxBuilder::edit_window): it can no longer be edited or
    /// unsent.
    #[error("message {message} can no longer be changed: its edit window has closed")]
    EditWindowClosed {
        /// The message.
        message: MessageId,
    },
    /// A policy registered with [`Signals::on_before_send`](crate::Signals::on_before_send)
    /// vetoed the message; nothing was stored.
    #[error("message rejected: {reason}")]
    Rejected {
        /// The reason the policy gave.
        reason: String,
    },
    /// A user tried to block themselves.
    #[error("user {user} cannot block themselves")]
    SelfBlock {
        /// The user who tried.
        user: UserId,
    },
    /// A search text with no word in it (empty, or only spaces, punctuation or emoji):
    /// see [`SearchQuery`](crate::SearchQuery).
    #[error("the search has no word to look for")]
    EmptySearch,
    /// The database failed. Under contention PostgreSQL and MySQL may abort a transaction
    /// with a serialization failure or a deadlock, and MariaDB Galera one that conflicted
    /// with another node: the inbox retries those itself, with backoff, when it owns the
    /// transaction, so one that reaches you came from inside your own transaction (roll it
    /// back and retry it) or persisted through every retry. A statement cut off by a
    /// statement timeout or `KILL QUERY` is reported here too; the connection stays usable.
    ///
    /// Its `Display` is only "database error": the Diesel error is its
    /// [`source`](std::error::Error::source), so an error chain prints it once.
    #[error("database error")]
    Database(#[from] diesel::result::Error),
    /// Applying the embedded migrations failed.
    #[error("migration failed: {0}")]
    Migration(String),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
