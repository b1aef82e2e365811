//! The operations of the inbox: the [`Operations`] trait every connection implements (for
//! both execution flavours), the values its methods exchange, and the expressions its
//! queries share.
//!
//! The bodies are in `queries.rs` (with `transactions.rs` and `migrate.rs`), written once
//! as `async fn`s and mounted (`#[path]`) by each dialect file, which each execution
//! flavour mounts in turn with its own connection type: the same text compiles against
//! every backend and flavour, and clippy, rustfmt and rust-analyzer read it as the plain
//! Rust it is. On the blocking flavour every future it awaits is ready when created, so an
//! operation completes in one poll (`execution::blocking::run`).
//!
//! Why this form. One `macro_rules!` body stamped per backend and flavour hid the code
//! from clippy (a lint planted in it went unreported), rustfmt and rust-analyzer.
//! Functions generic over the connection need where-clauses longer than the queries, and
//! still cannot express RETURNING on one backend and not another. Proc-macro "maybe
//! async" rewriting (two copies generated from one, with or without `.await`) would add
//! a build dependency and again hide the expanded code from the tools. What the chosen
//! form costs was measured: the blocking inbox built from the async text against the
//! plain synchronous text it replaced, side by side on one SQLite file (30 interleaved
//! rounds of 200 calls, medians): `send_message` 142.1 vs 140.5 µs, `unread_count` 22.5
//! vs 22.2, the inbox screen of 20 rows 62.7 vs 62.4, a page of 50 messages 80.3 vs 78.3,
//! `mark_conversation_read` with nothing to mark 8.6 vs 8.7: within 3%, the noise of the
//! machine. A transaction body is a boxed future (`Body`), one allocation per transaction.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use diesel::prelude::*;

use crate::schema::direct_message_blocks as blocks;
use crate::schema::direct_message_conversations as conv;
use crate::schema::direct_messages as dm;
use crate::{
    ConversationQuery, ConversationSummary, ConversationsQuery, Message, MessageId, Result, UserId,
};

/// How many ids one statement binds, far below every backend's limit (MySQL: 65,535
/// placeholders; SQLite: 32,766).
pub(crate) const MARK_CHUNK: usize = 1000;

/// How many messages a mark-read may expect at most and still read them whole under their
/// locks in one statement, on MySQL (see its `mark_read_returning`): an estimate from the
/// conversation's counter or the page, not a limit.
pub(crate) const FEW: usize = 100;

/// The key of a conversation: its two users, the smaller first.
pub(crate) fn conversation_key(a: UserId, b: UserId) -> (UserId, UserId) {
    (a.min(b), a.max(b))
}

/// Messages of the conversation `(lo, hi)`: one range of `direct_messages_conversation`.
#[diesel::dsl::auto_type]
pub(crate) fn in_conversation(lo: UserId, hi: UserId) -> _ {
    let lo: Key<diesel::sql_types::BigInt, UserId> = key(lo);
    let hi: Key<diesel::sql_types::BigInt, UserId> = key(hi);
    dm::user_lo.eq(lo).and(dm::user_hi.eq(hi))
}

/// Conversation rows with something unread. A literal, not a bound parameter: a planner
/// uses the partial index `direct_message_conversations_unread` only for a condition it
/// can see implies the index's own `unread_count > 0`. A type of its own rather than
/// Diesel's `sql` literal, which makes a statement uncacheable by type: the statement is
/// then found in the connection's cache by its type, not by building and hashing its text
/// on every call (a quarter of a small read on SQLite).
pub(crate) fn has_unread() -> HasUnread {
    HasUnread
}

/// See [`has_unread`].
#[derive(Debug, Clone, Copy, diesel::query_builder::QueryId)]
pub(crate) struct HasUnread;

impl diesel::Expression for HasUnread {
    type SqlType = diesel::sql_types::Bool;
}

impl diesel::AppearsOnTable<conv::table> for HasUnread {}

impl diesel::SelectableExpression<conv::table> for HasUnread {}

impl<GB> diesel::expression::ValidGrouping<GB> for HasUnread {
    type IsAggregate = diesel::expression::is_aggregate::Never;
}

impl<DB: diesel::backend::Backend> diesel::query_builder::QueryFragment<DB> for HasUnread {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, DB>,
    ) -> QueryResult<()> {
        out.push_sql("direct_message_conversations.unread_count > 0");
        Ok(())
    }
}

