//! Every query and transaction body of the inbox, written once.
//!
//! This file is not a module of its own: each dialect mounts it (`#[path]`) once per
//! execution flavour, next to its `type Conn` and its hooks (`super::statement`,
//! `super::write_transaction`, `super::insert_message`, …), so the same text becomes
//! `impl Operations for Conn` on every backend's connection type, blocking and async, and
//! clippy, rustfmt and rust-analyzer read it as the plain Rust it is. Diesel checks every
//! query against the concrete backend. Every statement goes through `super::statement(…)`,
//! the dialect's hook for how a statement is prepared (MySQL prepares each one afresh), and
//! is awaited: `RunQueryDsl` is the flavour's (`src/execution`), whose futures on the
//! blocking flavour are ready at once.
//!
//! How the two helper tables stay exact under concurrency: every change to a
//! conversation row is a delta (`unread_count ± n`) or is made under the conversation's
//! lock, and every delta is decided by a guarded UPDATE of the message row itself, which
//! at most one transaction can win.

use diesel::prelude::*;

use super::execution::RunQueryDsl;
use super::transactions::outside;
use super::Conn;
use crate::message::{NewMessage, StoredMessage};
use crate::operations::{
    authorize, conversation_key, has_unread, in_conversation, key, markable, may_change,
    newest_first, oldest_first, partner_blocked, unread_of, visible_in_own_conversation, Bind,
    Body, ConversationFlag, ConversationPage, Limited, Marked, MessageRead, Operations, Raw,
    ReadScope, Sent, FEW, MARK_CHUNK,
};
use crate::schema::direct_message_blocks as blocks;
use crate::schema::direct_message_conversations as conv;
use crate::schema::direct_messages as dm;
use crate::schema::UtcTimestamp;
use crate::{
    ConversationQuery, ConversationSummary, ConversationsQuery, Error, Message, MessageId, Result,
    UserId,
};

impl Operations for Conn {
    async fn migrate(&mut self) -> Result<()> {
        super::migrate(self).await
    }

    async fn is_blocked(&mut self, user: UserId, other: UserId) -> QueryResult<bool> {
        outside(self, |conn| {
            Body::new(async move {
                super::statement(diesel::select(diesel::dsl::exists(
                    blocks::table.find((user, other)),
                )))
                .get_result(conn)
                .await
            })
        })
        .await
    }

    async fn send(&mut self, sender: UserId, recipient: UserId, content: &str) -> Result<Sent> {
        let (lo, hi) = conversation_key(sender, recipient);
        // PostgreSQL, where the call cannot be abandoned: one statement, no transaction.
        if let Some(message) = super::send_at_once(self, sender, recipient, content).await? {
            return Ok(message);
        }
        super::write_transaction(self, |conn| {
            Body::new(async move {
                // PostgreSQL does all of what follows in one statement, once the
                // conversation has its rows.
                if let Some(message) =
                    super::send_to_conversation(conn, sender, recipient, content).await?
                {
                    return Ok(message);
                }
                // Every send of a conversation locks its `(lo, hi)` row first and holds it
                // to commit, so within a conversation ids, clock and commit order agree. The
                // same statement reads the row's latest `sent_at` and the recipient's block.
                let locked = match super::lock_conversation(conn, lo, hi, recipient, sender).await?
                {
                    Some(locked) => locked,
                    None => {
                        insert_conversation_rows(conn, lo, hi).await?;
                        super::lock_conversation(conn, lo, hi, recipient, sender)
                            .await?
                            .ok_or(diesel::result::Error::NotFound)?
                    }
                };
                if locked.blocked {
                    return Err(Error::Blocked { sender, recipient });
                }
                // The clock is read under the lock, and never runs behind the latest
                // message of the conversation (another instance's clock may be ahead).
                let now = crate::timestamp::now();
                let sent_at = locked.last_sent_at.map_or(now, |latest| latest.0.max(now));
                let message = super::insert_message(
                    conn,
                    &NewMessage {
                        sender_id: sender,
                        recipient_id: recipient,
                        content,
                        sent_at: UtcTimestamp(sent_at),
                    },
                )
                .await?;
                index_message(conn, &message).await?;
                // Both sides in one statement.
                let muted = super::set_latest_message(
                    conn,
                    sender,
                    recipient,
                    message.id,
                    UtcTimestamp(sent_at),
                )
                .await?;
                Ok(Sent { message, muted })
            })
        })
        .await
    }

