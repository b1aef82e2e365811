//! MySQL and MariaDB: no `RETURNING`, so an insert reads its row back by
//! `LAST_INSERT_ID()` on the same connection and a mark-read locks what it will change
//! first; write transactions run at READ COMMITTED and are retried on deadlocks and
//! Galera conflicts; every statement is prepared afresh; migrations hold `GET_LOCK`.

use chrono::{DateTime, Utc};
use diesel::mysql::Mysql as Backend;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::result::DatabaseErrorKind;
use diesel::sql_types::{Integer, Text};
use diesel::QueryResult;

use super::{self as execution, MysqlConn as Conn};
use crate::message::{NewMessage, StoredMessage};
use crate::operations::MARK_CHUNK;
use crate::operations::{Bind, Body, MarkFilter};
use crate::retry::Retry;
use crate::schema::direct_message_conversations as conv;
use crate::schema::direct_messages as dm;
use crate::schema::UtcTimestamp;
use crate::{Error, Message, MessageId, Result, UserId};
use execution::RunQueryDsl;

// The shared operations, compiled for `Conn`: one text, mounted once per backend and flavour.
#[allow(clippy::duplicate_mod)]
#[path = "../operations/queries.rs"]
mod operations;

#[allow(clippy::duplicate_mod)]
#[path = "../operations/migrate.rs"]
mod migrate;

#[allow(clippy::duplicate_mod)]
#[path = "../operations/transactions.rs"]
mod transactions;

/// The name of the lock `run_migrations` holds, and how long it waits for it (seconds).
const MIGRATION_LOCK: &str = "directmessages.migrations";
const MIGRATION_LOCK_WAIT_SECONDS: i32 = 300;

diesel::define_sql_function! {
    /// The id the last INSERT on this connection generated.
    fn last_insert_id() -> diesel::sql_types::Unsigned<diesel::sql_types::BigInt>;
}

diesel::define_sql_function! {
    /// Takes a named lock of the server for this session: 1, or 0 after `timeout` seconds.
    fn get_lock(name: Text, timeout: Integer) -> Nullable<Integer>;
}

diesel::define_sql_function! {
    /// Releases a lock taken with `get_lock`.
    fn release_lock(name: Text) -> Nullable<Integer>;
}

/// What begins the inbox's own transactions on MySQL, one statement at a time (the C
/// client waits forever for the rest of a multi-statement batch that a `KILL QUERY` cut
/// off halfway).
///
/// - `autocommit = 0` and a guard savepoint: on MariaDB Galera, a transaction aborted by a
///   conflicting write from another node can be rolled back without the client ever being
///   told (the abort lands between two statements of a prepared-statement exchange), and
///   every later statement would then commit on its own: half a send, a counter moved for
///   a message left unread. With autocommit off, those statements pile up in a new
///   transaction instead, and the guard savepoint, which only the original transaction
///   has, tells the two apart before COMMIT. (With autocommit off, the savepoint also
///   opens the transaction: no `BEGIN` is needed.)
/// - READ COMMITTED: every statement sees what committed before it (as on PostgreSQL),
///   and InnoDB takes no gap locks, which at REPEATABLE READ make unrelated new
///   conversations wait on and deadlock with each other.
const BEGIN: [&str; 2] = [
    "SET autocommit = 0",
    "SET TRANSACTION ISOLATION LEVEL READ COMMITTED",
];
/// The statement that opens the transaction, as Diesel records it.
const GUARD: &str = "SAVEPOINT directmessages_guard";
/// What ends a failed one, and then gives the session back its autocommit.
const ROLLBACK: [&str; 2] = ["ROLLBACK", "SET autocommit = 1"];

/// Runs the outermost attempt of an inbox transaction: `BEGIN` (see above), the body,
/// then the guarded commit; a failure is rolled back and the session gets its autocommit
/// back.
///
/// Until the guard savepoint is taken, the transaction record says "broken": if the
/// future is dropped there (an async caller gone), a pool discards the connection rather
/// than hand out a session left with autocommit off.
async fn outermost<'a, T, F>(conn: &mut Conn, f: &mut F) -> Result<T>
where
    F: for<'c> FnMut(&'c mut Conn) -> Body<'a, 'c, T>,
{
    execution::status(conn).set_in_error();
    let mut begun = Ok(());
    for sql in BEGIN {
        begun = control(conn, sql).await;
        if begun.is_err() {
            break;
        }
    }
    let result = match begun {
        Ok(()) => {
            *execution::status(conn) = Default::default();
            match open_guard(conn).await {
                Ok(()) => match f(conn).await {
                    Ok(value) => commit_guarded(conn).await.map(|()| value),
                    Err(e) => Err(explain_failure(conn, e).await),
                },
                Err(e) => Err(e.into()),
            }
        }
        Err(e) => Err(e.into()),
    };
    // The commit gave the session its autocommit back; after a failure, or if that was
    // cut off, the transaction is rolled back first.
    let first: &[&str] = if result.is_ok() { &[] } else { &ROLLBACK };
    transactions::end_transaction(conn, first, &ROLLBACK).await;
    result
}