/// Within a conversation of `user`, the messages `user` has not deleted.
///
/// Written as "not deleted by `user` on either side" rather than "sent by `user` and not
/// deleted, or received and not deleted": the same rows in a conversation `user` takes
/// part in, but a planner reads it as the almost-always-true condition it is, where the
/// other form made PostgreSQL expect a tenth of the conversation and sort it all.
#[diesel::dsl::auto_type]
pub(crate) fn visible_in_own_conversation(user: UserId) -> _ {
    let kept_as_sender = dm::deleted_by_sender.eq(false).or(dm::sender_id.ne(user));
    let kept_as_recipient = dm::deleted_by_recipient
        .eq(false)
        .or(dm::recipient_id.ne(user));
    kept_as_sender.and(kept_as_recipient)
}

/// Newest first along `direct_messages_conversation`: with the pair fixed by the filter,
/// ordering by the whole index key tells every planner that the index yields the order.
#[diesel::dsl::auto_type]
pub(crate) fn newest_first() -> _ {
    (dm::user_lo.desc(), dm::user_hi.desc(), dm::id.desc())
}

/// Oldest first along `direct_messages_conversation`; see [`newest_first`].
#[diesel::dsl::auto_type]
pub(crate) fn oldest_first() -> _ {
    (dm::user_lo.asc(), dm::user_hi.asc(), dm::id.asc())
}

/// The block, if any, that a conversation row's owner put on its partner: the join
/// condition behind the summaries' and the badge's "0 while blocked".
#[diesel::dsl::auto_type]
pub(crate) fn partner_blocked() -> _ {
    blocks::blocker_id
        .eq(conv::owner_id)
        .and(blocks::blocked_id.eq(conv::partner_id))
}

/// Unread messages to `user` that `user` has not deleted, from senders `user` does not
/// block: the rows behind `unread_messages` and `unread_count`.
#[diesel::dsl::auto_type]
pub(crate) fn unread_of(user: UserId) -> _ {
    let sender_blocked = blocks::blocker_id
        .eq(dm::recipient_id)
        .and(blocks::blocked_id.eq(dm::sender_id));
    let user: Key<diesel::sql_types::BigInt, UserId> = key(user);
    let kept: Key<diesel::sql_types::Bool, bool> = key(false);
    dm::table
        .left_join(blocks::table.on(sender_blocked))
        .filter(dm::recipient_id.eq(user))
        .filter(dm::read_at.is_null())
        .filter(dm::deleted_by_recipient.eq(kept))
        .filter(blocks::blocker_id.nullable().is_null())
}

/// How a backend writes what a statement binds where the planner could read it: a
/// `LIMIT` count ([`Limited`]) and a value compared with an indexed column ([`Key`]).
pub(crate) trait BindSyntax: diesel::backend::Backend {
    /// What comes before a `LIMIT`'s parameter.
    const LIMIT_BEFORE: &'static str = " LIMIT ";
    /// What comes after it.
    const LIMIT_AFTER: &'static str = "";
    /// What comes after a [`Key`]'s parameter.
    const KEY_AFTER: &'static str = "";
}

/// `query`, then `LIMIT n` when there is an `n`, in the form [`BindSyntax`] gives.
///
/// SQLite (since 3.47) plans a `LIMIT ?` for the value bound to it, which marks the
/// prepared statement to be compiled again after every new binding: each page cost a
/// fresh parse and plan, several times the cost of the query itself. Bound as `? + 0`,
/// the count is an expression the planner does not read, and the cached statement is
/// reused as it is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limited<Q> {
    query: Q,
    limit: Option<i64>,
}

impl<Q> Limited<Q> {
    /// `query` with at most `limit` rows, or all of them.
    pub(crate) fn new(query: Q, limit: Option<u32>) -> Self {
        Self {
            query,
            limit: limit.map(i64::from),
        }
    }
}

impl<Q: diesel::query_builder::Query> diesel::query_builder::Query for Limited<Q> {
    type SqlType = Q::SqlType;
}

