//! The message read model, its insert model, and the event signal handlers receive.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::schema::direct_messages;
use crate::schema::UtcTimestamp;
use crate::{MessageId, UserId};

/// Adds to a model one `check_for_backend` listing every enabled backend: Diesel honours
/// only the last such attribute, so one per backend would check only the last.
macro_rules! checked_for_enabled_backends {
    ($(#[$meta:meta])* $vis:vis struct $name:ident $body:tt) => {
        $(#[$meta])*
        #[cfg_attr(
            all(feature = "sqlite", feature = "postgres", feature = "mysql"),
            diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg, diesel::mysql::Mysql))
        )]
        #[cfg_attr(
            all(feature = "sqlite", feature = "postgres", not(feature = "mysql")),
            diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))
        )]
        #[cfg_attr(
            all(feature = "sqlite", not(feature = "postgres"), feature = "mysql"),
            diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::mysql::Mysql))
        )]
        #[cfg_attr(
            all(not(feature = "sqlite"), feature = "postgres", feature = "mysql"),
            diesel(check_for_backend(diesel::pg::Pg, diesel::mysql::Mysql))
        )]
        #[cfg_attr(
            all(feature = "sqlite", not(feature = "postgres"), not(feature = "mysql")),
            diesel(check_for_backend(diesel::sqlite::Sqlite))
        )]
        #[cfg_attr(
            all(not(feature = "sqlite"), feature = "postgres", not(feature = "mysql")),
            diesel(check_for_backend(diesel::pg::Pg))
        )]
        #[cfg_attr(
            all(not(feature = "sqlite"), not(feature = "postgres"), feature = "mysql"),
            diesel(check_for_backend(diesel::mysql::Mysql))
        )]
        $vis struct $name $body
    };
}

checked_for_enabled_backends! {
/// A stored message.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[diesel(table_name = direct_messages)]
pub struct Message {
    /// Its id: unique, never reused, increasing in the order messages were stored.
    pub id: MessageId,
    /// Who wrote it.
    pub sender_id: UserId,
    /// Who it was written to.
    pub recipient_id: UserId,
    /// The text.
    pub content: String,
    /// When it was stored, in UTC, to the microsecond.
    pub sent_at: DateTime<Utc>,
    /// When the recipient first read it, or `None` while unread.
    pub read_at: Option<DateTime<Utc>>,
    /// When its sender last edited it, or `None` if never.
    pub edited_at: Option<DateTime<Utc>>,
}
}

impl Message {
    /// Whether the recipient has not read it yet.
    pub fn is_unread(&self) -> bool {
        self.read_at.is_none()
    }

    /// The other user of the conversation, seen from `user`.
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")]
    /// # fn main() -> directmessages::Result<()> {
    /// # use diesel::prelude::*;
    /// # let mut conn = SqliteConnection::establish(":memory:").unwrap();
    /// # directmessages::run_migrations(&mut conn)?;
    /// let m = directmessages::Inbox::new().send_message(&mut conn, 1, 2, "hi")?;
    /// assert_eq!((m.partner_of(1), m.partner_of(2)), (2, 1));
    /// assert!(m.is_unread());
    /// # Ok(()) }
    /// # #[cfg(not(feature = "sqlite"))] fn main() {}
    /// ```
    pub fn partner_of(&self, user: UserId) -> UserId {
        if self.sender_id == user {
            self.recipient_id
        } else {
            self.sender_id
        }
    }

    pub(crate) fn event(&self, muted: bool) -> MessageEvent<'_> {
        MessageEvent {
            message: self,
            sender: self.sender_id,
            recipient: self.recipient_id,
            muted,
        }
    }
}

/// Shows the content, as the seed app's `__str__` did.
impl std::fmt::Display for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.content)
    }
}

checked_for_enabled_backends! {
/// A message as stored, with who has hidden it: what authorization decides on.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = direct_messages)]
pub(crate) struct StoredMessage {
    #[diesel(embed)]
    pub(crate) message: Message,
    pub(crate) deleted_by_sender: bool,
    pub(crate) deleted_by_recipient: bool,
}
}

impl StoredMessage {
    /// Whether `user` took part and has not deleted it.
    pub(crate) fn visible_to(&self, user: UserId) -> bool {
        (self.message.sender_id == user && !self.deleted_by_sender)
            || (self.message.recipient_id == user && !self.deleted_by_recipient)
    }
}

/// A new message, as inserted.
#[derive(Debug, Insertable)]
#[diesel(table_name = direct_messages)]
pub(crate) struct NewMessage<'a> {
    pub(crate) sender_id: UserId,
    pub(crate) recipient_id: UserId,
    pub(crate) content: &'a str,
    pub(crate) sent_at: UtcTimestamp,
}

/// What a `message_sent` or `message_read` handler receives.
#[derive(Debug, Clone, Copy)]
pub struct MessageEvent<'a> {
    /// The message as stored (for `message_read`, already marked read).
    pub message: &'a Message,
    /// Its sender.
    pub sender: UserId,
    /// Its recipient.
    pub recipient: UserId,
    /// The recipient muted this conversation: hold back the notification (the message is
    /// stored and counted as any other).
    pub muted: bool,
}
