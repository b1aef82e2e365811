//! The only place that knows SQLite from PostgreSQL from MySQL: one file per backend with
//! the few hooks that differ (how a statement is prepared, how a write transaction begins
//! and ends, how an insert and a guarded mark-read return their rows, how a conversation
//! is locked, how migrations are serialized).
//!
//! Each execution flavour (`src/execution`) mounts each dialect file with `#[path]`,
//! naming its connection type (`PgConn`, …); the dialect file in turn mounts the shared
//! operations (`src/operations/queries.rs`), the transaction text and the migration
//! runner. SQLite's async connection runs the blocking operations on a blocking thread
//! (`sqlite_async.rs`).

#[cfg(feature = "postgres")]
pub(crate) mod postgres_send;
#[cfg(all(feature = "sqlite", feature = "diesel-async"))]
mod sqlite_async;
#[cfg(all(feature = "sqlite", any(feature = "r2d2", feature = "diesel-async")))]
mod sqlite_pool;

#[cfg(all(feature = "sqlite", any(feature = "r2d2", feature = "diesel-async")))]
pub use sqlite_pool::SqliteCustomizer;

// SQLite would compile a statement again for each value bound to a bare `LIMIT ?`, or
// (with statistics) compared with an indexed column (see `Limited` and `Key`); the other
// backends take the values as they are.
#[cfg(feature = "sqlite")]
impl crate::operations::BindSyntax for diesel::sqlite::Sqlite {
    const LIMIT_AFTER: &'static str = " + 0";
    const KEY_AFTER: &'static str = " + 0";
}
#[cfg(feature = "postgres")]
impl crate::operations::BindSyntax for diesel::pg::Pg {}
#[cfg(feature = "mysql")]
impl crate::operations::BindSyntax for diesel::mysql::Mysql {}

