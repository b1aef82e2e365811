//! The Diesel queries of the inbox, written once.
//!
//! Expressions that do not depend on the backend are plain functions. The operations are
//! stamped into each backend's `Store` impl by [`shared_queries!`]: Diesel checks a query
//! against a concrete backend, and a macro keeps the text in one place without the long
//! generic where-clauses a backend-generic function would need.
//!
//! How the two helper tables stay exact under concurrency: every change to a
//! conversation row is a delta (`unread_count ± n`) or a guarded maximum
//! (`last_message_id = m WHERE last_message_id < m`), so concurrent writers commute, and
//! every delta is decided by a guarded UPDATE of the message row itself, which at most one
//! transaction can win.

use diesel::prelude::*;

use crate::schema::direct_message_blocks as blocks;
use crate::schema::direct_messages as dm;
use crate::UserId;

/// How many ids one statement binds, far below every backend's limit (MySQL: 65,535
/// placeholders; SQLite: 32,766).
pub(crate) const MARK_CHUNK: usize = 1000;

/// The key of a conversation: its two users, the smaller first.
pub(crate) fn conversation_key(a: UserId, b: UserId) -> (UserId, UserId) {
    (a.min(b), a.max(b))
}

/// Messages of the conversation `(lo, hi)`: one range of `direct_messages_conversation`.
#[diesel::dsl::auto_type]
pub(crate) fn in_conversation(lo: UserId, hi: UserId) -> _ {
    dm::user_lo.eq(lo).and(dm::user_hi.eq(hi))
}

/// Conversation rows with something unread. A literal, not a bound parameter: a planner
/// uses the partial index `direct_message_conversations_unread` only for a condition it
/// can see implies the index's own `unread_count > 0`.
pub(crate) fn has_unread() -> diesel::expression::SqlLiteral<diesel::sql_types::Bool> {
    diesel::dsl::sql("direct_message_conversations.unread_count > 0")
}

/// Messages `user` took part in and has not deleted.
#[diesel::dsl::auto_type]
pub(crate) fn visible_to(user: UserId) -> _ {
    let as_sender = dm::sender_id.eq(user).and(dm::deleted_by_sender.eq(false));
    let as_recipient = dm::recipient_id
        .eq(user)
        .and(dm::deleted_by_recipient.eq(false));
    as_sender.or(as_recipient)
}

/// Unread messages to `user` that `user` has not deleted, from senders `user` does not
/// block: the rows behind `unread_messages` and `unread_count`.
#[diesel::dsl::auto_type]
pub(crate) fn unread_of(user: UserId) -> _ {
    let sender_blocked = blocks::blocker_id
        .eq(dm::recipient_id)
        .and(blocks::blocked_id.eq(dm::sender_id));
    dm::table
        .left_join(blocks::table.on(sender_blocked))
        .filter(dm::recipient_id.eq(user))
        .filter(dm::read_at.is_null())
        .filter(dm::deleted_by_recipient.eq(false))
        .filter(blocks::blocker_id.nullable().is_null())
}

