//! Who may see, edit or unsend a message: the rules every backend applies alike.

use crate::{MessageId, Result, UserId};

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