    async fn read(&mut self, id: MessageId, reader: Option<UserId>) -> Result<MessageRead> {
        // A plain read decides; only a message to mark takes a write transaction.
        let stored = outside(self, |conn| Body::new(find_stored(conn, id)))
            .await?
            .ok_or(Error::MessageNotFound(id))?;
        let as_sender = if let Some(reader) = reader {
            authorize(&stored, reader, id)?;
            reader == stored.message.sender_id
        } else {
            false
        };
        if as_sender || !stored.message.is_unread() || stored.deleted_by_recipient {
            return Ok(MessageRead {
                message: stored.message,
                newly_read: false,
                muted: false,
            });
        }
        super::write_transaction(self, |conn| {
            Body::new(async move {
                let mut marked = mark_read_and_count(conn, ReadScope::Message(id)).await?;
                if let Some(message) = marked.messages.pop() {
                    return Ok(MessageRead {
                        message,
                        newly_read: true,
                        muted: marked.muted,
                    });
                }
                // Another reader marked it (or its recipient deleted it) meanwhile.
                let current = super::find_current(conn, id)
                    .await?
                    .ok_or(Error::MessageNotFound(id))?;
                Ok(MessageRead {
                    message: current.message,
                    newly_read: false,
                    muted: false,
                })
            })
        })
        .await
    }

    // Every unread message is returned, so they are put in id order here: an ORDER BY id
    // drew MariaDB into walking the whole table by its primary key instead of reading the
    // user's unread range of `direct_messages_unread` (ordered by sender first).
    async fn unread_messages(&mut self, user: UserId) -> QueryResult<Vec<Message>> {
        let mut unread =
            outside(self, |conn| Body::new(super::unread_messages(conn, user))).await?;
        unread.sort_unstable_by_key(|m| m.id);
        Ok(unread)
    }

    // The conversation rows keep each partner's unread count exact: add up those of
    // the partners with something unread that `user` does not block, which costs
    // one index entry per such partner however many messages they sent.
    async fn unread_count(&mut self, user: UserId) -> QueryResult<i64> {
        let counts: Vec<i64> = outside(self, |conn| {
            Body::new(async move {
                super::statement(
                    conv::table
                        .filter(conv::owner_id.eq(key(user)))
                        .filter(has_unread())
                        .filter(diesel::dsl::not(diesel::dsl::exists(
                            blocks::table.filter(partner_blocked()),
                        )))
                        .select(conv::unread_count),
                )
                .load(conn)
                .await
            })
        })
        .await?;
        Ok(counts.into_iter().sum())
    }

    async fn partners(&mut self, user: UserId) -> QueryResult<Vec<UserId>> {
        outside(self, |conn| {
            Body::new(async move {
                super::statement(
                    conv::table
                        .filter(conv::owner_id.eq(key(user)))
                        .filter(conv::last_message_id.is_not_null())
                        .order(conv::last_message_id.desc())
                        .select(conv::partner_id),
                )
                .load(conn)
                .await
            })
        })
        .await
    }