/// The operations shared by every backend, stamped into `impl Store for $conn`.
///
/// Every statement goes through `statement(…)`, the backend module's hook for how a
/// statement is prepared (MySQL prepares each one afresh; see `backend/mysql.rs`).
macro_rules! shared_queries {
    ($conn:ty) => {
        fn find_stored(
            &mut self,
            id: $crate::MessageId,
        ) -> diesel::QueryResult<Option<$crate::message::StoredMessage>> {
            statement(
                dm::table
                    .find(id)
                    .select(StoredMessage::as_select())
                    .limit(1),
            )
            .get_result(self)
            .optional()
        }

        fn is_blocked(&mut self, user: UserId, other: UserId) -> QueryResult<bool> {
            statement(diesel::select(diesel::dsl::exists(
                blocks::table.find((user, other)),
            )))
            .get_result(self)
        }

        fn send(&mut self, sender: UserId, recipient: UserId, content: &str) -> Result<Message> {
            let (lo, hi) = conversation_key(sender, recipient);
            self.write_transaction(|conn| {
                // Every send of a conversation locks its `(lo, hi)` row first and holds it
                // to commit, so within a conversation ids, clock and commit order agree.
                if !conn.lock_conversation(lo, hi)? {
                    let side = |owner: UserId, partner: UserId| {
                        (
                            conv::owner_id.eq(owner),
                            conv::partner_id.eq(partner),
                            conv::last_message_id.eq(None::<MessageId>),
                            conv::unread_count.eq(0_i64),
                        )
                    };
                    statement(
                        diesel::insert_into(conv::table)
                            .values(vec![side(lo, hi), side(hi, lo)])
                            .on_conflict_do_nothing(),
                    )
                    .execute(conn)?;
                    conn.lock_conversation(lo, hi)?;
                }
                if conn.is_blocked(recipient, sender)? {
                    return Err(Error::Blocked { sender, recipient });
                }
                // The clock is read under the lock, and never runs behind the latest
                // message of the conversation (another instance's clock may be ahead).
                let latest: Option<UtcTimestamp> = statement(
                    dm::table
                        .filter(in_conversation(lo, hi))
                        .order(dm::id.desc())
                        .select(dm::sent_at)
                        .limit(1),
                )
                .get_result(conn)
                .optional()?;
                let now = $crate::timestamp::now();
                let sent_at = latest.map_or(now, |latest| latest.0.max(now));
                let message = conn.insert_message(&NewMessage {
                    sender_id: sender,
                    recipient_id: recipient,
                    content,
                    sent_at: UtcTimestamp(sent_at),
                })?;
                let id = message.id;
                statement(
                    diesel::update(conv::table.find((sender, recipient)))
                        .set(conv::last_message_id.eq(id)),
                )
                .execute(conn)?;
                statement(diesel::update(conv::table.find((recipient, sender))).set((
                    conv::last_message_id.eq(id),
                    conv::unread_count.eq(conv::unread_count + 1),
                )))
                .execute(conn)?;
                Ok(message)
            })
        }

        fn read(&mut self, id: MessageId, reader: Option<UserId>) -> Result<Read> {
            // A plain read decides; only a message to mark takes a write transaction.
            let stored = self.find_stored(id)?.ok_or(Error::MessageNotFound(id))?;
            let as_sender = if let Some(reader) = reader {
                authorize(&stored, reader, id)?;
                reader == stored.message.sender_id
            } else {
                false
            };
            if as_sender || !stored.message.is_unread() || stored.deleted_by_recipient {
                return Ok(Read {
                    message: stored.message,
                    newly_read: false,
                });
            }
            self.write_transaction(|conn| {
                if let Some(message) = conn.mark_and_count(ReadScope::Message(id))?.pop() {
                    return Ok(Read {
                        message,
                        newly_read: true,
                    });
                }
                // Another reader marked it (or its recipient deleted it) meanwhile.
                let current = conn.find_current(id)?.ok_or(Error::MessageNotFound(id))?;
                Ok(Read {
                    message: current.message,
                    newly_read: false,
                })
            })
        }

        fn mark_and_count(&mut self, scope: ReadScope<'_>) -> QueryResult<Vec<Message>> {
            let unread = dm::read_at
                .is_null()
                .and(dm::deleted_by_recipient.eq(false));
            let filter: ReadFilter<<$conn as Connection>::Backend> = match scope {
                ReadScope::Message(id) => Box::new(dm::id.eq(id).and(unread)),
                ReadScope::Messages { reader, ids } => Box::new(
                    dm::recipient_id
                        .eq(reader)
                        .and(dm::id.eq_any(ids.to_vec()))
                        .and(unread),
                ),
                ReadScope::From { reader, partner } => Box::new(
                    dm::recipient_id
                        .eq(reader)
                        .and(dm::sender_id.eq(partner))
                        .and(unread),
                ),
            };
            let mut marked = self.mark_read(filter, $crate::timestamp::now())?;
            marked.sort_unstable_by_key(|m| m.id);
            let mut per_side = std::collections::BTreeMap::<(UserId, UserId), i64>::new();
            for m in &marked {
                *per_side.entry((m.recipient_id, m.sender_id)).or_default() += 1;
            }
            for (side, n) in per_side {
                statement(
                    diesel::update(conv::table.find(side))
                        .set(conv::unread_count.eq(conv::unread_count - n)),
                )
                .execute(self)?;
            }
            Ok(marked)
        }

        fn unread_messages(&mut self, user: UserId) -> QueryResult<Vec<Message>> {
            statement(
                unread_of(user)
                    .order(dm::id.asc())
                    .select(Message::as_select()),
            )
            .load(self)
        }

        // The conversation rows keep each partner's unread count exact: add up those of
        // the partners with something unread that `user` does not block, which costs
        // one index entry per such partner however many messages they sent.
        fn unread_count(&mut self, user: UserId) -> QueryResult<i64> {
            let partner_blocked = blocks::blocker_id
                .eq(conv::owner_id)
                .and(blocks::blocked_id.eq(conv::partner_id));
            let counts: Vec<i64> = statement(
                conv::table
                    .left_join(blocks::table.on(partner_blocked))
                    .filter(conv::owner_id.eq(user))
                    .filter(has_unread())
                    .filter(blocks::blocker_id.nullable().is_null())
                    .select(conv::unread_count),
            )
            .load(self)?;
            Ok(counts.into_iter().sum())
        }

        fn partners(&mut self, user: UserId) -> QueryResult<Vec<UserId>> {
            statement(
                conv::table
                    .filter(conv::owner_id.eq(user))
                    .filter(conv::last_message_id.is_not_null())
                    .order(conv::last_message_id.desc())
                    .select(conv::partner_id),
            )
            .load(self)
        }

        fn conversation(
            &mut self,
            user: UserId,
            partner: UserId,
            query: &ConversationQuery,
        ) -> Result<Page> {
            let (lo, hi) = conversation_key(user, partner);
            let mut select = dm::table
                .filter(in_conversation(lo, hi))
                .filter(visible_to(user))
                .select(Message::as_select())
                .into_boxed();
            if let Some(before) = query.before {
                select = select.filter(dm::id.lt(before));
            }
            if let Some(after) = query.after {
                select = select.filter(dm::id.gt(after));
            }
            select = if query.reversed {
                select.order(dm::id.desc())
            } else {
                select.order(dm::id.asc())
            };
            if let Some(limit) = query.limit {
                select = select.limit(i64::from(limit));
            }
            let mut messages: Vec<Message> = statement(select).load(self)?;
            let mut unread: Vec<MessageId> = if query.mark_read {
                messages
                    .iter()
                    .filter(|m| m.recipient_id == user && m.is_unread())
                    .map(|m| m.id)
                    .collect()
            } else {
                Vec::new()
            };
            if unread.is_empty() {
                return Ok(Page {
                    messages,
                    marked: Vec::new(),
                });
            }
            unread.sort_unstable();
            let mut marked = self.write_transaction(|conn| {
                let mut marked = Vec::with_capacity(unread.len());
                for ids in unread.chunks(MARK_CHUNK) {
                    marked.extend(conn.mark_and_count(ReadScope::Messages { reader: user, ids })?);
                }
                Ok(marked)
            })?;
            marked.sort_unstable_by_key(|m| m.id);
            // What another reader marked between the page and the mark: its stored state.
            let raced: Vec<MessageId> = unread
                .iter()
                .copied()
                .filter(|id| marked.binary_search_by_key(id, |m| m.id).is_err())
                .collect();
            let mut read_at = Vec::with_capacity(raced.len());
            for ids in raced.chunks(MARK_CHUNK) {
                read_at.extend(
                    statement(
                        dm::table
                            .filter(dm::id.eq_any(ids.to_vec()))
                            .select((dm::id, dm::read_at)),
                    )
                    .load::<(MessageId, Option<UtcTimestamp>)>(self)?,
                );
            }
            read_at.sort_unstable_by_key(|(id, _)| *id);
            for m in &mut messages {
                if let Ok(i) = marked.binary_search_by_key(&m.id, |x| x.id) {
                    m.read_at = marked[i].read_at;
                } else if let Ok(i) = read_at.binary_search_by_key(&m.id, |(id, _)| *id) {
                    m.read_at = read_at[i].1.map(|t| t.0);
                }
            }
            Ok(Page { messages, marked })
        }

        fn conversations(
            &mut self,
            user: UserId,
            query: &ConversationsQuery,
        ) -> QueryResult<Vec<ConversationSummary>> {
            let partner_blocked = blocks::blocker_id
                .eq(conv::owner_id)
                .and(blocks::blocked_id.eq(conv::partner_id));
            let mut select = conv::table
                .inner_join(dm::table.on(conv::last_message_id.eq(dm::id.nullable())))
                .left_join(blocks::table.on(partner_blocked))
                .filter(conv::owner_id.eq(user))
                .order(conv::last_message_id.desc())
                .select((
                    conv::partner_id,
                    Message::as_select(),
                    conv::unread_count,
                    blocks::blocker_id.nullable().is_not_null(),
                ))
                .into_boxed();
            if let Some(before) = query.before {
                select = select.filter(conv::last_message_id.lt(before));
            }
            if let Some(limit) = query.limit {
                select = select.limit(i64::from(limit));
            }
            let rows: Vec<(UserId, Message, i64, bool)> = statement(select).load(self)?;
            Ok(rows
                .into_iter()
                .map(
                    |(partner, last_message, unread, blocked)| ConversationSummary {
                        partner,
                        last_message,
                        unread_count: if blocked { 0 } else { unread },
                    },
                )
                .collect())
        }

        fn mark_conversation_read(
            &mut self,
            user: UserId,
            partner: UserId,
        ) -> Result<Vec<Message>> {
            // The counter is exact: when it says nothing is unread, take no write lock.
            let unread: Option<i64> = statement(
                conv::table
                    .find((user, partner))
                    .select(conv::unread_count)
                    .limit(1),
            )
            .get_result(self)
            .optional()?;
            if unread.unwrap_or(0) == 0 {
                return Ok(Vec::new());
            }
            self.write_transaction(|conn| {
                Ok(conn.mark_and_count(ReadScope::From {
                    reader: user,
                    partner,
                })?)
            })
        }

        fn delete(&mut self, user: UserId, id: MessageId) -> Result<()> {
            self.write_transaction(|conn| {
                let stored = conn.find_stored(id)?.ok_or(Error::MessageNotFound(id))?;
                authorize(&stored, user, id)?;
                let as_sender = stored.message.sender_id == user;
                let partner = stored.message.partner_of(user);
                let hidden = if as_sender {
                    statement(
                        diesel::update(dm::table.find(id).filter(dm::deleted_by_sender.eq(false)))
                            .set(dm::deleted_by_sender.eq(true)),
                    )
                    .execute(conn)?
                } else {
                    statement(
                        diesel::update(
                            dm::table
                                .find(id)
                                .filter(dm::deleted_by_recipient.eq(false)),
                        )
                        .set(dm::deleted_by_recipient.eq(true)),
                    )
                    .execute(conn)?
                };
                if hidden == 0 {
                    return Err(Error::MessageNotFound(id)); // a concurrent delete won
                }
                let now = conn.find_current(id)?.ok_or(Error::MessageNotFound(id))?;
                let unread_lost = i64::from(!as_sender && now.message.is_unread());
                let side = conv::table.find((user, partner));
                // This UPDATE also locks the row, so the next statement sees every
                // message committed before it.
                statement(
                    diesel::update(side)
                        .set(conv::unread_count.eq(conv::unread_count - unread_lost)),
                )
                .execute(conn)?;
                let (lo, hi) = conversation_key(user, partner);
                let latest_visible = dm::table
                    .filter(in_conversation(lo, hi))
                    .filter(visible_to(user))
                    .select(dm::id)
                    .order(dm::id.desc())
                    .limit(1)
                    .single_value();
                statement(diesel::update(side).set(conv::last_message_id.eq(latest_visible)))
                    .execute(conn)?;
                if now.deleted_by_sender && now.deleted_by_recipient {
                    statement(diesel::delete(dm::table.find(id))).execute(conn)?;
                }
                Ok(())
            })
        }

        fn block(&mut self, user: UserId, blocked: UserId) -> Result<()> {
            if user == blocked {
                return Err(Error::SelfBlock { user });
            }
            statement(
                diesel::insert_into(blocks::table)
                    .values((
                        blocks::blocker_id.eq(user),
                        blocks::blocked_id.eq(blocked),
                        blocks::created_at.eq(UtcTimestamp($crate::timestamp::now())),
                    ))
                    .on_conflict_do_nothing(),
            )
            .execute(self)?;
            Ok(())
        }

        fn unblock(&mut self, user: UserId, blocked: UserId) -> Result<()> {
            statement(diesel::delete(blocks::table.find((user, blocked)))).execute(self)?;
            Ok(())
        }

        fn purge(&mut self, user: UserId) -> Result<u64> {
            self.write_transaction(|conn| {
                let messages = statement(diesel::delete(
                    dm::table.filter(dm::user_lo.eq(user).or(dm::user_hi.eq(user))),
                ))
                .execute(conn)?;
                statement(diesel::delete(
                    conv::table.filter(conv::owner_id.eq(user).or(conv::partner_id.eq(user))),
                ))
                .execute(conn)?;
                statement(diesel::delete(blocks::table.filter(
                    blocks::blocker_id.eq(user).or(blocks::blocked_id.eq(user)),
                )))
                .execute(conn)?;
                Ok(u64::try_from(messages).unwrap_or(u64::MAX))
            })
        }
    };
}
pub(crate) use shared_queries;

