//! The values the operations hand back to the facade, and the options they take.

use crate::{Message, MessageId, UserId};

/// Which unread messages a mark-read applies to. Every scope also requires the message
/// to be unread and not deleted by its recipient.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ReadScope<'a> {
    /// One message, whoever reads it.
    Message(MessageId),
    /// These messages, where `reader` is the recipient.
    Messages {
        reader: UserId,
        ids: &'a [MessageId],
    },
    /// Everything `partner` sent to `reader`, `unread` of them by the conversation's
    /// counter a moment before.
    From {
        reader: UserId,
        partner: UserId,
        unread: i64,
    },
}

/// A message a send stored, and whether its recipient muted the conversation.
#[derive(Debug)]
pub struct Sent {
    /// The message as stored.
    pub message: Message,
    /// The recipient muted the conversation (for `MessageEvent::muted`).
    pub muted: bool,
}

/// Messages one call marked read, all received by one user from one partner, and whether
/// that user muted the conversation.
#[derive(Debug, Default)]
pub struct Marked {
    /// The messages this call marked, in id order.
    pub messages: Vec<Message>,
    /// Their recipient muted the conversation (`false` when nothing was marked).
    pub muted: bool,
}

/// A message read by one call, and whether that call is the one that marked it read.
#[derive(Debug)]
pub struct MessageRead {
    /// The message as this call leaves it.
    pub message: Message,
    /// This call marked it read: `message_read` fires.
    pub newly_read: bool,
    /// Its recipient muted the conversation (known when `newly_read`).
    pub muted: bool,
}

/// One page of a conversation, and which of its messages this call marked read.
#[derive(Debug)]
pub struct ConversationPage {
    /// The page.
    pub messages: Vec<Message>,
    /// Those of them this call marked read, and whether the viewer muted the conversation.
    pub marked: Marked,
}

/// A per-side flag of a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConversationFlag {
    /// Out of the inbox until a new message arrives.
    Archived,
    /// Notifications held back by the app.
    Muted,
}

impl ConversationFlag {
    /// The flag's name, for traces.
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Archived => "archived",
            Self::Muted => "muted",
        }
    }
}