/// Sends one statement of the guarded transaction's control (no binds, no result) in the
/// fewest round trips the flavour allows: prepared where Diesel's blocking connection
/// would wrap a batch in switching multi-statement support on and off (three round trips
/// where a statement prepared, executed and closed costs two), as one query on the async
/// connection. Either way it is one statement, never a batch (see [`BEGIN`]).
async fn control(conn: &mut Conn, sql: &'static str) -> QueryResult<()> {
    if execution::PREPARED_CONTROL {
        diesel::sql_query(sql).execute(conn).await.map(drop)
    } else {
        execution::batch_execute(conn, sql).await
    }
}

/// Takes the [`GUARD`] savepoint, which opens the transaction, and records it in the
/// connection's transaction status (as `begin_with` does, with the savepoint sent by
/// [`control`]).
async fn open_guard(conn: &mut Conn) -> QueryResult<()> {
    if !execution::PREPARED_CONTROL {
        return execution::begin_with(conn, GUARD).await;
    }
    control(conn, GUARD).await?;
    match execution::status(conn) {
        diesel::connection::TransactionManagerStatus::Valid(status) => status
            .change_transaction_depth(diesel::connection::TransactionDepthChange::IncreaseDepth),
        diesel::connection::TransactionManagerStatus::InError => {
            Err(diesel::result::Error::BrokenTransactionManager)
        }
    }
}

/// The error to report for a failed body: when the transaction is no longer the one
/// [`GUARD`] opened, whatever went wrong (a row the transaction itself wrote "not found")
/// followed from a silent abort, and the body is run again.
async fn explain_failure(conn: &mut Conn, error: Error) -> Error {
    if crate::retry::is_transient(&error) {
        return error;
    }
    match execution::batch_execute(conn, "ROLLBACK TO SAVEPOINT directmessages_guard").await {
        Ok(()) => error,
        Err(lost) => transaction_lost(&lost),
    }
}

/// The transient error of a transaction that a conflicting one aborted without telling.
fn transaction_lost(cause: &diesel::result::Error) -> Error {
    Error::Database(diesel::result::Error::DatabaseError(
        DatabaseErrorKind::SerializationFailure,
        Box::new(format!(
            "the transaction was aborted by a conflicting one and rolled back ({cause}); \
             try restarting transaction"
        )),
    ))
}

/// Commits the inbox's transaction if it is still the one [`GUARD`] opened, by switching
/// autocommit back on, which commits it. That statement is a prepared one, so that a
/// deadlock or a Galera certification conflict reported at commit keeps its error code
/// (1213 on the blocking client; the async client's is recognized by its message) and is
/// retried.
async fn commit_guarded(conn: &mut Conn) -> Result<()> {
    if let Err(lost) = control(conn, "RELEASE SAVEPOINT directmessages_guard").await {
        return Err(transaction_lost(&lost));
    }
    // Turning autocommit back on commits the transaction: one round trip for both.
    diesel::sql_query("SET autocommit = 1")
        .execute(conn)
        .await?;
    Ok(())
}

/// Applies the migrations holding `GET_LOCK`, so instances starting together migrate one
/// after the other (DDL commits at once on MySQL, so no transaction could).
async fn migrate(conn: &mut Conn) -> Result<()> {
    let locked: Option<i32> = statement(diesel::select(get_lock(
        MIGRATION_LOCK,
        MIGRATION_LOCK_WAIT_SECONDS,
    )))
    .get_result(conn)
    .await?;
    if locked != Some(1) {
        return Err(Error::Migration(format!(
            "another connection held the migration lock for {MIGRATION_LOCK_WAIT_SECONDS} s"
        )));
    }
    let applied = migrate::apply(
        conn,
        crate::migrations::MYSQL,
        crate::migrations::MYSQL_LISTED,
    )
    .await;
    let released = statement(diesel::select(release_lock(MIGRATION_LOCK)))
        .get_result::<Option<i32>>(conn)
        .await;
    applied?;
    released?;
    Ok(())
}

/// Statements outside a transaction of the inbox's are not retried: MySQL waits for the
/// locks they need (`innodb_lock_wait_timeout`).
const PLAIN_RETRY: Option<Retry> = None;

