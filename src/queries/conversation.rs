//! The conversations of a user: partners, a conversation page (marking it read if asked), the inbox screen, and the latest message each side sees.

use diesel::prelude::*;

use super::execution::RunQueryDsl;
use super::read::mark_read_and_count;
use super::transactions::outside;
use super::{Conn, Dialect, H};
use crate::operations::{
    conversation_key, in_conversation, key, newest_first, oldest_first, partner_blocked,
    visible_in_own_conversation, Body, ConversationPage, Limited, Marked, ReadScope, MARK_CHUNK,
};
use crate::schema::direct_message_blocks as blocks;
use crate::schema::direct_message_conversations as conv;
use crate::schema::direct_messages as dm;
use crate::schema::UtcTimestamp;
use crate::{
    ConversationQuery, ConversationSummary, ConversationsQuery, Message, MessageId, Result, UserId,
};

pub(super) async fn partners(conn: &mut Conn, user: UserId) -> QueryResult<Vec<UserId>> {
    outside(conn, |conn| {
        Body::new(async move {
            H::statement(
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

pub(super) async fn conversation(
    conn: &mut Conn,
    user: UserId,
    partner: UserId,
    query: ConversationQuery,
) -> Result<ConversationPage> {
    let (lo, hi) = conversation_key(user, partner);
    let mut messages: Vec<Message> = outside(conn, |conn| {
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
            H::statement(Limited::new(select, query.limit))
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
    let mut marked = H::write_transaction(conn, |conn| {
        Body::new(async move {
            let mut all = Marked::default();
            for ids in to_mark.chunks(MARK_CHUNK) {
                let chunk =
                    mark_read_and_count(conn, ReadScope::Messages { reader: user, ids }).await?;
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
            outside(conn, |conn| {
                Body::new(async move {
                    H::statement(
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

pub(super) async fn conversations(
    conn: &mut Conn,
    user: UserId,
    query: ConversationsQuery,
) -> QueryResult<Vec<ConversationSummary>> {
    let rows: Vec<(UserId, Message, i64, bool, bool)> = outside(conn, |conn| {
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
            H::statement(Limited::new(select, query.limit))
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

/// Points `owner`'s row of the conversation with `partner` at the latest message `owner`
/// still sees in it (none: `NULL`).
pub(super) async fn refresh_latest(
    conn: &mut Conn,
    owner: UserId,
    partner: UserId,
) -> QueryResult<()> {
    let (lo, hi) = conversation_key(owner, partner);
    let latest_visible = dm::table
        .filter(in_conversation(lo, hi))
        .filter(visible_in_own_conversation(owner))
        .select(dm::id)
        .order(newest_first())
        .limit(1)
        .single_value();
    H::statement(
        diesel::update(conv::table.find((owner, partner)))
            .set(conv::last_message_id.eq(latest_visible)),
    )
    .execute(conn)
    .await?;
    Ok(())
}
