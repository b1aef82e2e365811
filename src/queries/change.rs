//! Changing a sent message: edit and unsend (its sender, within the edit window), and delete for one side.

use diesel::prelude::*;

use super::execution::RunQueryDsl;
use super::transactions::outside;
use super::{
    conversation::refresh_latest,
    index::{reindex_message, unindex_side},
    read::find_stored,
};
use super::{Conn, Dialect, Writes, H, W};
use crate::message::StoredMessage;
use crate::operations::{authorize, may_change, Body, Operations, Sent};
use crate::schema::direct_message_conversations as conv;
use crate::schema::direct_messages as dm;
use crate::schema::UtcTimestamp;
use crate::{Error, Message, MessageId, Result, UserId};

pub(super) async fn delete(conn: &mut Conn, user: UserId, id: MessageId) -> Result<()> {
    H::write_transaction(conn, |conn| {
        Body::new(async move {
            let stored = find_stored(conn, id)
                .await?
                .ok_or(Error::MessageNotFound(id))?;
            authorize(&stored, user, id)?;
            let as_sender = stored.message.sender_id == user;
            let partner = stored.message.partner_of(user);
            let hidden = if as_sender {
                H::statement(
                    diesel::update(dm::table.find(id).filter(dm::deleted_by_sender.eq(false)))
                        .set(dm::deleted_by_sender.eq(true)),
                )
                .execute(conn)
                .await?
            } else {
                H::statement(
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
            let now = H::find_current(conn, id)
                .await?
                .ok_or(Error::MessageNotFound(id))?;
            let unread_lost = i64::from(!as_sender && now.message.is_unread());
            let side = conv::table.find((user, partner));
            // This UPDATE also locks the row, so the next statement sees every
            // message committed before it.
            H::statement(
                diesel::update(side).set(conv::unread_count.eq(conv::unread_count - unread_lost)),
            )
            .execute(conn)
            .await?;
            refresh_latest(conn, user, partner).await?;
            if now.deleted_by_sender && now.deleted_by_recipient {
                H::statement(diesel::delete(dm::table.find(id)))
                    .execute(conn)
                    .await?;
            }
            Ok(())
        })
    })
    .await
}

pub(super) async fn edit_target(
    conn: &mut Conn,
    editor: UserId,
    id: MessageId,
    window: Option<chrono::Duration>,
) -> Result<Message> {
    let stored = find_changeable(conn, editor, id, window).await?;
    let recipient = stored.message.recipient_id;
    // New text must not pass a block the old text came before.
    if conn.is_blocked(recipient, editor).await? {
        return Err(Error::Blocked {
            sender: editor,
            recipient,
        });
    }
    Ok(stored.message)
}

pub(super) async fn edit(
    conn: &mut Conn,
    editor: UserId,
    id: MessageId,
    content: &str,
) -> Result<Sent> {
    H::write_transaction(conn, |conn| {
        Body::new(async move {
            let at = UtcTimestamp(crate::timestamp::now());
            // Unsent, or deleted by its sender, since the check: a concurrent call won.
            let message = W::update_sent(conn, editor, id, content, at)
                .await?
                .ok_or(Error::MessageNotFound(id))?;
            reindex_message(conn, &message).await?;
            // Lowering by 0 locks the recipient's row and reads its mute.
            let muted = W::lower_unread(conn, (message.recipient_id, editor), 0, true).await?;
            Ok(Sent { message, muted })
        })
    })
    .await
}

pub(super) async fn unsend(
    conn: &mut Conn,
    sender: UserId,
    id: MessageId,
    window: Option<chrono::Duration>,
) -> Result<Sent> {
    // The checks read the message as committed; the guarded delete decides.
    find_changeable(conn, sender, id, window).await?;
    H::write_transaction(conn, |conn| {
        Body::new(async move {
            // Gone, or deleted by its sender, since the check: a concurrent call won.
            let gone = W::delete_sent(conn, sender, id)
                .await?
                .ok_or(Error::MessageNotFound(id))?;
            let message = gone.message;
            let recipient = message.recipient_id;
            let seen_by_recipient = !gone.deleted_by_recipient;
            // Lowering by 0 still locks the recipient's row and reads its mute.
            let lost = i64::from(seen_by_recipient && message.is_unread());
            let muted = W::lower_unread(conn, (recipient, sender), lost, true).await?;
            refresh_latest(conn, sender, recipient).await?;
            if seen_by_recipient {
                refresh_latest(conn, recipient, sender).await?;
            }
            Ok(Sent { message, muted })
        })
    })
    .await
}

/// Message `id` if `user` may still edit or unsend it: checked, as committed, in the
/// contract's order (see `may_change`).
pub(super) async fn find_changeable(
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