// With and without a limit the text differs: never one cache entry for both by type.
impl<Q> diesel::query_builder::QueryId for Limited<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q, DB> diesel::query_builder::QueryFragment<DB> for Limited<Q>
where
    DB: BindSyntax + diesel::sql_types::HasSqlType<diesel::sql_types::BigInt>,
    Q: diesel::query_builder::QueryFragment<DB>,
    i64: diesel::serialize::ToSql<diesel::sql_types::BigInt, DB>,
{
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, DB>,
    ) -> QueryResult<()> {
        self.query.walk_ast(out.reborrow())?;
        if let Some(limit) = &self.limit {
            out.push_sql(DB::LIMIT_BEFORE);
            out.push_bind_param::<diesel::sql_types::BigInt, _>(limit)?;
            out.push_sql(DB::LIMIT_AFTER);
        }
        Ok(())
    }
}

impl<Q, C> diesel::RunQueryDsl<C> for Limited<Q> {}

/// A value a statement compares with an indexed column, bound in the form [`BindSyntax`]
/// gives: on SQLite `? + 0`.
///
/// Once a host runs `ANALYZE` (or a `PRAGMA optimize` that runs it), SQLite built with
/// STAT4, as the bundled library is, reads the value bound against an indexed column while
/// it plans, and marks the prepared statement to be compiled again after every new
/// binding: every call paid a parse and a plan, half of the inbox screen's time. An
/// expression around the parameter is not read, so the statement Diesel keeps prepared
/// is reused as it is; the plan is the one the table's statistics give for any value.
/// `tests/query_plans.rs` counts the recompilations.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Key<ST, T> {
    value: T,
    sql_type: PhantomData<ST>,
}

/// `value` as a [`Key`] of SQL type `ST`, inferred from the column it is compared with.
pub(crate) fn key<ST, T>(value: T) -> Key<ST, T> {
    Key {
        value,
        sql_type: PhantomData,
    }
}

impl<ST, T> diesel::Expression for Key<ST, T>
where
    ST: diesel::sql_types::SqlType + diesel::expression::TypedExpressionType,
{
    type SqlType = ST;
}

impl<ST, T, QS> diesel::AppearsOnTable<QS> for Key<ST, T> where Self: diesel::Expression {}

impl<ST, T, QS> diesel::SelectableExpression<QS> for Key<ST, T> where Self: diesel::Expression {}

impl<ST, T, GB> diesel::expression::ValidGrouping<GB> for Key<ST, T> {
    type IsAggregate = diesel::expression::is_aggregate::Never;
}

// The text does not depend on the value: one cache entry per statement shape, as a plain
// bound value has.
impl<ST: 'static, T> diesel::query_builder::QueryId for Key<ST, T> {
    type QueryId = Key<ST, ()>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<ST, T, DB> diesel::query_builder::QueryFragment<DB> for Key<ST, T>
where
    DB: BindSyntax + diesel::sql_types::HasSqlType<ST>,
    T: diesel::serialize::ToSql<ST, DB>,
{
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, DB>,
    ) -> QueryResult<()> {
        out.push_bind_param::<ST, T>(&self.value)?;
        out.push_sql(DB::KEY_AFTER);
        Ok(())
    }
}

/// A statement whose text is the same on every call, kept in the connection's
/// prepared-statement cache (keyed by that text) where Diesel would prepare it afresh:
/// Diesel never caches an UPDATE, an INSERT of a struct, or a statement with an SQL
/// literal, so each call paid a parse and a plan (on SQLite a new compilation, on
/// PostgreSQL a server-side plan). Only for statements whose text does not depend on the
/// values bound: an `IN` list's length, on SQLite and MySQL, would make every length a
/// cache entry of its own. (MySQL's `Fresh` still prepares each statement afresh.)
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))] // MySQL's `Fresh`
pub(crate) struct Cached<Q>(pub(crate) Q);

impl<Q: diesel::query_builder::Query> diesel::query_builder::Query for Cached<Q> {
    type SqlType = Q::SqlType;
}

// Keyed by text, never by type: see `Limited`.
impl<Q> diesel::query_builder::QueryId for Cached<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q, DB> diesel::query_builder::QueryFragment<DB> for Cached<Q>
where
    DB: diesel::backend::Backend,
    Q: diesel::query_builder::QueryFragment<DB>,
{
    fn walk_ast<'b>(&'b self, out: diesel::query_builder::AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.0.walk_ast(out)
    }

    fn is_safe_to_cache_prepared(&self, _: &DB) -> QueryResult<bool> {
        Ok(true)
    }
}

