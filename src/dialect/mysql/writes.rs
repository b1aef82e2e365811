//! MySQL's writes without `RETURNING`: each locks what it will change, changes it, and
//! reads back what it changed, in the same transaction.

use chrono::{DateTime, Utc};
use diesel::mysql::Mysql as Backend;
use diesel::prelude::*;
use diesel::QueryResult;

use super::execution::RunQueryDsl;
use super::queries::{Dialect, Writes};
use super::{Conn, Hooks};
use crate::dialect::mysql_statements::last_insert_id;
use crate::message::{NewMessage, StoredMessage};
use crate::operations::with_recipient_mute;
use crate::operations::MarkFilter;
use crate::operations::MARK_CHUNK;
use crate::schema::direct_message_conversations as conv;
use crate::schema::direct_messages as dm;
use crate::schema::UtcTimestamp;
use crate::{Message, MessageId, UserId};

/// The messages of these ids (at most [`MARK_CHUNK`]), by primary key.
pub(super) async fn messages_by_id(
    conn: &mut Conn,
    ids: &[MessageId],
) -> QueryResult<Vec<Message>> {
    Hooks::statement(
        dm::table
            .filter(dm::id.eq_any(ids))
            .select(Message::as_select()),
    )
    .load(conn)
    .await
}

/// Marks read, at `at`, the messages `ids` (at most [`MARK_CHUNK`]), which this
/// transaction has locked.
pub(super) async fn mark_ids(
    conn: &mut Conn,
    ids: &[MessageId],
    at: DateTime<Utc>,
) -> QueryResult<()> {
    Hooks::statement(
        diesel::update(dm::table.filter(dm::id.eq_any(ids))).set(dm::read_at.eq(UtcTimestamp(at))),
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Appends the messages `ids` (at most [`MARK_CHUNK`]) to `marked`, read by primary key;
/// whether the recipient muted the conversation of any of them.
pub(super) async fn read_back(
    conn: &mut Conn,
    ids: &[MessageId],
    marked: &mut Vec<Message>,
) -> QueryResult<bool> {
    let rows: Vec<(Message, Option<bool>)> = Hooks::statement(
        with_recipient_mute()
            .filter(dm::id.eq_any(ids))
            .select((Message::as_select(), conv::muted.nullable())),
    )
    .load(conn)
    .await?;
    let mut muted = false;
    for (message, side_muted) in rows {
        muted |= side_muted == Some(true);
        marked.push(message);
    }
    Ok(muted)
}

/// Whether the owner of `side`'s conversation row muted it (`false` without a row).
pub(super) async fn muted(conn: &mut Conn, side: (UserId, UserId)) -> QueryResult<bool> {
    let muted: Option<bool> = Hooks::statement(conv::table.find(side).select(conv::muted))
        .get_result(conn)
        .await
        .optional()?;
    Ok(muted.unwrap_or(false))
}

/// Message `id` as last committed, locked, if `sender` sent it and still sees it.
pub(super) async fn lock_sent(
    conn: &mut Conn,
    sender: UserId,
    id: MessageId,
) -> QueryResult<Option<StoredMessage>> {
    Hooks::statement(
        crate::operations::still_sent_by(id, sender)
            .select(StoredMessage::as_select())
            .for_update(),
    )
    .get_result(conn)
    .await
    .optional()
}

/// MySQL has no `RETURNING`: each write reads back what it changed.
impl Writes for Hooks {
    /// Inserts a message; its id is `LAST_INSERT_ID()` on this connection. Called inside the
    /// write transaction of `send`, so the id is ours and never "the newest row", which
    /// another writer may own. The rest of the row is what was inserted: no read back.
    async fn insert_message(conn: &mut Conn, new: &NewMessage<'_>) -> QueryResult<Message> {
        Hooks::statement(diesel::insert_into(dm::table).values(new))
            .execute(conn)
            .await?;
        let id: u64 = Hooks::statement(diesel::select(last_insert_id()))
            .get_result(conn)
            .await?;
        let id = MessageId::try_from(id)
            .map_err(|e| diesel::result::Error::DeserializationError(Box::new(e)))?;
        Ok(Message {
            id,
            sender_id: new.sender_id,
            recipient_id: new.recipient_id,
            content: new.content.to_owned(),
            sent_at: new.sent_at.0,
            read_at: None,
            edited_at: None,
        })
    }

    /// Marks read the messages `filter` selects and returns exactly the ones it changed, and
    /// whether their recipient muted the conversation (read with the rows, which spares
    /// `lower_unread` a statement: no `RETURNING` here). The rows are locked first, so the
    /// UPDATE changes exactly the ones read.
    ///
    /// When the caller expects `few`, the locking read takes the whole rows with the mute, and
    /// the UPDATE follows. Otherwise the ids come first, from the unread index alone (a
    /// locking read of whole rows drew MariaDB into reading the whole table for a flooded
    /// user), then each chunk of them is marked and read back by primary key, however many
    /// messages a flooded user has. Every statement is prepared afresh here, whatever its text.
    async fn mark_read_returning(
        conn: &mut Conn,
        filter: impl MarkFilter<Backend>,
        at: DateTime<Utc>,
        _fixed_text: bool,
        few: bool,
    ) -> QueryResult<(Vec<Message>, Option<bool>)> {
        if few {
            let rows: Vec<(Message, Option<bool>)> = Hooks::statement(
                with_recipient_mute()
                    .filter(filter)
                    .select((Message::as_select(), conv::muted.nullable()))
                    .order(dm::id.asc())
                    .for_update(),
            )
            .load(conn)
            .await?;
            let ids: Vec<MessageId> = rows.iter().map(|(m, _)| m.id).collect();
            for chunk in ids.chunks(MARK_CHUNK) {
                mark_ids(conn, chunk, at).await?;
            }
            let mut muted = false;
            let marked = rows
                .into_iter()
                .map(|(message, side_muted)| {
                    muted |= side_muted == Some(true);
                    Message {
                        read_at: Some(at),
                        ..message
                    }
                })
                .collect();
            return Ok((marked, Some(muted)));
        }
        let ids: Vec<MessageId> = Hooks::statement(
            dm::table
                .filter(filter)
                .select(dm::id)
                .order(dm::id.asc())
                .for_update(),
        )
        .load(conn)
        .await?;
        let mut marked = Vec::with_capacity(ids.len());
        let mut muted = false;
        for chunk in ids.chunks(MARK_CHUNK) {
            mark_ids(conn, chunk, at).await?;
            muted |= read_back(conn, chunk, &mut marked).await?;
        }
        Ok((marked, Some(muted)))
    }

    /// Marks message `id` read if it is unread and its recipient still sees it, by one
    /// guarded UPDATE of its row (which changes it or not: nothing to lock first), and reads
    /// it back with its recipient's mute if it changed.
    async fn mark_one_read(
        conn: &mut Conn,
        id: MessageId,
        at: DateTime<Utc>,
    ) -> QueryResult<(Vec<Message>, Option<bool>)> {
        let changed = Hooks::statement(
            diesel::update(dm::table.filter(dm::id.eq(id).and(crate::operations::markable())))
                .set(dm::read_at.eq(UtcTimestamp(at))),
        )
        .execute(conn)
        .await?;
        let mut marked = Vec::with_capacity(changed);
        let muted = changed > 0 && read_back(conn, &[id], &mut marked).await?;
        Ok((marked, Some(muted)))
    }

    /// Lowers the unread counter of `side`'s conversation row by `n`; whether its owner muted
    /// it when `read_muted` (read after, in the same transaction: no `RETURNING` here), else
    /// `false`.
    async fn lower_unread(
        conn: &mut Conn,
        side: (UserId, UserId),
        n: i64,
        read_muted: bool,
    ) -> QueryResult<bool> {
        Hooks::statement(
            diesel::update(conv::table.find(side))
                .set(conv::unread_count.eq(conv::unread_count - n)),
        )
        .execute(conn)
        .await?;
        if !read_muted {
            return Ok(false);
        }
        muted(conn, side).await
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
        Hooks::statement(
            diesel::update(crate::operations::both_sides(sender, recipient))
                .set(crate::operations::latest_message(recipient, id, sent_at)),
        )
        .execute(conn)
        .await?;
        muted(conn, (recipient, sender)).await
    }

    /// Deletes message `id` if `sender` sent it and has not deleted it; the row as it was last
    /// stored, read under its lock first (no `RETURNING` here).
    async fn delete_sent(
        conn: &mut Conn,
        sender: UserId,
        id: MessageId,
    ) -> QueryResult<Option<StoredMessage>> {
        let Some(stored) = lock_sent(conn, sender, id).await? else {
            return Ok(None);
        };
        Hooks::statement(diesel::delete(dm::table.find(id)))
            .execute(conn)
            .await?;
        Ok(Some(stored))
    }

    /// Sets the text of message `id` and its `edited_at`, if `sender` sent it and has not
    /// deleted it; the message as edited (read under its lock first: no `RETURNING` here).
    async fn update_sent(
        conn: &mut Conn,
        sender: UserId,
        id: MessageId,
        content: &str,
        at: UtcTimestamp,
    ) -> QueryResult<Option<Message>> {
        let Some(stored) = lock_sent(conn, sender, id).await? else {
            return Ok(None);
        };
        Hooks::statement(
            diesel::update(dm::table.find(id)).set((dm::content.eq(content), dm::edited_at.eq(at))),
        )
        .execute(conn)
        .await?;
        Ok(Some(Message {
            content: content.to_owned(),
            edited_at: Some(at.0),
            ..stored.message
        }))
    }
}
