//! MySQL and MariaDB: no `RETURNING`, so an insert reads its row back by
//! `LAST_INSERT_ID()` on the same connection, and a mark-read locks what it will change
//! first; write transactions are retried on deadlocks.

use chrono::{DateTime, Utc};
use diesel::expression::{AppearsOnTable, Expression, SelectableExpression};
use diesel::mysql::{Mysql, MysqlConnection};
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel_migrations::{embed_migrations, EmbeddedMigrations};

use super::{apply_migrations, retrying_transaction, InboxConnection};
use crate::queries::prelude::*;

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/mysql");

diesel::define_sql_function! {
    /// The id the last INSERT on this connection generated.
    fn last_insert_id() -> diesel::sql_types::Unsigned<diesel::sql_types::BigInt>;
}

super::own_store!(MysqlConnection);

impl Store for MysqlConnection {
    fn migrate(&mut self) -> Result<()> {
        apply_migrations(self, MIGRATIONS)
    }

    fn write_transaction<T>(&mut self, f: impl FnMut(&mut Self) -> Result<T>) -> Result<T> {
        retrying_transaction(self, f)
    }

    // Called inside the write transaction of `send`, so the row read back is ours and
    // never "the newest row", which another writer may own.
    fn insert_message(&mut self, new: &NewMessage<'_>) -> QueryResult<Message> {
        diesel::insert_into(dm::table).values(new).execute(self)?;
        let id: u64 = diesel::select(last_insert_id()).get_result(self)?;
        let id = MessageId::try_from(id)
            .map_err(|e| diesel::result::Error::DeserializationError(Box::new(e)))?;
        dm::table.find(id).select(Message::as_select()).first(self)
    }

    fn mark_read(
        &mut self,
        filter: ReadFilter<Mysql>,
        at: DateTime<Utc>,
    ) -> QueryResult<Vec<Message>> {
        let ids: Vec<MessageId> = dm::table
            .filter(Uncached(filter))
            .select(dm::id)
            .for_update()
            .load(self)?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        diesel::update(dm::table.filter(dm::id.eq_any(&ids)))
            .set(dm::read_at.eq(Stamp(at)))
            .execute(self)?;
        dm::table
            .filter(dm::id.eq_any(&ids))
            .select(Message::as_select())
            .load(self)
    }

    // REPEATABLE READ reads from the snapshot of the transaction's first read; a locking
    // read sees the latest committed row.
    fn find_current(&mut self, id: MessageId) -> QueryResult<Option<StoredMessage>> {
        dm::table
            .filter(Uncached(dm::id.eq(id)))
            .select(StoredMessage::as_select())
            .for_update()
            .first(self)
            .optional()
    }

    crate::queries::shared_queries!(MysqlConnection);
}

/// A predicate whose statement Diesel must not keep in its prepared-statement cache.
///
/// A locking read (`FOR UPDATE`) can be chosen as a deadlock victim after the server has
/// begun its result set. The MySQL/MariaDB C client then leaves that prepared statement in
/// a state where its next execution waits for a reply that never comes, so the retry of
/// the transaction would hang. A statement prepared afresh each time is unaffected.
#[derive(Debug, Clone, Copy, diesel::expression::ValidGrouping)]
struct Uncached<T>(T);

impl<T: Expression> Expression for Uncached<T> {
    type SqlType = T::SqlType;
}

impl<T, QS> AppearsOnTable<QS> for Uncached<T> where T: AppearsOnTable<QS> {}

impl<T, QS> SelectableExpression<QS> for Uncached<T> where T: SelectableExpression<QS> {}

impl<T> QueryId for Uncached<T> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<T: QueryFragment<Mysql>> QueryFragment<Mysql> for Uncached<T> {
    fn walk_ast<'b>(&'b self, mut pass: AstPass<'_, 'b, Mysql>) -> QueryResult<()> {
        pass.unsafe_to_cache_prepared();
        self.0.walk_ast(pass)
    }
}