impl<Q, C> diesel::RunQueryDsl<C> for Cached<Q> {}

/// `user` may still change `stored` (edit or unsend it): its sender, and within `window` of
/// `sent_at` by the crate's clock (exactly at the limit is still open; a window of zero or
/// less closes everything; no window never closes).
pub(crate) fn may_change(
    stored: &crate::message::StoredMessage,
    user: UserId,
    id: MessageId,
    window: Option<chrono::Duration>,
) -> Result<()> {
    authorize(stored, user, id)?;
    if stored.message.sender_id != user {
        return Err(crate::Error::NotAllowed { user, message: id });
    }
    if let Some(window) = window {
        let age = crate::timestamp::now() - stored.message.sent_at;
        if window <= chrono::Duration::zero() || age > window {
            return Err(crate::Error::EditWindowClosed { message: id });
        }
    }
    Ok(())
}

/// `user` may see `stored`: it took part in it and has not deleted it.
pub(crate) fn authorize(
    stored: &crate::message::StoredMessage,
    user: UserId,
    id: MessageId,
) -> Result<()> {
    let m = &stored.message;
    if user != m.sender_id && user != m.recipient_id {
        return Err(crate::Error::NotAllowed { user, message: id });
    }
    if !stored.visible_to(user) {
        return Err(crate::Error::MessageNotFound(id));
    }
    Ok(())
}

/// A predicate on `direct_messages` that the shared code builds and a dialect's mark-read
/// hook runs: any expression of these bounds, so that the statement stays `Send` (a boxed
/// `dyn BoxableExpression` is not) and every statement is still checked by Diesel.
pub(crate) trait MarkFilter<DB: diesel::backend::Backend>:
    diesel::Expression<SqlType = diesel::sql_types::Bool>
    + diesel::AppearsOnTable<dm::table>
    + diesel::expression::NonAggregate
    + diesel::query_builder::QueryFragment<DB>
    + diesel::query_builder::QueryId
    + Send
    + 'static
{
}

impl<T, DB: diesel::backend::Backend> MarkFilter<DB> for T where
    T: diesel::Expression<SqlType = diesel::sql_types::Bool>
        + diesel::AppearsOnTable<dm::table>
        + diesel::expression::NonAggregate
        + diesel::query_builder::QueryFragment<DB>
        + diesel::query_builder::QueryId
        + Send
        + 'static
{
}

/// Unread, and not deleted by its recipient: what every mark-read also requires.
#[diesel::dsl::auto_type]
pub(crate) fn markable() -> _ {
    let kept: Key<diesel::sql_types::Bool, bool> = key(false);
    dm::read_at.is_null().and(dm::deleted_by_recipient.eq(kept))
}

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

/// The body of a transaction, as the transaction runs it (again on a retry): a future
/// that borrows the connection for `'c` and what the caller captured for `'a`, which
/// outlives it. (The `'a: 'c` bound, implied by the `PhantomData`, is what lets a closure
/// `for<'c> FnMut(&'c mut Conn) -> Body<'a, 'c, T>` borrow its caller's data.)
pub(crate) struct Body<'a, 'c, T, E = crate::Error> {
    future: Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>>,
    scope: PhantomData<&'c &'a ()>,
}

impl<'a, 'c, T, E> Body<'a, 'c, T, E> {
    /// The body that `future` runs.
    pub(crate) fn new(future: impl Future<Output = Result<T, E>> + Send + 'c) -> Self {
        Self {
            future: Box::pin(future),
            scope: PhantomData,
        }
    }
}

impl<T, E> Future for Body<'_, '_, T, E> {
    type Output = Result<T, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T, E>> {
        self.future.as_mut().poll(cx)
    }
}

/// What a send reads with the lock on its conversation's `(lo, hi)` row.
#[derive(Debug, Clone, Copy, diesel::Queryable)]
pub(crate) struct LockedConversation {
    /// The conversation's latest `sent_at`, if it had a message.
    pub(crate) last_sent_at: Option<crate::schema::UtcTimestamp>,
    /// The recipient blocks the sender.
    pub(crate) blocked: bool,
}

