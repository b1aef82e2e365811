//! Sending: the conversation locked, the message stored and indexed, both sides updated.

use diesel::prelude::*;

use super::execution::RunQueryDsl;
use super::index::index_message;
use super::{Conn, Dialect, Writes, H, W};
use crate::message::NewMessage;
use crate::operations::{conversation_key, Body, Sent};
use crate::schema::direct_message_conversations as conv;
use crate::schema::UtcTimestamp;
use crate::{Error, MessageId, Result, UserId};

pub(super) async fn send(
    conn: &mut Conn,
    sender: UserId,
    recipient: UserId,
    content: &str,
) -> Result<Sent> {
    let (lo, hi) = conversation_key(sender, recipient);
    // PostgreSQL, where the call cannot be abandoned: one statement, no transaction.
    if let Some(message) = H::send_at_once(conn, sender, recipient, content).await? {
        return Ok(message);
    }
    H::write_transaction(conn, |conn| {
        Body::new(async move {
            // PostgreSQL does all of what follows in one statement, once the
            // conversation has its rows.
            if let Some(message) = H::send_to_conversation(conn, sender, recipient, content).await?
            {
                return Ok(message);
            }
            // Every send of a conversation locks its `(lo, hi)` row first and holds it
            // to commit, so within a conversation ids, clock and commit order agree. The
            // same statement reads the row's latest `sent_at` and the recipient's block.
            let locked = match H::lock_conversation(conn, lo, hi, recipient, sender).await? {
                Some(locked) => locked,
                None => {
                    insert_conversation_rows(conn, lo, hi).await?;
                    H::lock_conversation(conn, lo, hi, recipient, sender)
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
            let message = W::insert_message(
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
            let muted =
                W::set_latest_message(conn, sender, recipient, message.id, UtcTimestamp(sent_at))
                    .await?;
            Ok(Sent { message, muted })
        })
    })
    .await
}

/// Both rows of the conversation `(lo, hi)`, empty, unless they exist.
pub(super) async fn insert_conversation_rows(
    conn: &mut Conn,
    lo: UserId,
    hi: UserId,
) -> QueryResult<()> {
    let side = |owner: UserId, partner: UserId| {
        (
            conv::owner_id.eq(owner),
            conv::partner_id.eq(partner),
            conv::last_message_id.eq(None::<MessageId>),
            conv::unread_count.eq(0_i64),
        )
    };
    H::statement(
        diesel::insert_into(conv::table)
            .values(vec![side(lo, hi), side(hi, lo)])
            .on_conflict_do_nothing(),
    )
    .execute(conn)
    .await?;
    Ok(())
}