/// The hooks of the backends with `RETURNING` (SQLite 3.35+ and PostgreSQL): an insert
/// and a guarded mark-read return their rows from the statement itself.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
macro_rules! returning_hooks {
    () => {
        /// Inserts a message and returns the stored row.
        async fn insert_message(conn: &mut Conn, new: &NewMessage<'_>) -> QueryResult<Message> {
            statement(crate::operations::Cached(
                diesel::insert_into(dm::table)
                    .values(new)
                    .returning(Message::as_returning()),
            ))
            .get_result(conn)
            .await
        }

        /// Lowers the unread counter of `side`'s conversation row by `n`; whether its
        /// owner muted it (read by the same statement, whether or not `_read_muted`).
        ///
        /// This and `set_latest_message` are loaded through `RETURNING` (which also
        /// reads the flag): Diesel keeps a statement it executes (rather than loads)
        /// prepared only if every part of it is cacheable, which no UPDATE is, whatever
        /// `Cached` says.
        async fn lower_unread(
            conn: &mut Conn,
            side: (UserId, UserId),
            n: i64,
            _read_muted: bool,
        ) -> QueryResult<bool> {
            let muted: Vec<bool> = statement(crate::operations::Cached(
                diesel::update(conv::table.find(side))
                    .set(conv::unread_count.eq(conv::unread_count - n))
                    .returning(conv::muted),
            ))
            .load(conn)
            .await?;
            Ok(muted.contains(&true))
        }

        /// Makes `id`, sent at `sent_at`, the latest message on both sides' rows, and
        /// counts it unread for `recipient`; whether `recipient` muted the conversation.
        async fn set_latest_message(
            conn: &mut Conn,
            sender: UserId,
            recipient: UserId,
            id: MessageId,
            sent_at: UtcTimestamp,
        ) -> QueryResult<bool> {
            let sides: Vec<(UserId, bool)> = statement(crate::operations::Cached(
                diesel::update(crate::operations::both_sides(sender, recipient))
                    .set(crate::operations::latest_message(recipient, id, sent_at))
                    .returning((conv::owner_id, conv::muted)),
            ))
            .load(conn)
            .await?;
            Ok(sides.contains(&(recipient, true)))
        }

        /// Sets the text of message `id` and its `edited_at`, if `sender` sent it and has
        /// not deleted it; the message as edited.
        async fn update_sent(
            conn: &mut Conn,
            sender: UserId,
            id: MessageId,
            content: &str,
            at: UtcTimestamp,
        ) -> QueryResult<Option<Message>> {
            statement(
                diesel::update(crate::operations::still_sent_by(id, sender))
                    .set((dm::content.eq(content), dm::edited_at.eq(at)))
                    .returning(Message::as_returning()),
            )
            .get_result(conn)
            .await
            .optional()
        }

        /// Deletes message `id` if `sender` sent it and has not deleted it; the row as it
        /// was last stored.
        async fn delete_sent(
            conn: &mut Conn,
            sender: UserId,
            id: MessageId,
        ) -> QueryResult<Option<StoredMessage>> {
            statement(
                diesel::delete(crate::operations::still_sent_by(id, sender))
                    .returning(StoredMessage::as_returning()),
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
            let filter = dm::id.eq(id).and(crate::operations::markable());
            mark_read_returning(conn, filter, at, true, true).await
        }

        /// Marks read the messages `filter` selects and returns exactly the ones it
        /// changed; kept prepared when `fixed_text` (see `Cached`). Whether their
        /// recipient muted the conversation is left to `lower_unread`, whose statement
        /// returns it. One statement whatever `_few` says.
        async fn mark_read_returning(
            conn: &mut Conn,
            filter: impl MarkFilter<Backend>,
            at: DateTime<Utc>,
            fixed_text: bool,
            _few: bool,
        ) -> QueryResult<(Vec<Message>, Option<bool>)> {
            let update = diesel::update(dm::table.filter(filter))
                .set(dm::read_at.eq(UtcTimestamp(at)))
                .returning(Message::as_returning());
            if fixed_text {
                Ok((
                    statement(crate::operations::Cached(update))
                        .load(conn)
                        .await?,
                    None,
                ))
            } else {
                Ok((statement(update).load(conn).await?, None))
            }
        }
    };
}
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) use returning_hooks;

/// The row lock of the backends with `SELECT … FOR UPDATE` (PostgreSQL and MySQL).
#[cfg(any(feature = "postgres", feature = "mysql"))]
macro_rules! row_lock_hook {
    () => {
        /// Locks the `(lo, hi)` row of a conversation, by its primary key, until the
        /// transaction ends, and reads it (with whether `blocker` blocks `blocked`);
        /// `None` when it does not exist yet.
        async fn lock_conversation(
            conn: &mut Conn,
            lo: UserId,
            hi: UserId,
            blocker: UserId,
            blocked: UserId,
        ) -> QueryResult<Option<crate::operations::LockedConversation>> {
            statement(
                crate::operations::conversation_to_lock(lo, hi, blocker, blocked).for_update(),
            )
            .get_result(conn)
            .await
            .optional()
        }
    };
}
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) use row_lock_hook;

/// The send hooks of the backends without a one-statement send (SQLite and MySQL): the
/// general path of `send` does all of it (see PostgreSQL's `send_at_once`).
#[cfg(any(feature = "sqlite", feature = "mysql"))]
macro_rules! no_one_statement_send {
    () => {
        /// Never sends: see `no_one_statement_send`.
        async fn send_at_once(
            _: &mut Conn,
            _: UserId,
            _: UserId,
            _: &str,
        ) -> Result<Option<crate::operations::Sent>> {
            Ok(None)
        }

        /// Never sends: see `no_one_statement_send`.
        async fn send_to_conversation(
            _: &mut Conn,
            _: UserId,
            _: UserId,
            _: &str,
        ) -> Result<Option<crate::operations::Sent>> {
            Ok(None)
        }
    };
}
#[cfg(any(feature = "sqlite", feature = "mysql"))]
pub(crate) use no_one_statement_send;