    async fn conversation(
        &mut self,
        user: UserId,
        partner: UserId,
        query: ConversationQuery,
    ) -> Result<ConversationPage> {
        let (lo, hi) = conversation_key(user, partner);
        let mut messages: Vec<Message> = outside(self, |conn| {
            Body::new(async move {
                let mut select = dm::table
                    .filter(in_conversation(lo, hi))
                    .filter(visible_in_own_conversation(user))
                    .select(Message::as_select())
                    .into_boxed();
                if let Some(before) = query.before {
                    select = select.filter(dm::id.lt(key(before)));
                }
                if let Some(after) = query.after {
                    select = select.filter(dm::id.gt(key(after)));
                }
                select = if query.reversed {
                    select.order(newest_first())
                } else {
                    select.order(oldest_first())
                };
                super::statement(Limited::new(select, query.limit))
                    .load(conn)
                    .await
            })
        })
        .await?;
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
            return Ok(ConversationPage {
                messages,
                marked: Marked::default(),
            });
        }
        unread.sort_unstable();
        let to_mark = &unread;
        let mut marked = super::write_transaction(self, |conn| {
            Body::new(async move {
                let mut all = Marked::default();
                for ids in to_mark.chunks(MARK_CHUNK) {
                    let chunk =
                        mark_read_and_count(conn, ReadScope::Messages { reader: user, ids })
                            .await?;
                    all.messages.extend(chunk.messages);
                    all.muted |= chunk.muted;
                }
                Ok(all)
            })
        })
        .await?;
        marked.messages.sort_unstable_by_key(|m| m.id);
        // What another reader marked between the page and the mark: its stored state.
        let raced: Vec<MessageId> = unread
            .iter()
            .copied()
            .filter(|id| marked.messages.binary_search_by_key(id, |m| m.id).is_err())
            .collect();
        let mut read_at = Vec::with_capacity(raced.len());
        for ids in raced.chunks(MARK_CHUNK) {
            read_at.extend(
                outside(self, |conn| {
                    Body::new(async move {
                        super::statement(
                            dm::table
                                .filter(dm::id.eq_any(ids.to_vec()))
                                .select((dm::id, dm::read_at)),
                        )
                        .load::<(MessageId, Option<UtcTimestamp>)>(conn)
                        .await
                    })
                })
                .await?,
            );
        }
        read_at.sort_unstable_by_key(|(id, _)| *id);
        for m in &mut messages {
            if let Ok(i) = marked.messages.binary_search_by_key(&m.id, |x| x.id) {
                m.read_at = marked.messages[i].read_at;
            } else if let Ok(i) = read_at.binary_search_by_key(&m.id, |(id, _)| *id) {
                m.read_at = read_at[i].1.map(|t| t.0);
            }
        }
        Ok(ConversationPage { messages, marked })
    }

    async fn conversations(
        &mut self,
        user: UserId,
        query: ConversationsQuery,
    ) -> QueryResult<Vec<ConversationSummary>> {
        let rows: Vec<(UserId, Message, i64, bool, bool)> = outside(self, |conn| {
            Body::new(async move {
                let mut select = conv::table
                    .inner_join(dm::table.on(conv::last_message_id.eq(dm::id.nullable())))
                    .left_join(blocks::table.on(partner_blocked()))
                    .filter(conv::owner_id.eq(key(user)))
                    .filter(conv::archived.eq(key(query.archived)))
                    .order(conv::last_message_id.desc())
                    .select((
                        conv::partner_id,
                        Message::as_select(),
                        conv::unread_count,
                        blocks::blocker_id.nullable().is_not_null(),
                        conv::muted,
                    ))
                    .into_boxed();
                if let Some(before) = query.before {
                    select = select.filter(conv::last_message_id.lt(key(before)));
                }
                super::statement(Limited::new(select, query.limit))
                    .load(conn)
                    .await
            })
        })
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(partner, last_message, unread, blocked, muted)| ConversationSummary {
                    partner,
                    last_message,
                    unread_count: if blocked { 0 } else { unread },
                    archived: query.archived,
                    muted,
                },
            )
            .collect())
    }

    async fn mark_conversation_read(&mut self, user: UserId, partner: UserId) -> Result<Marked> {
        // The counter is exact: when it says nothing is unread, take no write lock.
        let unread: Option<i64> = outside(self, |conn| {
            Body::new(async move {
                super::statement(conv::table.find((user, partner)).select(conv::unread_count))
                    .get_result(conn)
                    .await
                    .optional()
            })
        })
        .await?;
        if unread.unwrap_or(0) == 0 {
            return Ok(Marked::default());
        }
        super::write_transaction(self, |conn| {
            Body::new(async move {
                Ok(mark_read_and_count(
                    conn,
                    ReadScope::From {
                        reader: user,
                        partner,
                        unread: unread.unwrap_or(0),
                    },
                )
                .await?)
            })
        })
        .await
    }

    async fn delete(&mut self, user: UserId, id: MessageId) -> Result<()> {
        super::write_transaction(self, |conn| {
            Body::new(async move {
                let stored = find_stored(conn, id)
                    .await?
                    .ok_or(Error::MessageNotFound(id))?;
                authorize(&stored, user, id)?;
                let as_sender = stored.message.sender_id == user;
                let partner = stored.message.partner_of(user);
                let hidden = if as_sender {
                    super::statement(
                        diesel::update(dm::table.find(id).filter(dm::deleted_by_sender.eq(false)))
                            .set(dm::deleted_by_sender.eq(true)),
                    )
                    .execute(conn)
                    .await?
                } else {
                    super::statement(
                        diesel::update(
                            dm::table
                                .find(id)
                                .filter(dm::deleted_by_recipient.eq(false)),
                        )
                        .set(dm::deleted_by_recipient.eq(true)),
                    )
                    .execute(conn)
                    .await?
                };
                if hidden == 0 {
                    return Err(Error::MessageNotFound(id)); // a concurrent delete won
                }
                unindex_side(conn, id, user, !as_sender).await?;
                let now = super::find_current(conn, id)
                    .await?
                    .ok_or(Error::MessageNotFound(id))?;
                let unread_lost = i64::from(!as_sender && now.message.is_unread());
                let side = conv::table.find((user, partner));
                // This UPDATE also locks the row, so the next statement sees every
                // message committed before it.
                super::statement(
                    diesel::update(side)
                        .set(conv::unread_count.eq(conv::unread_count - unread_lost)),
                )
                .execute(conn)
                .await?;
                refresh_latest(conn, user, partner).await?;
                if now.deleted_by_sender && now.deleted_by_recipient {
                    super::statement(diesel::delete(dm::table.find(id)))
                        .execute(conn)
                        .await?;
                }
                Ok(())
            })
        })
        .await
    }

    async fn edit_target(
        &mut self,
        editor: UserId,
        id: MessageId,
        window: Option<chrono::Duration>,
    ) -> Result<Message> {
        let stored = find_changeable(self, editor, id, window).await?;
        let recipient = stored.message.recipient_id;
        // New text must not pass a block the old text came before.
        if self.is_blocked(recipient, editor).await? {
            return Err(Error::Blocked {
                sender: editor,
                recipient,
            });
        }
        Ok(stored.message)
    }

    async fn edit(&mut self, editor: UserId, id: MessageId, content: &str) -> Result<Sent> {
        super::write_transaction(self, |conn| {
            Body::new(async move {
                let at = UtcTimestamp(crate::timestamp::now());
                // Unsent, or deleted by its sender, since the check: a concurrent call won.
                let message = super::update_sent(conn, editor, id, content, at)
                    .await?
                    .ok_or(Error::MessageNotFound(id))?;
                reindex_message(conn, &message).await?;
                // Lowering by 0 locks the recipient's row and reads its mute.
                let muted =
                    super::lower_unread(conn, (message.recipient_id, editor), 0, true).await?;
                Ok(Sent { message, muted })
            })
        })
        .await
    }

    async fn unsend(
        &mut self,
        sender: UserId,
        id: MessageId,
        window: Option<chrono::Duration>,
    ) -> Result<Sent> {
        // The checks read the message as committed; the guarded delete decides.
        find_changeable(self, sender, id, window).await?;
        super::write_transaction(self, |conn| {
            Body::new(async move {
                // Gone, or deleted by its sender, since the check: a concurrent call won.
                let gone = super::delete_sent(conn, sender, id)
                    .await?
                    .ok_or(Error::MessageNotFound(id))?;
                let message = gone.message;
                let recipient = message.recipient_id;
                let seen_by_recipient = !gone.deleted_by_recipient;
                // Lowering by 0 still locks the recipient's row and reads its mute.
                let lost = i64::from(seen_by_recipient && message.is_unread());
                let muted = super::lower_unread(conn, (recipient, sender), lost, true).await?;
                refresh_latest(conn, sender, recipient).await?;
                if seen_by_recipient {
                    refresh_latest(conn, recipient, sender).await?;
                }
                Ok(Sent { message, muted })
            })
        })
        .await
    }

    async fn block(&mut self, user: UserId, blocked: UserId) -> Result<()> {
        if user == blocked {
            return Err(Error::SelfBlock { user });
        }
        outside(self, |conn| {
            Body::new(async move {
                super::statement(
                    diesel::insert_into(blocks::table)
                        .values((
                            blocks::blocker_id.eq(user),
                            blocks::blocked_id.eq(blocked),
                            blocks::created_at.eq(UtcTimestamp(crate::timestamp::now())),
                        ))
                        .on_conflict_do_nothing(),
                )
                .execute(conn)
                .await
            })
        })
        .await?;
        Ok(())
    }

    async fn unblock(&mut self, user: UserId, blocked: UserId) -> Result<()> {
        outside(self, |conn| {
            Body::new(async move {
                super::statement(diesel::delete(blocks::table.find((user, blocked))))
                    .execute(conn)
                    .await
            })
        })
        .await?;
        Ok(())
    }

    async fn set_flag(
        &mut self,
        user: UserId,
        partner: UserId,
        flag: ConversationFlag,
        on: bool,
    ) -> Result<()> {
        if user == partner {
            return Ok(());
        }
        let (lo, hi) = conversation_key(user, partner);
        super::write_transaction(self, |conn| {
            Body::new(async move {
                // Before the first message there are no rows yet: make both, as a send
                // would, so the flag is there when the conversation is.
                if set_own_flag(conn, user, partner, flag, on).await? == 0 {
                    insert_conversation_rows(conn, lo, hi).await?;
                    set_own_flag(conn, user, partner, flag, on).await?;
                }
                Ok(())
            })
        })
        .await
    }

    async fn search(
        &mut self,
        user: UserId,
        terms: crate::search::Terms,
        before: Option<MessageId>,
        limit: Option<u32>,
    ) -> Result<Vec<Message>> {
        // No cursor and no limit are bound as the widest values: one statement text.
        let before = before.unwrap_or(MessageId::MAX);
        let limit = limit.map_or(i64::MAX, i64::from);
        // Read-only: run again whole when the database was busy.
        let terms = &terms;
        let mut found = outside(self, |conn| {
            Body::new(async move {
                let ids = match recent_matches(conn, user, terms, before, limit).await? {
                    Some(ids) => ids,
                    None => {
                        let binds = vec![
                            Bind::Text(super::search_match(terms)),
                            Bind::Int(super::search_below(before)),
                            Bind::Int(limit),
                        ];
                        let hits: Vec<crate::operations::SearchHit> =
                            super::statement(Raw::new(super::SEARCH.select, binds))
                                .load(conn)
                                .await?;
                        hits.into_iter().map(|hit| hit.id).collect()
                    }
                };
                let mut found = Vec::with_capacity(ids.len());
                for ids in ids.chunks(MARK_CHUNK) {
                    // Visibility again: a delete between the two statements hides it already.
                    found.extend(
                        super::statement(
                            dm::table
                                .filter(dm::id.eq_any(ids.to_vec()))
                                .filter(visible_in_own_conversation(user))
                                .select(Message::as_select()),
                        )
                        .load::<Message>(conn)
                        .await?,
                    );
                }
                QueryResult::Ok(found)
            })
        })
        .await?;
        found.sort_unstable_by_key(|m| std::cmp::Reverse(m.id));
        Ok(found)
    }

    async fn purge(&mut self, user: UserId) -> Result<u64> {
        super::write_transaction(self, |conn| {
            Body::new(async move {
                let messages = super::statement(diesel::delete(
                    dm::table.filter(dm::user_lo.eq(key(user)).or(dm::user_hi.eq(key(user)))),
                ))
                .execute(conn)
                .await?;
                super::statement(diesel::delete(
                    conv::table.filter(
                        conv::owner_id
                            .eq(key(user))
                            .or(conv::partner_id.eq(key(user))),
                    ),
                ))
                .execute(conn)
                .await?;
                super::statement(diesel::delete(
                    blocks::table.filter(
                        blocks::blocker_id
                            .eq(key(user))
                            .or(blocks::blocked_id.eq(key(user))),
                    ),
                ))
                .execute(conn)
                .await?;
                Ok(u64::try_from(messages).unwrap_or(u64::MAX))
            })
        })
        .await
    }
}

