//! The writes of the backends with `RETURNING` (SQLite 3.35+ and PostgreSQL): an insert
//! and a guarded mark-read or update return their rows from the statement itself. Mounted
//! by those two dialects, next to the shared text.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::execution::RunQueryDsl;
use super::queries::{Dialect, Writes};
use super::{Conn, Hooks as H};
use crate::message::{NewMessage, StoredMessage};
use crate::operations::{both_sides, latest_message, markable, still_sent_by, Cached, MarkFilter};
use crate::schema::direct_message_conversations as conv;
use crate::schema::direct_messages as dm;
use crate::schema::UtcTimestamp;
use crate::{Message, MessageId, UserId};

/// The `RETURNING` writes.
#[derive(Debug)]
pub(super) struct Returning;

impl Writes for Returning {
    /// Inserts a message and returns the stored row.
    async fn insert_message(conn: &mut Conn, new: &NewMessage<'_>) -> QueryResult<Message> {
        H::statement(Cached(
            diesel::insert_into(dm::table)
                .values(new)
                .returning(Message::as_returning()),
        ))
        .get_result(conn)
        .await
    }

    /// Lowers the unread counter of `side`'s conversation row by `n`; whether its owner
    /// muted it (read by the same statement, whether or not `_read_muted`).
    ///
    /// This and `set_latest_message` are loaded through `RETURNING` (which also reads the
    /// flag): Diesel keeps a statement it executes (rather than loads) prepared only if
    /// every part of it is cacheable, which no UPDATE is, whatever `Cached` says.
    async fn lower_unread(
        conn: &mut Conn,
        side: (UserId, UserId),
        n: i64,
        _read_muted: bool,
    ) -> QueryResult<bool> {
        let muted: Vec<bool> = H::statement(Cached(
            diesel::update(conv::table.find(side))
                .set(conv::unread_count.eq(conv::unread_count - n))
                .returning(conv::muted),
        ))
        .load(conn)
        .await?;
        Ok(muted.contains(&true))
    }

    /// Makes `id`, sent at `sent_at`, the latest message on both sides' rows, and counts it
    /// unread for `recipient`; whether `recipient` muted the conversation.
    async fn set_latest_message(
        conn: &mut Conn,
        sender: UserId,
        recipient: UserId,
        id: MessageId,
        sent_at: UtcTimestamp,
    ) -> QueryResult<bool> {
        let sides: Vec<(UserId, bool)> = H::statement(Cached(
            diesel::update(both_sides(sender, recipient))
                .set(latest_message(recipient, id, sent_at))
                .returning((conv::owner_id, conv::muted)),
        ))
        .load(conn)
        .await?;
        Ok(sides.contains(&(recipient, true)))
    }

    /// Sets the text of message `id` and its `edited_at`, if `sender` sent it and has not
    /// deleted it; the message as edited.
    async fn update_sent(
        conn: &mut Conn,
        sender: UserId,
        id: MessageId,
        content: &str,
        at: UtcTimestamp,
    ) -> QueryResult<Option<Message>> {
        H::statement(
            diesel::update(still_sent_by(id, sender))
                .set((dm::content.eq(content), dm::edited_at.eq(at)))
                .returning(Message::as_returning()),
        )
        .get_result(conn)
        .await
        .optional()
    }

    /// Deletes message `id` if `sender` sent it and has not deleted it; the row as it was
    /// last stored.
    async fn delete_sent(
        conn: &mut Conn,
        sender: UserId,
        id: MessageId,
    ) -> QueryResult<Option<StoredMessage>> {
        H::statement(
            diesel::delete(still_sent_by(id, sender)).returning(StoredMessage::as_returning()),
        )
        .get_result(conn)
        .await
        .optional()
    }

    /// Marks message `id` read if it is unread and its recipient still sees it; the
    /// message if it changed (see `mark_read_returning`).
    async fn mark_one_read(
        conn: &mut Conn,
        id: MessageId,
        at: DateTime<Utc>,
    ) -> QueryResult<(Vec<Message>, Option<bool>)> {
        let filter = dm::id.eq(id).and(markable());
        Self::mark_read_returning(conn, filter, at, true, true).await
    }

    /// Marks read the messages `filter` selects and returns exactly the ones it changed;
    /// kept prepared when `fixed_text` (see `Cached`). Whether their recipient muted the
    /// conversation is left to `lower_unread`, whose statement returns it. One statement
    /// whatever `_few` says.
    async fn mark_read_returning(
        conn: &mut Conn,
        filter: impl MarkFilter<super::Backend>,
        at: DateTime<Utc>,
        fixed_text: bool,
        _few: bool,
    ) -> QueryResult<(Vec<Message>, Option<bool>)> {
        let update = diesel::update(dm::table.filter(filter))
            .set(dm::read_at.eq(UtcTimestamp(at)))
            .returning(Message::as_returning());
        if fixed_text {
            Ok((H::statement(Cached(update)).load(conn).await?, None))
        } else {
            Ok((H::statement(update).load(conn).await?, None))
        }
    }
}
