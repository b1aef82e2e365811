//! The only place that knows SQLite from PostgreSQL from MySQL.
//!
//! [`InboxConnection`] is the public, sealed bound of the facade. Each connection type
//! maps to a [`Store`]: the operations of the inbox, stamped for every backend from the
//! one Diesel DSL in `queries.rs`, plus the few hooks below that differ per backend
//! (how an insert returns its row, how a guarded mark-read returns what it marked, how a
//! write transaction begins, which migrations apply).

use chrono::{DateTime, Utc};
use diesel::connection::LoadConnection;
use diesel::result::QueryResult;
use diesel::Connection;

use crate::message::{NewMessage, StoredMessage};
#[cfg(feature = "sqlite")]
use crate::retry::is_nested;
#[cfg(any(feature = "postgres", feature = "mysql"))]
use crate::retry::retrying_transaction;
use crate::{ConversationQuery, ConversationSummary, ConversationsQuery, Error, Message};
use crate::{MessageId, Result, UserId};

#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

#[cfg(all(feature = "sqlite", feature = "r2d2"))]
pub use sqlite::SqliteCustomizer;

mod sealed {
    pub trait Sealed {}
}

/// A Diesel connection the inbox can work on.
///
/// Implemented for [`diesel::SqliteConnection`], [`diesel::PgConnection`] and
/// [`diesel::MysqlConnection`] (each behind its feature) and, with the `r2d2` feature,
/// for a `diesel::r2d2::PooledConnection` of any of them, so both `&mut pooled` and
/// `&mut *pooled` work. Sealed: the inbox relies on each backend's SQL dialect.
pub trait InboxConnection: sealed::Sealed {
    #[doc(hidden)]
    type Store: Store;
    #[doc(hidden)]
    fn store(&mut self) -> &mut Self::Store;
}

#[cfg(feature = "r2d2")]
impl<C> sealed::Sealed for diesel::r2d2::PooledConnection<diesel::r2d2::ConnectionManager<C>> where
    C: InboxConnection + diesel::r2d2::R2D2Connection + 'static
{
}

#[cfg(feature = "r2d2")]
impl<C> InboxConnection for diesel::r2d2::PooledConnection<diesel::r2d2::ConnectionManager<C>>
where
    C: InboxConnection + diesel::r2d2::R2D2Connection + 'static,
{
    type Store = C::Store;
    fn store(&mut self) -> &mut Self::Store {
        (**self).store()
    }
}

/// Makes a backend's connection an [`InboxConnection`] that is its own [`Store`].
macro_rules! own_store {
    ($conn:ty) => {
        impl super::sealed::Sealed for $conn {}

        impl InboxConnection for $conn {
            type Store = Self;
            fn store(&mut self) -> &mut Self {
                self
            }
        }
    };
}
use own_store;

/// The hooks of the backends with `RETURNING` (SQLite 3.35+ and PostgreSQL): an insert
/// and a guarded mark-read return their rows from the statement itself.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
macro_rules! returning_hooks {
    () => {
        fn insert_message(&mut self, new: &NewMessage<'_>) -> QueryResult<Message> {
            diesel::insert_into(dm::table)
                .values(new)
                .returning(Message::as_returning())
                .get_result(self)
        }

        fn mark_read(
            &mut self,
            filter: ReadFilter<Self::Backend>,
            at: DateTime<Utc>,
        ) -> QueryResult<Vec<Message>> {
            diesel::update(dm::table.filter(filter))
                .set(dm::read_at.eq(UtcTimestamp(at)))
                .returning(Message::as_returning())
                .get_results(self)
        }
    };
}
#[cfg(any(feature = "sqlite", feature = "postgres"))]
use returning_hooks;

/// A predicate on `direct_messages`, built once by the shared code, run by a backend hook.
#[allow(unreachable_pub)]
pub type ReadFilter<DB> = Box<
    dyn diesel::BoxableExpression<
        crate::schema::direct_messages::table,
        DB,
        SqlType = diesel::sql_types::Bool,
    >,
>;

/// Which unread messages a mark-read applies to. Every scope also requires the message
/// to be unread and not deleted by its recipient.
#[allow(unreachable_pub)] // named by the hidden `Store`, which must be `pub`
#[derive(Debug, Clone, Copy)]
pub enum ReadScope<'a> {
    /// One message, whoever reads it.
    Message(MessageId),
    /// These messages, where `reader` is the recipient.
    Messages {
        reader: UserId,
        ids: &'a [MessageId],
    },
    /// Everything `partner` sent to `reader`.
    From { reader: UserId, partner: UserId },
}

