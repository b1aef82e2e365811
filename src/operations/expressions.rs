//! The Diesel expressions the queries share: which rows a conversation, an unread list or
//! a mark-read reads, in which order, and what a send sets. Connection-independent,
//! compiled once.

use diesel::prelude::*;

use crate::schema::direct_message_blocks as blocks;
use crate::schema::direct_message_conversations as conv;
use crate::schema::direct_messages as dm;
use crate::{MessageId, UserId};

use super::binds::{key, Key};

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

/// A predicate on `direct_messages` that the shared code builds and a dialect's mark-read
/// hook runs: any expression of these bounds, so that the statement stays `Send` (a boxed
/// `dyn BoxableExpression` is not) and every statement is still checked by Diesel.
pub(crate) trait MarkFilter<DB: diesel::backend::Backend>:
    diesel::Expression<SqlType = diesel::sql_types::Bool>
    + diesel::AppearsOnTable<dm::table>
    + diesel::AppearsOnTable<WithRecipientMute>
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
        + diesel::AppearsOnTable<WithRecipientMute>
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

/// What [`with_recipient_mute`] reads from, for the bound on a filter of it.
pub(crate) type WithRecipientMute = diesel::helper_types::LeftJoinQuerySource<
    dm::table,
    conv::table,
    diesel::dsl::And<
        diesel::dsl::Eq<conv::owner_id, dm::recipient_id>,
        diesel::dsl::Eq<conv::partner_id, dm::sender_id>,
    >,
>;

/// Messages with their recipient's conversation row, for its mute.
#[cfg_attr(not(feature = "mysql"), allow(dead_code))] // read by MySQL's writes
#[diesel::dsl::auto_type(no_type_alias)]
pub(crate) fn with_recipient_mute() -> _ {
    let recipient_side = conv::owner_id
        .eq(dm::recipient_id)
        .and(conv::partner_id.eq(dm::sender_id));
    dm::table.left_join(conv::table.on(recipient_side))
}