/// Runs `f` in a guarded transaction retried on deadlocks and Galera conflicts (a
/// savepoint inside the caller's own).
async fn write_transaction<'a, T, F>(conn: &mut Conn, f: F) -> Result<T>
where
    T: Send + 'a,
    F: for<'c> FnMut(&'c mut Conn) -> Body<'a, 'c, T> + Send,
{
    transactions::retrying(conn, Retry::TRANSIENT, f).await
}

/// Inserts a message; its id is `LAST_INSERT_ID()` on this connection. Called inside the
/// write transaction of `send`, so the id is ours and never "the newest row", which
/// another writer may own. The rest of the row is what was inserted: no read back.
async fn insert_message(conn: &mut Conn, new: &NewMessage<'_>) -> QueryResult<Message> {
    statement(diesel::insert_into(dm::table).values(new))
        .execute(conn)
        .await?;
    let id: u64 = statement(diesel::select(last_insert_id()))
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

/// The unread messages of `user`: their ids first, from `direct_messages_unread` alone
/// (every column the condition needs is in it), then the rows by primary key. Read in
/// one statement, a user holding a tenth of the table's unread messages drew MariaDB into
/// reading the whole table.
async fn unread_messages(conn: &mut Conn, user: UserId) -> QueryResult<Vec<Message>> {
    let ids: Vec<MessageId> = statement(crate::operations::unread_of(user).select(dm::id))
        .load(conn)
        .await?;
    let mut unread = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(MARK_CHUNK) {
        unread.extend(messages_by_id(conn, chunk).await?);
    }
    Ok(unread)
}

/// The messages of these ids (at most [`MARK_CHUNK`]), by primary key.
async fn messages_by_id(conn: &mut Conn, ids: &[MessageId]) -> QueryResult<Vec<Message>> {
    statement(
        dm::table
            .filter(dm::id.eq_any(ids))
            .select(Message::as_select()),
    )
    .load(conn)
    .await
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
    filter: impl MarkFilter<Backend> + AppearsOnTable<WithRecipientMute>,
    at: DateTime<Utc>,
    _fixed_text: bool,
    few: bool,
) -> QueryResult<(Vec<Message>, Option<bool>)> {
    if few {
        let rows: Vec<(Message, Option<bool>)> = statement(
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
    let ids: Vec<MessageId> = statement(
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

/// Marks read, at `at`, the messages `ids` (at most [`MARK_CHUNK`]), which this
/// transaction has locked.
async fn mark_ids(conn: &mut Conn, ids: &[MessageId], at: DateTime<Utc>) -> QueryResult<()> {
    statement(
        diesel::update(dm::table.filter(dm::id.eq_any(ids))).set(dm::read_at.eq(UtcTimestamp(at))),
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks message `id` read if it is unread and its recipient still sees it, by one
/// guarded UPDATE of its row (which changes it or not: nothing to lock first), and reads
/// it back with its recipient's mute if it changed.
async fn mark_one_read(
    conn: &mut Conn,
    id: MessageId,
    at: DateTime<Utc>,
) -> QueryResult<(Vec<Message>, Option<bool>)> {
    let changed = statement(
        diesel::update(dm::table.filter(dm::id.eq(id).and(crate::operations::markable())))
            .set(dm::read_at.eq(UtcTimestamp(at))),
    )
    .execute(conn)
    .await?;
    let mut marked = Vec::with_capacity(changed);
    let muted = changed > 0 && read_back(conn, &[id], &mut marked).await?;
    Ok((marked, Some(muted)))
}

/// What [`with_recipient_mute`] reads from, for the bound on a filter of it.
type WithRecipientMute = diesel::helper_types::LeftJoinQuerySource<
    dm::table,
    conv::table,
    diesel::dsl::And<
        diesel::dsl::Eq<conv::owner_id, dm::recipient_id>,
        diesel::dsl::Eq<conv::partner_id, dm::sender_id>,
    >,
>;

/// Messages with their recipient's conversation row, for its mute.
#[diesel::dsl::auto_type(no_type_alias)]
fn with_recipient_mute() -> _ {
    let recipient_side = conv::owner_id
        .eq(dm::recipient_id)
        .and(conv::partner_id.eq(dm::sender_id));
    dm::table.left_join(conv::table.on(recipient_side))
}

/// Appends the messages `ids` (at most [`MARK_CHUNK`]) to `marked`, read by primary key;
/// whether the recipient muted the conversation of any of them.
async fn read_back(
    conn: &mut Conn,
    ids: &[MessageId],
    marked: &mut Vec<Message>,
) -> QueryResult<bool> {
    let rows: Vec<(Message, Option<bool>)> = statement(
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

/// The message as last committed: a locking read sees it even inside a caller's
/// REPEATABLE READ transaction, which reads from the snapshot of its first read.
async fn find_current(conn: &mut Conn, id: MessageId) -> QueryResult<Option<StoredMessage>> {
    statement(
        dm::table
            .find(id)
            .select(StoredMessage::as_select())
            .for_update(),
    )
    .get_result(conn)
    .await
    .optional()
}

crate::dialect::row_lock_hook!();

/// The search index (InnoDB `FULLTEXT`); `+ 0` keeps MariaDB on the full-text index:
/// offered a range of the primary key, it may walk every older row instead.
const SEARCH: crate::operations::SearchSql = crate::operations::SearchSql {
    insert: "INSERT INTO direct_message_search (message_id, owner_id, terms) \
             VALUES (?, ?, ?), (?, ?, ?)",
    update: "UPDATE direct_message_search SET terms = ? WHERE message_id = ? AND owner_id = ?",
    delete: "DELETE FROM direct_message_search WHERE message_id = ? AND owner_id = ?",
    select: "SELECT message_id AS id FROM direct_message_search \
             WHERE MATCH (terms) AGAINST (? IN BOOLEAN MODE) AND message_id + 0 < ? \
             ORDER BY message_id DESC LIMIT ?",
    recent: Some(
        "SELECT message_id AS id, terms FROM direct_message_search \
         WHERE owner_id = ? AND message_id < ? ORDER BY owner_id DESC, message_id DESC LIMIT ?",
    ),
};

/// The key of a side's search row: the message and the owner.
fn search_key(id: MessageId, owner: UserId, _recipient_side: bool) -> Vec<Bind> {
    vec![Bind::Int(id), Bind::Int(owner)]
}

/// The key below which a search with cursor `before` looks.
fn search_below(before: MessageId) -> i64 {
    before
}

/// A search in InnoDB's boolean mode.
fn search_match(terms: &crate::search::Terms) -> String {
    terms.boolean_mode()
}

// No data-modifying CTEs, and an insert reads its id back: the general path of `send`.
crate::dialect::no_one_statement_send!();

/// The inbox's statements on MySQL: prepared afresh each time, never taken from the
/// connection's statement cache.
fn statement<Q>(query: Q) -> Fresh<Q> {
    Fresh(query)
}

/// A statement the connection must not keep in its prepared-statement cache.
///
/// When a statement is interrupted (`max_statement_time`, `KILL QUERY`, a deadlock
/// detected after the server began its result set), the MySQL/MariaDB C client leaves that
/// prepared statement in a state where its next execution waits for a reply that never
/// comes: a cached statement would hang the connection for good. A statement prepared
/// afresh and closed after use is unaffected.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fresh<Q>(Q);

impl<Q: Query> Query for Fresh<Q> {
    type SqlType = Q::SqlType;
}

impl<Q> QueryId for Fresh<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: QueryFragment<Backend>> QueryFragment<Backend> for Fresh<Q> {
    fn walk_ast<'b>(&'b self, mut pass: AstPass<'_, 'b, Backend>) -> QueryResult<()> {
        pass.unsafe_to_cache_prepared();
        self.0.walk_ast(pass)
    }
}

impl<Q, C> diesel::RunQueryDsl<C> for Fresh<Q> {}

/// Lowers the unread counter of `side`'s conversation row by `n`; whether its owner muted
/// it when `read_muted` (read after, in the same transaction: no `RETURNING` here), else
/// `false`.
async fn lower_unread(
    conn: &mut Conn,
    side: (UserId, UserId),
    n: i64,
    read_muted: bool,
) -> QueryResult<bool> {
    statement(
        diesel::update(conv::table.find(side)).set(conv::unread_count.eq(conv::unread_count - n)),
    )
    .execute(conn)
    .await?;
    if !read_muted {
        return Ok(false);
    }
    muted(conn, side).await
}

/// Whether the owner of `side`'s conversation row muted it (`false` without a row).
async fn muted(conn: &mut Conn, side: (UserId, UserId)) -> QueryResult<bool> {
    let muted: Option<bool> = statement(conv::table.find(side).select(conv::muted))
        .get_result(conn)
        .await
        .optional()?;
    Ok(muted.unwrap_or(false))
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
    statement(
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
    statement(diesel::delete(dm::table.find(id)))
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
    statement(
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

/// Message `id` as last committed, locked, if `sender` sent it and still sees it.
async fn lock_sent(
    conn: &mut Conn,
    sender: UserId,
    id: MessageId,
) -> QueryResult<Option<StoredMessage>> {
    statement(
        crate::operations::still_sent_by(id, sender)
            .select(StoredMessage::as_select())
            .for_update(),
    )
    .get_result(conn)
    .await
    .optional()
}
