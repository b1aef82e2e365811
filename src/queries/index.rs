//! The search index kept in step with every write of a message.

use diesel::prelude::*;

use super::execution::RunQueryDsl;
use super::{Conn, Dialect, H};
use crate::operations::{Bind, Raw};
use crate::{Message, MessageId, UserId};

/// The two sides of message `m`: owner, partner, and whether it is the recipient's side.
pub(super) fn sides(m: &Message) -> [(UserId, UserId, bool); 2] {
    [
        (m.sender_id, m.recipient_id, false),
        (m.recipient_id, m.sender_id, true),
    ]
}

/// Adds both sides' search index rows of a new message, in one statement.
pub(super) async fn index_message(conn: &mut Conn, m: &Message) -> QueryResult<()> {
    let mut binds = Vec::with_capacity(6);
    for (owner, partner, recipient_side) in sides(m) {
        binds.extend(H::search_key(m.id, owner, recipient_side));
        binds.push(Bind::Text(crate::search::document(
            owner, partner, &m.content,
        )));
    }
    H::statement(Raw::new(H::SEARCH.insert, binds))
        .execute(conn)
        .await?;
    Ok(())
}

/// Rewrites the search index rows of an edited message, of the sides that still see it
/// (a side's row is gone once it deleted the message).
pub(super) async fn reindex_message(conn: &mut Conn, m: &Message) -> QueryResult<()> {
    for (owner, partner, recipient_side) in sides(m) {
        let mut binds = vec![Bind::Text(crate::search::document(
            owner, partner, &m.content,
        ))];
        binds.extend(H::search_key(m.id, owner, recipient_side));
        H::statement(Raw::new(H::SEARCH.update, binds))
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// Removes `owner`'s search index row of message `id`, which `owner` deleted.
pub(super) async fn unindex_side(
    conn: &mut Conn,
    id: MessageId,
    owner: UserId,
    recipient_side: bool,
) -> QueryResult<()> {
    let key = H::search_key(id, owner, recipient_side);
    H::statement(Raw::new(H::SEARCH.delete, key))
        .execute(conn)
        .await?;
    Ok(())
}
