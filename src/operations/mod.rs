//! The operations of the inbox: the [`Operations`] trait every connection implements (for
//! both execution flavours), and what their one text shares that does not depend on the
//! connection type, compiled once: the expressions of the queries (`expressions`), how
//! values are bound (`binds`), the authorization rules (`rules`), the values handed back
//! (`values`), the boxed transaction body (`body`) and the search index's statements
//! (`search`).
//!
//! The bodies are in `src/queries/`, written once as `async fn`s and mounted (`#[path]`) by
//! each dialect file, which each execution flavour mounts in turn with its own connection
//! type: the same text compiles against
//! every backend and flavour, and clippy, rustfmt and rust-analyzer read it as the plain
//! Rust it is. On the blocking flavour every future it awaits is ready when created, so an
//! operation completes in one poll (`execution::blocking::run`).
//!
//! Why this form. One `macro_rules!` body stamped per backend and flavour hid the code
//! from clippy (a lint planted in it went unreported), rustfmt and rust-analyzer.
//! Functions generic over the connection need where-clauses longer than the queries, and
//! still cannot express RETURNING on one backend and not another. Proc-macro "maybe
//! async" rewriting (two copies generated from one, with or without `.await`) would add
//! a build dependency and again hide the expanded code from the tools. The cost of the
//! async text on the blocking flavour was measured against plain synchronous code when it
//! was introduced (README, "Performance"): within the machine's noise.

use std::future::Future;

use diesel::QueryResult;

use crate::{
    ConversationQuery, ConversationSummary, ConversationsQuery, Message, MessageId, Result, UserId,
};

mod binds;
mod body;
mod expressions;
mod rules;
mod search;
mod values;

pub(crate) use binds::*;
pub(crate) use body::*;
pub(crate) use expressions::*;
pub(crate) use rules::*;
pub(crate) use search::*;
pub(crate) use values::ReadScope;
pub use values::{ConversationFlag, ConversationPage, Marked, MessageRead, Sent};

/// The operations of the inbox on one backend's connection: what the facade calls, on
/// either flavour. Implemented by `src/queries/` as mounted for each dialect and flavour
/// (and, for SQLite's async connection, by running those on a blocking thread).
///
/// Every method returns a `Send` future: the facade's futures hold them across `.await`.
pub trait Operations: Send {
    /// Applies the embedded migrations of this backend, one instance at a time.
    fn migrate(&mut self) -> impl Future<Output = Result<()>> + Send;
    /// Whether `user` blocks `other`.
    fn is_blocked(
        &mut self,
        user: UserId,
        other: UserId,
    ) -> impl Future<Output = QueryResult<bool>> + Send;
    /// Locks the conversation, checks blocks, stamps, inserts, and updates both sides'
    /// conversation rows.
    fn send(
        &mut self,
        sender: UserId,
        recipient: UserId,
        content: &str,
    ) -> impl Future<Output = Result<Sent>> + Send;
    /// Reads a message, as `reader` when given (checked), else unchecked.
    fn read(
        &mut self,
        id: MessageId,
        reader: Option<UserId>,
    ) -> impl Future<Output = Result<MessageRead>> + Send;
    /// Unread messages of `user` that `user` has not deleted, from users not blocked.
    fn unread_messages(
        &mut self,
        user: UserId,
    ) -> impl Future<Output = QueryResult<Vec<Message>>> + Send;
    /// How many messages `unread_messages` would return.
    fn unread_count(&mut self, user: UserId) -> impl Future<Output = QueryResult<i64>> + Send;
    /// Everyone `user` has a visible message with, latest first.
    fn partners(&mut self, user: UserId) -> impl Future<Output = QueryResult<Vec<UserId>>> + Send;
    /// A page of the conversation between `user` and `partner`.
    fn conversation(
        &mut self,
        user: UserId,
        partner: UserId,
        query: ConversationQuery,
    ) -> impl Future<Output = Result<ConversationPage>> + Send;
    /// The inbox of `user`, one summary per partner.
    fn conversations(
        &mut self,
        user: UserId,
        query: ConversationsQuery,
    ) -> impl Future<Output = QueryResult<Vec<ConversationSummary>>> + Send;
    /// Marks read everything from `partner` to `user`.
    fn mark_conversation_read(
        &mut self,
        user: UserId,
        partner: UserId,
    ) -> impl Future<Output = Result<Marked>> + Send;
    /// Hides a message from `user`; removes it once both sides did.
    fn delete(&mut self, user: UserId, id: MessageId) -> impl Future<Output = Result<()>> + Send;
    /// The message `editor` may edit: checked for existence, sender, `window` and the
    /// recipient's block, in that order.
    fn edit_target(
        &mut self,
        editor: UserId,
        id: MessageId,
        window: Option<chrono::Duration>,
    ) -> impl Future<Output = Result<Message>> + Send;
    /// Replaces the text of `editor`'s message `id` and stamps `edited_at`; the message as
    /// edited.
    fn edit(
        &mut self,
        editor: UserId,
        id: MessageId,
        content: &str,
    ) -> impl Future<Output = Result<Sent>> + Send;
    /// Removes `sender`'s message `id` for both sides, if `window` (from `sent_at`) allows;
    /// the message as it was last stored.
    fn unsend(
        &mut self,
        sender: UserId,
        id: MessageId,
        window: Option<chrono::Duration>,
    ) -> impl Future<Output = Result<Sent>> + Send;
    /// Records that `user` blocks `blocked`.
    fn block(&mut self, user: UserId, blocked: UserId) -> impl Future<Output = Result<()>> + Send;
    /// Sets (or clears) a flag on `user`'s side of the conversation with `partner`.
    fn set_flag(
        &mut self,
        user: UserId,
        partner: UserId,
        flag: ConversationFlag,
        on: bool,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Lifts the block, if any.
    fn unblock(&mut self, user: UserId, blocked: UserId)
        -> impl Future<Output = Result<()>> + Send;
    /// The messages `user` sees whose index rows hold `terms`, newest first, below
    /// `before`, at most `limit`.
    fn search(
        &mut self,
        user: UserId,
        terms: crate::search::Terms,
        before: Option<MessageId>,
        limit: Option<u32>,
    ) -> impl Future<Output = Result<Vec<Message>>> + Send;
    /// Deletes every row that mentions `user`; returns how many messages went.
    fn purge(&mut self, user: UserId) -> impl Future<Output = Result<u64>> + Send;
    /// Readies the connection for a pooler in transaction mode
    /// ([`InboxBuilder::transaction_pooling`](crate::InboxBuilder::transaction_pooling)):
    /// turns its prepared-statement cache off where the backend needs that; returns
    /// whether the async flavour must also keep every statement inside a transaction.
    fn transaction_pooling(&mut self) -> bool;
}
