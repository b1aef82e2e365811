//! MySQL and MariaDB: no `RETURNING`, so an insert reads its row back by
//! `LAST_INSERT_ID()` on the same connection and a mark-read locks what it will change
//! first; write transactions run at READ COMMITTED and are retried on deadlocks and
//! Galera conflicts; every statement is prepared afresh; migrations hold `GET_LOCK`.

use diesel::mysql::Mysql as Backend;
use diesel::prelude::*;
use diesel::QueryResult;

use super::{self as execution, MysqlConn as Conn};
use crate::message::StoredMessage;
use crate::operations::Body;
use crate::operations::SearchSql;
use crate::operations::MARK_CHUNK;
use crate::retry::Retry;
use crate::schema::direct_messages as dm;
use crate::{Error, Message, MessageId, Result, UserId};
use execution::RunQueryDsl;

// The shared text, for `Conn`.
#[path = "../../queries/mod.rs"]
mod queries;
#[path = "../row_lock.rs"]
mod row_lock;

mod guard;
mod writes;

use guard::{commit_guarded, control, explain_failure, open_guard, BEGIN, ROLLBACK};
use writes::messages_by_id;

use crate::dialect::mysql_statements::{get_lock, release_lock, Fresh};
use queries::{transactions, Dialect};

/// The name of the lock `run_migrations` holds, and how long it waits for it (seconds).
const MIGRATION_LOCK: &str = "directmessages.migrations";
const MIGRATION_LOCK_WAIT_SECONDS: i32 = 300;

/// MySQL's side of the contract with the shared text.
#[derive(Debug)]
struct Hooks;

impl Dialect for Hooks {
    /// Statements outside a transaction of the inbox's are not retried: MySQL waits for the
    /// locks they need (`innodb_lock_wait_timeout`).
    const PLAIN_RETRY: Option<Retry> = None;

    /// Guarded transactions are run again after deadlocks and Galera conflicts.
    const RETRY: Retry = Retry::TRANSIENT;

    /// The search index (InnoDB `FULLTEXT`); `+ 0` keeps MariaDB on the full-text index:
    /// offered a range of the primary key, it may walk every older row instead.
    const SEARCH: SearchSql = SearchSql {
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

    type Writes = Self;

    type Statement<Q> = Fresh<Q>;

    /// The inbox's statements on MySQL: prepared afresh each time, never taken from the
    /// connection's statement cache.
    fn statement<Q>(query: Q) -> Fresh<Q> {
        Fresh(query)
    }

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

    /// Applies the migrations holding `GET_LOCK`, so instances starting together migrate one
    /// after the other (DDL commits at once on MySQL, so no transaction could).
    async fn migrate(conn: &mut Conn) -> Result<()> {
        let locked: Option<i32> = Hooks::statement(diesel::select(get_lock(
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
        let applied = queries::apply_migrations(
            conn,
            crate::migrations::MYSQL,
            crate::migrations::MYSQL_LISTED,
        )
        .await;
        let released = Hooks::statement(diesel::select(release_lock(MIGRATION_LOCK)))
            .get_result::<Option<i32>>(conn)
            .await;
        applied?;
        released?;
        Ok(())
    }

    /// The unread messages of `user`: their ids first, from `direct_messages_unread` alone
    /// (every column the condition needs is in it), then the rows by primary key. Read in
    /// one statement, a user holding a tenth of the table's unread messages drew MariaDB into
    /// reading the whole table.
    async fn unread_messages(conn: &mut Conn, user: UserId) -> QueryResult<Vec<Message>> {
        let ids: Vec<MessageId> =
            Hooks::statement(crate::operations::unread_of(user).select(dm::id))
                .load(conn)
                .await?;
        let mut unread = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(MARK_CHUNK) {
            unread.extend(messages_by_id(conn, chunk).await?);
        }
        Ok(unread)
    }

    /// The message as last committed: a locking read sees it even inside a caller's
    /// REPEATABLE READ transaction, which reads from the snapshot of its first read.
    async fn find_current(conn: &mut Conn, id: MessageId) -> QueryResult<Option<StoredMessage>> {
        Hooks::statement(
            dm::table
                .find(id)
                .select(StoredMessage::as_select())
                .for_update(),
        )
        .get_result(conn)
        .await
        .optional()
    }

    /// A search in InnoDB's boolean mode.
    fn search_match(terms: &crate::search::Terms) -> String {
        terms.boolean_mode()
    }

    /// Locks the `(lo, hi)` row of a conversation by its primary key, until the transaction
    /// ends, and reads it.
    async fn lock_conversation(
        conn: &mut Conn,
        lo: UserId,
        hi: UserId,
        blocker: UserId,
        blocked: UserId,
    ) -> QueryResult<Option<crate::operations::LockedConversation>> {
        row_lock::lock_conversation(conn, lo, hi, blocker, blocked).await
    }
}
