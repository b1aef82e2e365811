//! The Diesel tables of the crate, for joining them with the host app's own tables.
//!
//! Only `direct_messages` and its columns are part of the stable contract; the two helper
//! tables are exposed so an app can inspect them, but the inbox owns their contents.
//!
//! The timestamp columns have the SQL type [`sql_types::UtcDateTime`]; bind a
//! `DateTime<Utc>` to them in your own queries with [`UtcTimestamp`]:
//!
//! ```
//! # #[cfg(feature = "sqlite")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use chrono::{Duration, Utc};
//! use diesel::prelude::*;
//! use directmessages::schema::{direct_messages, UtcTimestamp};
//!
//! let mut conn = SqliteConnection::establish(":memory:")?;
//! directmessages::run_migrations(&mut conn)?;
//! directmessages::Inbox::new().send_message(&mut conn, 1, 2, "hi")?;
//! let hour_ago = Utc::now() - Duration::hours(1);
//! let recent: i64 = direct_messages::table
//!     .filter(direct_messages::sent_at.gt(UtcTimestamp(hour_ago)))
//!     .count()
//!     .get_result(&mut conn)?;
//! assert_eq!(recent, 1);
//! # Ok(()) }
//! # #[cfg(not(feature = "sqlite"))] fn main() {}
//! ```

use chrono::{DateTime, Utc};

/// A `DateTime<Utc>` that binds to the crate's timestamp columns (and loads from them),
/// to the microsecond, on every backend.
///
/// A newtype because Rust's orphan rule keeps Diesel's `AsExpression` off chrono's type
/// for an SQL type defined here.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    diesel::expression::AsExpression,
    diesel::deserialize::FromSqlRow,
)]
#[diesel(sql_type = sql_types::UtcDateTime)]
pub struct UtcTimestamp(pub DateTime<Utc>);

impl From<DateTime<Utc>> for UtcTimestamp {
    fn from(t: DateTime<Utc>) -> Self {
        Self(t)
    }
}

impl From<UtcTimestamp> for DateTime<Utc> {
    fn from(t: UtcTimestamp) -> Self {
        t.0
    }
}

/// SQL types used by the tables below.
pub mod sql_types {
    /// A point in time stored in UTC with microsecond precision: `TIMESTAMPTZ` on
    /// PostgreSQL, `DATETIME(6)` on MySQL, ISO-8601 text on SQLite. Loads as
    /// [`chrono::DateTime<chrono::Utc>`].
    #[derive(
        Debug, Clone, Copy, Default, diesel::sql_types::SqlType, diesel::query_builder::QueryId,
    )]
    #[diesel(postgres_type(oid = 1184, array_oid = 1185))]
    #[diesel(sqlite_type(name = "Text"))]
    #[diesel(mysql_type(name = "DateTime"))]
    pub struct UtcDateTime;
}

diesel::table! {
    use diesel::sql_types::*;
    use super::sql_types::UtcDateTime;

    /// Every message, once. `user_lo`/`user_hi` are generated from the two users.
    direct_messages (id) {
        /// Never reused, increasing in insertion order.
        id -> BigInt,
        /// The user who wrote the message.
        sender_id -> BigInt,
        /// The user it was written to.
        recipient_id -> BigInt,
        /// The text.
        content -> Text,
        /// When it was stored (UTC).
        sent_at -> UtcDateTime,
        /// When the recipient first read it (UTC), `NULL` while unread.
        read_at -> Nullable<UtcDateTime>,
        /// When its sender last edited it (UTC), `NULL` if never.
        edited_at -> Nullable<UtcDateTime>,
        /// The sender deleted it from their view.
        deleted_by_sender -> Bool,
        /// The recipient deleted it from their view.
        deleted_by_recipient -> Bool,
        /// The smaller of the two user ids (generated).
        user_lo -> BigInt,
        /// The larger of the two user ids (generated).
        user_hi -> BigInt,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::sql_types::UtcDateTime;

    /// One row per (owner, partner): the owner's side of a conversation.
    direct_message_conversations (owner_id, partner_id) {
        /// The user whose inbox this row belongs to.
        owner_id -> BigInt,
        /// The other user.
        partner_id -> BigInt,
        /// The latest message between them that the owner has not deleted.
        last_message_id -> Nullable<BigInt>,
        /// Messages from the partner that the owner has neither read nor deleted.
        unread_count -> BigInt,
        /// The latest `sent_at` of the conversation (of any message, deleted or not): the
        /// next send, which locks this row, never stamps an earlier time.
        last_sent_at -> Nullable<UtcDateTime>,
        /// The owner archived the conversation; the next message in it clears this.
        archived -> Bool,
        /// The owner muted the conversation: the app holds back its notifications.
        muted -> Bool,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::sql_types::UtcDateTime;

    /// Who blocks whom.
    direct_message_blocks (blocker_id, blocked_id) {
        /// The user who blocks.
        blocker_id -> BigInt,
        /// The user who may no longer write to `blocker_id`.
        blocked_id -> BigInt,
        /// When the block was made (UTC).
        created_at -> UtcDateTime,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    direct_messages,
    direct_message_conversations,
    direct_message_blocks,
);