/// The `(lo, hi)` row of a conversation as a send reads it (a dialect adds the row lock):
/// its latest `sent_at`, and whether `blocker` blocks `blocked`.
#[diesel::dsl::auto_type]
pub(crate) fn conversation_to_lock(lo: UserId, hi: UserId, blocker: UserId, blocked: UserId) -> _ {
    let blocks_sender: diesel::dsl::exists<diesel::dsl::Find<blocks::table, (UserId, UserId)>> =
        diesel::dsl::exists(blocks::table.find((blocker, blocked)));
    conv::table
        .find((lo, hi))
        .select((conv::last_sent_at, blocks_sender))
}

/// Message `id`, if `sender` sent it and still sees it: what an edit or an unsend
/// changes (a concurrent unsend or delete leaves nothing to change).
#[diesel::dsl::auto_type]
pub(crate) fn still_sent_by(id: MessageId, sender: UserId) -> _ {
    dm::table
        .find(id)
        .filter(dm::sender_id.eq(sender))
        .filter(dm::deleted_by_sender.eq(false))
}

/// Both sides' conversation rows of `sender` and `recipient`.
#[diesel::dsl::auto_type]
pub(crate) fn both_sides(sender: UserId, recipient: UserId) -> _ {
    let both: [UserId; 2] = [sender, recipient];
    conv::table
        .filter(conv::owner_id.eq_any(both))
        .filter(conv::partner_id.eq_any(both))
}

/// What a send sets on [`both_sides`]: the latest message, its time, one more unread for
/// the recipient, and the conversation back in the inbox of a side that archived it.
/// (Each dialect runs the update: see `Cached`.)
#[diesel::dsl::auto_type]
pub(crate) fn latest_message(
    recipient: UserId,
    id: MessageId,
    sent_at: crate::schema::UtcTimestamp,
) -> _ {
    let recipient_side: diesel::dsl::case_when<
        diesel::dsl::Eq<conv::owner_id, UserId>,
        i64,
        diesel::sql_types::BigInt,
    > = diesel::dsl::case_when::<_, _, diesel::sql_types::BigInt>(
        conv::owner_id.eq(recipient),
        1_i64,
    );
    let unread: diesel::dsl::Otherwise<
        diesel::dsl::case_when<
            diesel::dsl::Eq<conv::owner_id, UserId>,
            i64,
            diesel::sql_types::BigInt,
        >,
        i64,
    > = recipient_side.otherwise(0_i64);
    (
        conv::last_message_id.eq(id),
        conv::last_sent_at.eq(sent_at),
        conv::unread_count.eq(conv::unread_count + unread),
        conv::archived.eq(false),
    )
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

/// A value bound to a [`Raw`] statement.
#[derive(Debug, Clone)]
pub(crate) enum Bind {
    /// A `BIGINT`.
    Int(i64),
    /// A text.
    Text(String),
}

/// A statement of fixed text with `?` for each value, in the order of `binds`: what
/// `diesel::sql_query` does, but kept prepared (see [`Cached`]). A `sql_query` tells
/// Diesel never to cache it, and on the path of a statement that is only executed Diesel
/// asks the statement itself, whatever a wrapper says. Each `?` becomes the backend's
/// own placeholder (`$1`, … on PostgreSQL). A statement whose binds and `?`s differ in
/// number fails with `QueryBuilderError` before it reaches the database.
#[derive(Debug, Clone)]
pub(crate) struct Raw {
    sql: &'static str,
    binds: Vec<Bind>,
}

impl Raw {
    /// `sql`, with `binds` for its `?`s.
    pub(crate) fn new(sql: &'static str, binds: Vec<Bind>) -> Self {
        Self { sql, binds }
    }
}

impl Raw {
    /// The error of a statement whose `?`s and binds differ in number: never sent.
    fn mismatch(&self) -> diesel::result::Error {
        diesel::result::Error::QueryBuilderError(
            format!(
                "{} values bound to {} placeholders: {}",
                self.binds.len(),
                self.sql.matches('?').count(),
                self.sql
            )
            .into(),
        )
    }
}

impl diesel::query_builder::Query for Raw {
    type SqlType = diesel::sql_types::Untyped;
}

// Keyed by text, never by type: see `Limited`.
impl diesel::query_builder::QueryId for Raw {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<DB> diesel::query_builder::QueryFragment<DB> for Raw
where
    DB: diesel::backend::Backend
        + diesel::sql_types::HasSqlType<diesel::sql_types::BigInt>
        + diesel::sql_types::HasSqlType<diesel::sql_types::Text>,
    i64: diesel::serialize::ToSql<diesel::sql_types::BigInt, DB>,
    String: diesel::serialize::ToSql<diesel::sql_types::Text, DB>,
{
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, DB>,
    ) -> QueryResult<()> {
        let mut parts = self.sql.split('?');
        out.push_sql(parts.next().unwrap_or_default());
        let mut binds = self.binds.iter();
        for part in parts {
            match binds.next() {
                Some(Bind::Int(value)) => {
                    out.push_bind_param::<diesel::sql_types::BigInt, _>(value)?
                }
                Some(Bind::Text(value)) => {
                    out.push_bind_param::<diesel::sql_types::Text, _>(value)?
                }
                None => return Err(self.mismatch()),
            }
            out.push_sql(part);
        }
        if binds.next().is_some() {
            return Err(self.mismatch());
        }
        Ok(())
    }
}

impl<C> diesel::RunQueryDsl<C> for Raw {}

/// The statements of one backend's search index, with `?` for each value (see [`Raw`]).
/// A side's row is found by its key, which the dialect binds (`search_key`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SearchSql {
    /// Both sides' rows of a new message: each side's key, then its terms.
    pub(crate) insert: &'static str,
    /// A side's row, given new terms, then its key.
    pub(crate) update: &'static str,
    /// A side's row, by its key.
    pub(crate) delete: &'static str,
    /// The ids of the rows matching the bound query, newest first, below the bound key,
    /// at most the bound count.
    pub(crate) select: &'static str,
    /// The bound owner's latest rows (id and terms) below the bound key, at most the bound
    /// count; where the index can read them in order (not SQLite's FTS5).
    pub(crate) recent: Option<&'static str>,
}