/// A page of search results from `user`'s latest index rows alone, when they hold it: a
/// full page, or every row `user` has below `before`. `None` when the full-text index
/// must answer (a page bigger than a quarter of the window, a backend whose index cannot
/// read a user's rows in order, or too few matches among them).
async fn recent_matches(
    conn: &mut Conn,
    user: UserId,
    terms: &crate::search::Terms,
    before: MessageId,
    limit: i64,
) -> QueryResult<Option<Vec<MessageId>>> {
    use crate::operations::{SearchRow, RECENT_WINDOW};
    let Some(sql) = super::SEARCH.recent else {
        return Ok(None);
    };
    if limit > RECENT_WINDOW / 4 {
        return Ok(None);
    }
    let binds = vec![
        Bind::Int(user),
        Bind::Int(super::search_below(before)),
        Bind::Int(RECENT_WINDOW),
    ];
    let rows: Vec<SearchRow> = super::statement(Raw::new(sql, binds)).load(conn).await?;
    let page: Vec<MessageId> = rows
        .iter()
        .filter(|row| terms.matches(&row.terms))
        .map(|row| row.id)
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
        .collect();
    let seen_all = (rows.len() as i64) < RECENT_WINDOW;
    Ok((page.len() as i64 == limit || seen_all).then_some(page))
}