/// The result of reading one message.
#[allow(unreachable_pub)]
#[derive(Debug)]
pub struct Read {
    pub message: Message,
    /// This call marked it read: `message_read` fires.
    pub newly_read: bool,
}

/// One page of a conversation, and which of its messages this call marked read.
#[allow(unreachable_pub)]
#[derive(Debug)]
pub struct Page {
    pub messages: Vec<Message>,
    pub marked: Vec<Message>,
}

/// The operations of the inbox on one backend's connection. Hidden: the facade is the API.
#[allow(unreachable_pub)]
#[doc(hidden)]
pub trait Store: Connection + LoadConnection + Sized {
    // What differs per backend: backend/<name>.rs.

    /// Applies the embedded migrations of this backend.
    fn migrate(&mut self) -> Result<()>;
    /// Runs `f` in a transaction that may write (a savepoint inside the caller's own).
    fn write_transaction<T>(&mut self, f: impl FnMut(&mut Self) -> Result<T>) -> Result<T>;
    /// Inserts a message and returns the stored row.
    fn insert_message(&mut self, new: &NewMessage<'_>) -> QueryResult<Message>;
    /// Marks read the messages `filter` selects and returns exactly the ones it changed.
    fn mark_read(
        &mut self,
        filter: ReadFilter<Self::Backend>,
        at: DateTime<Utc>,
    ) -> QueryResult<Vec<Message>>;
    /// The message as last committed, even where a transaction reads from a snapshot.
    fn find_current(&mut self, id: MessageId) -> QueryResult<Option<StoredMessage>>;
    /// Locks the `(lo, hi)` row of a conversation until the transaction ends; `false`
    /// when it does not exist yet.
    fn lock_conversation(&mut self, lo: UserId, hi: UserId) -> QueryResult<bool>;

    // The same on every backend: queries.rs.

    /// The message with its deletion flags.
    fn find_stored(&mut self, id: MessageId) -> QueryResult<Option<StoredMessage>>;
    /// Whether `user` blocks `other`.
    fn is_blocked(&mut self, user: UserId, other: UserId) -> QueryResult<bool>;
    /// Locks the conversation, checks blocks, stamps, inserts, and updates both sides'
    /// conversation rows.
    fn send(&mut self, sender: UserId, recipient: UserId, content: &str) -> Result<Message>;
    /// Reads a message, as `reader` when given (checked), else unchecked.
    fn read(&mut self, id: MessageId, reader: Option<UserId>) -> Result<Read>;
    /// Marks read what `scope` selects and keeps the unread counters in step.
    fn mark_and_count(&mut self, scope: ReadScope<'_>) -> QueryResult<Vec<Message>>;
    /// Unread messages of `user` that `user` has not deleted, from users not blocked.
    fn unread_messages(&mut self, user: UserId) -> QueryResult<Vec<Message>>;
    /// How many messages `unread_messages` would return.
    fn unread_count(&mut self, user: UserId) -> QueryResult<i64>;
    /// Everyone `user` has a visible message with, latest first.
    fn partners(&mut self, user: UserId) -> QueryResult<Vec<UserId>>;
    /// A page of the conversation between `user` and `partner`.
    fn conversation(
        &mut self,
        user: UserId,
        partner: UserId,
        query: &ConversationQuery,
    ) -> Result<Page>;
    /// The inbox of `user`, one summary per partner.
    fn conversations(
        &mut self,
        user: UserId,
        query: &ConversationsQuery,
    ) -> QueryResult<Vec<ConversationSummary>>;
    /// Marks read everything from `partner` to `user`.
    fn mark_conversation_read(&mut self, user: UserId, partner: UserId) -> Result<Vec<Message>>;
    /// Hides a message from `user`; removes it once both sides did.
    fn delete(&mut self, user: UserId, id: MessageId) -> Result<()>;
    /// Records that `user` blocks `blocked`.
    fn block(&mut self, user: UserId, blocked: UserId) -> Result<()>;
    /// Lifts the block, if any.
    fn unblock(&mut self, user: UserId, blocked: UserId) -> Result<()>;
    /// Deletes every row that mentions `user`; returns how many messages went.
    fn purge(&mut self, user: UserId) -> Result<u64>;
}

/// Applies `migrations` on `conn`.
fn apply_migrations<C, DB>(
    conn: &mut C,
    migrations: diesel_migrations::EmbeddedMigrations,
) -> Result<()>
where
    DB: diesel::backend::Backend,
    C: diesel_migrations::MigrationHarness<DB>,
{
    conn.run_pending_migrations(migrations)
        .map(drop)
        .map_err(|e| Error::Migration(e.to_string()))
}
