//! Reading: one message (and marking it read), the unread list and count, and every mark-read with its counters.

use diesel::prelude::*;

use super::execution::RunQueryDsl;
use super::transactions::outside;
use super::{Conn, Dialect, Writes, H, W};
use crate::message::StoredMessage;
use crate::operations::{
    authorize, has_unread, key, markable, partner_blocked, unread_of, Body, Marked, MessageRead,
    ReadScope, FEW,
};
use crate::schema::direct_message_blocks as blocks;
use crate::schema::direct_message_conversations as conv;
use crate::schema::direct_messages as dm;
use crate::{Error, Message, MessageId, Result, UserId};

pub(super) async fn read(
    conn: &mut Conn,
    id: MessageId,
    reader: Option<UserId>,
) -> Result<MessageRead> {
    // A plain read decides; only a message to mark takes a write transaction.
    let stored = outside(conn, |conn| Body::new(find_stored(conn, id)))
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
    H::write_transaction(conn, |conn| {
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
            let current = H::find_current(conn, id)
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
pub(super) async fn unread_messages(conn: &mut Conn, user: UserId) -> QueryResult<Vec<Message>> {
    let mut unread = outside(conn, |conn| Body::new(H::unread_messages(conn, user))).await?;
    unread.sort_unstable_by_key(|m| m.id);
    Ok(unread)
}

// The conversation rows keep each partner's unread count exact: add up those of
// the partners with something unread that `user` does not block, which costs
// one index entry per such partner however many messages they sent.
pub(super) async fn unread_count(conn: &mut Conn, user: UserId) -> QueryResult<i64> {
    let counts: Vec<i64> = outside(conn, |conn| {
        Body::new(async move {
            H::statement(
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

pub(super) async fn mark_conversation_read(
    conn: &mut Conn,
    user: UserId,
    partner: UserId,
) -> Result<Marked> {
    // The counter is exact: when it says nothing is unread, take no write lock.
    let unread: Option<i64> = outside(conn, |conn| {
        Body::new(async move {
            H::statement(conv::table.find((user, partner)).select(conv::unread_count))
                .get_result(conn)
                .await
                .optional()
        })
    })
    .await?;
    if unread.unwrap_or(0) == 0 {
        return Ok(Marked::default());
    }
    H::write_transaction(conn, |conn| {
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

/// The unread messages of `user` (see `unread_of`), in one statement, in no set order.
#[cfg_attr(feature = "mysql", allow(dead_code))] // the MySQL mount reads them in two steps
pub(super) async fn load_unread(conn: &mut Conn, user: UserId) -> QueryResult<Vec<Message>> {
    H::statement(unread_of(user).select(Message::as_select()))
        .load(conn)
        .await
}

/// The message with its deletion flags.
pub(super) async fn find_stored(
    conn: &mut Conn,
    id: MessageId,
) -> diesel::QueryResult<Option<crate::message::StoredMessage>> {
    H::statement(dm::table.find(id).select(StoredMessage::as_select()))
        .get_result(conn)
        .await
        .optional()
}

/// Marks read what `scope` selects and keeps the unread counters in step.
pub(super) async fn mark_read_and_count(
    conn: &mut Conn,
    scope: ReadScope<'_>,
) -> QueryResult<Marked> {
    let at = crate::timestamp::now();
    let (mut marked, known_muted) = match scope {
        ReadScope::Message(id) => W::mark_one_read(conn, id, at).await?,
        ReadScope::Messages { reader, ids } => {
            let filter = dm::recipient_id
                .eq(key(reader))
                .and(dm::id.eq_any(ids.to_vec()))
                .and(markable());
            // `IN (…)` of as many ids as there are, on SQLite: a text per length.
            let few = ids.len() <= FEW;
            W::mark_read_returning(conn, filter, at, false, few).await?
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
            W::mark_read_returning(conn, filter, at, true, few).await?
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
        muted |= W::lower_unread(conn, side, n, known_muted.is_none()).await?;
    }
    Ok(Marked {
        messages: marked,
        muted,
    })
}