/// The two sides of message `m`: owner, partner, and whether it is the recipient's side.
fn sides(m: &Message) -> [(UserId, UserId, bool); 2] {
    [
        (m.sender_id, m.recipient_id, false),
        (m.recipient_id, m.sender_id, true),
    ]
}

/// Adds both sides' search index rows of a new message, in one statement.
async fn index_message(conn: &mut Conn, m: &Message) -> QueryResult<()> {
    let mut binds = Vec::with_capacity(6);
    for (owner, partner, recipient_side) in sides(m) {
        binds.extend(super::search_key(m.id, owner, recipient_side));
        binds.push(Bind::Text(crate::search::document(
            owner, partner, &m.content,
        )));
    }
    super::statement(Raw::new(super::SEARCH.insert, binds))
        .execute(conn)
        .await?;
    Ok(())
}

/// Rewrites the search index rows of an edited message, of the sides that still see it
/// (a side's row is gone once it deleted the message).
async fn reindex_message(conn: &mut Conn, m: &Message) -> QueryResult<()> {
    for (owner, partner, recipient_side) in sides(m) {
        let mut binds = vec![Bind::Text(crate::search::document(
            owner, partner, &m.content,
        ))];
        binds.extend(super::search_key(m.id, owner, recipient_side));
        super::statement(Raw::new(super::SEARCH.update, binds))
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// Removes `owner`'s search index row of message `id`, which `owner` deleted.
async fn unindex_side(
    conn: &mut Conn,
    id: MessageId,
    owner: UserId,
    recipient_side: bool,
) -> QueryResult<()> {
    let key = super::search_key(id, owner, recipient_side);
    super::statement(Raw::new(super::SEARCH.delete, key))
        .execute(conn)
        .await?;
    Ok(())
}

/// Points `owner`'s row of the conversation with `partner` at the latest message `owner`
/// still sees in it (none: `NULL`).
async fn refresh_latest(conn: &mut Conn, owner: UserId, partner: UserId) -> QueryResult<()> {
    let (lo, hi) = conversation_key(owner, partner);
    let latest_visible = dm::table
        .filter(in_conversation(lo, hi))
        .filter(visible_in_own_conversation(owner))
        .select(dm::id)
        .order(newest_first())
        .limit(1)
        .single_value();
    super::statement(
        diesel::update(conv::table.find((owner, partner)))
            .set(conv::last_message_id.eq(latest_visible)),
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Sets `flag` on `user`'s row of the conversation with `partner`; how many rows it
/// changed (0 before the conversation has rows).
async fn set_own_flag(
    conn: &mut Conn,
    user: UserId,
    partner: UserId,
    flag: ConversationFlag,
    on: bool,
) -> QueryResult<usize> {
    let own = conv::table.find((user, partner));
    match flag {
        ConversationFlag::Archived => {
            super::statement(diesel::update(own).set(conv::archived.eq(on)))
                .execute(conn)
                .await
        }
        ConversationFlag::Muted => {
            super::statement(diesel::update(own).set(conv::muted.eq(on)))
                .execute(conn)
                .await
        }
    }
}

/// Both rows of the conversation `(lo, hi)`, empty, unless they exist.
async fn insert_conversation_rows(conn: &mut Conn, lo: UserId, hi: UserId) -> QueryResult<()> {
    let side = |owner: UserId, partner: UserId| {
        (
            conv::owner_id.eq(owner),
            conv::partner_id.eq(partner),
            conv::last_message_id.eq(None::<MessageId>),
            conv::unread_count.eq(0_i64),
        )
    };
    super::statement(
        diesel::insert_into(conv::table)
            .values(vec![side(lo, hi), side(hi, lo)])
            .on_conflict_do_nothing(),
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The unread messages of `user` (see `unread_of`), in one statement, in no set order.
#[cfg_attr(feature = "mysql", allow(dead_code))] // the MySQL mount reads them in two steps
pub(super) async fn load_unread(conn: &mut Conn, user: UserId) -> QueryResult<Vec<Message>> {
    super::statement(unread_of(user).select(Message::as_select()))
        .load(conn)
        .await
}

/// The message with its deletion flags.
pub(super) async fn find_stored(
    conn: &mut Conn,
    id: MessageId,
) -> diesel::QueryResult<Option<crate::message::StoredMessage>> {
    super::statement(dm::table.find(id).select(StoredMessage::as_select()))
        .get_result(conn)
        .await
        .optional()
}

/// Message `id` if `user` may still edit or unsend it: checked, as committed, in the
/// contract's order (see `may_change`).
async fn find_changeable(
    conn: &mut Conn,
    user: UserId,
    id: MessageId,
    window: Option<chrono::Duration>,
) -> Result<StoredMessage> {
    let stored = outside(conn, |conn| Body::new(find_stored(conn, id)))
        .await?
        .ok_or(Error::MessageNotFound(id))?;
    may_change(&stored, user, id, window)?;
    Ok(stored)
}

/// Marks read what `scope` selects and keeps the unread counters in step.
async fn mark_read_and_count(conn: &mut Conn, scope: ReadScope<'_>) -> QueryResult<Marked> {
    let at = crate::timestamp::now();
    let (mut marked, known_muted) = match scope {
        ReadScope::Message(id) => super::mark_one_read(conn, id, at).await?,
        ReadScope::Messages { reader, ids } => {
            let filter = dm::recipient_id
                .eq(key(reader))
                .and(dm::id.eq_any(ids.to_vec()))
                .and(markable());
            // `IN (…)` of as many ids as there are, on SQLite: a text per length.
            let few = ids.len() <= FEW;
            super::mark_read_returning(conn, filter, at, false, few).await?
        }
        ReadScope::From {
            reader,
            partner,
            unread,
        } => {
            let filter = dm::recipient_id
                .eq(key(reader))
                .and(dm::sender_id.eq(key(partner)))
                .and(markable());
            let few = usize::try_from(unread).is_ok_and(|n| n <= FEW);
            super::mark_read_returning(conn, filter, at, true, few).await?
        }
    };
    marked.sort_unstable_by_key(|m| m.id);
    let mut per_side = std::collections::BTreeMap::<(UserId, UserId), i64>::new();
    for m in &marked {
        *per_side.entry((m.recipient_id, m.sender_id)).or_default() += 1;
    }
    // One side in practice (every scope reads one recipient's messages from one sender).
    // Where the mark read the flag with the rows, the counter's update need not.
    let mut muted = known_muted.unwrap_or(false);
    for (side, n) in per_side {
        muted |= super::lower_unread(conn, side, n, known_muted.is_none()).await?;
    }
    Ok(Marked {
        messages: marked,
        muted,
    })
}