/// `user` may see `stored`: it took part in it and has not deleted it.
pub(crate) fn authorize(
    stored: &crate::message::StoredMessage,
    user: UserId,
    id: crate::MessageId,
) -> crate::Result<()> {
    let m = &stored.message;
    if user != m.sender_id && user != m.recipient_id {
        return Err(crate::Error::NotAllowed { user, message: id });
    }
    if !stored.visible_to(user) {
        return Err(crate::Error::MessageNotFound(id));
    }
    Ok(())
}

/// What the stamped queries use, in one `use`.
pub(crate) mod prelude {
    pub(crate) use super::{
        authorize, conversation_key, has_unread, in_conversation, unread_of, visible_to, MARK_CHUNK,
    };
    pub(crate) use crate::backend::{Page, Read, ReadFilter, ReadScope, Store};
    pub(crate) use crate::message::{NewMessage, StoredMessage};
    pub(crate) use crate::schema::direct_message_blocks as blocks;
    pub(crate) use crate::schema::direct_message_conversations as conv;
    pub(crate) use crate::schema::direct_messages as dm;
    pub(crate) use crate::schema::UtcTimestamp;
    pub(crate) use crate::{
        ConversationQuery, ConversationSummary, ConversationsQuery, Error, Message, MessageId,
        Result, UserId,
    };
    pub(crate) use diesel::prelude::*;
    pub(crate) use diesel::QueryResult;
}
