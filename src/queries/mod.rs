//! The one text of every query and transaction body of the inbox, mounted (`#[path]`)
//! once per connection type: each dialect file (`src/dialect`) mounts this folder next to
//! its `type Conn` and its [`Dialect`] implementation (`Hooks`), and each execution flavour
//! (`src/execution`) mounts each dialect file with its own connection type. The same text
//! thus becomes `impl Operations for Conn` on every backend's connection, blocking and
//! async, and clippy, rustfmt and rust-analyzer read it as the plain Rust it is; Diesel
//! checks every query against the concrete backend. Every statement goes through
//! `H::statement(…)`, the dialect's hook for how a statement is prepared (MySQL prepares
//! each one afresh), and is awaited: `RunQueryDsl` is the flavour's, whose futures on the
//! blocking flavour are ready at once.
//!
//! One file per area; each operation is one function in its area's file, which the
//! `Operations` impl below calls.
//!
//! How the two helper tables stay exact under concurrency: every change to a
//! conversation row is a delta (`unread_count ± n`) or is made under the conversation's
//! lock, and every delta is decided by a guarded UPDATE of the message row itself, which
//! at most one transaction can win.

use diesel::QueryResult;

use super::execution;
use super::{Backend, Conn};
use crate::operations::{
    ConversationFlag, ConversationPage, Marked, MessageRead, Operations, Sent,
};
use crate::{
    ConversationQuery, ConversationSummary, ConversationsQuery, Message, MessageId, Result, UserId,
};

mod change;
mod conversation;
mod dialect;
mod flags;
mod index;
mod migrate;
mod purge;
mod read;
mod search;
mod send;
pub(super) mod transactions;

pub(super) use dialect::{Dialect, Writes};
pub(crate) use migrate::apply as apply_migrations;

/// The dialect this text is mounted for.
type H = super::Hooks;

/// How its writes return their rows.
type W = <H as Dialect>::Writes;

impl Operations for Conn {
    async fn migrate(&mut self) -> Result<()> {
        H::migrate(self).await
    }

    async fn is_blocked(&mut self, user: UserId, other: UserId) -> QueryResult<bool> {
        flags::is_blocked(self, user, other).await
    }

    async fn send(&mut self, sender: UserId, recipient: UserId, content: &str) -> Result<Sent> {
        send::send(self, sender, recipient, content).await
    }

    async fn read(&mut self, id: MessageId, reader: Option<UserId>) -> Result<MessageRead> {
        read::read(self, id, reader).await
    }

    async fn unread_messages(&mut self, user: UserId) -> QueryResult<Vec<Message>> {
        read::unread_messages(self, user).await
    }

    async fn unread_count(&mut self, user: UserId) -> QueryResult<i64> {
        read::unread_count(self, user).await
    }

    async fn partners(&mut self, user: UserId) -> QueryResult<Vec<UserId>> {
        conversation::partners(self, user).await
    }

    async fn conversation(
        &mut self,
        user: UserId,
        partner: UserId,
        query: ConversationQuery,
    ) -> Result<ConversationPage> {
        conversation::conversation(self, user, partner, query).await
    }

    async fn conversations(
        &mut self,
        user: UserId,
        query: ConversationsQuery,
    ) -> QueryResult<Vec<ConversationSummary>> {
        conversation::conversations(self, user, query).await
    }

    async fn mark_conversation_read(&mut self, user: UserId, partner: UserId) -> Result<Marked> {
        read::mark_conversation_read(self, user, partner).await
    }

    async fn delete(&mut self, user: UserId, id: MessageId) -> Result<()> {
        change::delete(self, user, id).await
    }

    async fn edit_target(
        &mut self,
        editor: UserId,
        id: MessageId,
        window: Option<chrono::Duration>,
    ) -> Result<Message> {
        change::edit_target(self, editor, id, window).await
    }

    async fn edit(&mut self, editor: UserId, id: MessageId, content: &str) -> Result<Sent> {
        change::edit(self, editor, id, content).await
    }

    async fn unsend(
        &mut self,
        sender: UserId,
        id: MessageId,
        window: Option<chrono::Duration>,
    ) -> Result<Sent> {
        change::unsend(self, sender, id, window).await
    }

    async fn block(&mut self, user: UserId, blocked: UserId) -> Result<()> {
        flags::block(self, user, blocked).await
    }

    async fn unblock(&mut self, user: UserId, blocked: UserId) -> Result<()> {
        flags::unblock(self, user, blocked).await
    }

    async fn set_flag(
        &mut self,
        user: UserId,
        partner: UserId,
        flag: ConversationFlag,
        on: bool,
    ) -> Result<()> {
        flags::set_flag(self, user, partner, flag, on).await
    }

    async fn search(
        &mut self,
        user: UserId,
        terms: crate::search::Terms,
        before: Option<MessageId>,
        limit: Option<u32>,
    ) -> Result<Vec<Message>> {
        search::search(self, user, terms, before, limit).await
    }

    async fn purge(&mut self, user: UserId) -> Result<u64> {
        purge::purge(self, user).await
    }

    fn transaction_pooling(&mut self) -> bool {
        H::transaction_pooling(self)
    }
}