/// How many of a user's latest index rows a search for a page reads before it asks the
/// full-text index: a common word finds its page among them, where the full-text index
/// would hand over every match of the user's (thousands) to be sorted.
pub(crate) const RECENT_WINDOW: i64 = 200;

/// One index row as a search's first look reads it.
#[derive(Debug, diesel::QueryableByName)]
pub(crate) struct SearchRow {
    /// The message.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub(crate) id: MessageId,
    /// Its terms, separated by spaces.
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub(crate) terms: String,
}

/// One message id found by a search statement.
#[derive(Debug, diesel::QueryableByName)]
pub(crate) struct SearchHit {
    /// The message.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub(crate) id: MessageId,
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

/// The operations of the inbox on one backend's connection: what the facade calls, on
/// either flavour. Implemented by `queries.rs` as mounted for each dialect and flavour
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
}

#[cfg(all(test, feature = "sqlite"))]
mod raw_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use diesel::Connection;

    #[derive(Debug, diesel::QueryableByName, PartialEq)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
        #[diesel(sql_type = diesel::sql_types::Text)]
        s: String,
    }

    fn load(raw: Raw) -> QueryResult<Vec<Row>> {
        let mut conn = diesel::SqliteConnection::establish(":memory:").unwrap();
        diesel::RunQueryDsl::load(raw, &mut conn)
    }

    #[test]
    fn binds_fill_the_placeholders_in_order() {
        let raw = Raw::new(
            "SELECT ? + 1 AS n, ? AS s",
            vec![Bind::Int(41), Bind::Text("x".into())],
        );
        assert_eq!(
            load(raw).unwrap(),
            [Row {
                n: 42,
                s: "x".into()
            }]
        );
    }

    #[test]
    fn too_few_or_too_many_binds_fail_before_the_database() {
        for binds in [
            vec![Bind::Int(1)],
            vec![Bind::Int(1), Bind::Int(2), Bind::Int(3)],
        ] {
            match load(Raw::new("SELECT ? AS n, ? AS s", binds)) {
                Err(diesel::result::Error::QueryBuilderError(e)) => {
                    assert!(e.to_string().contains("placeholders"), "{e}")
                }
                other => panic!("expected a query builder error, got {other:?}"),
            }
        }
    }
}
