//! PostgreSQL: `RETURNING`, and write transactions retried on serialization failures and
//! deadlocks.

use chrono::{DateTime, Utc};
use diesel::pg::{Pg, PgConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations};

use super::{apply_migrations, retrying_transaction, InboxConnection};
use crate::queries::prelude::*;

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

impl super::sealed::Sealed for PgConnection {}

impl InboxConnection for PgConnection {
    type Store = Self;
    fn store(&mut self) -> &mut Self {
        self
    }
}

impl Store for PgConnection {
    fn migrate(&mut self) -> Result<()> {
        apply_migrations(self, MIGRATIONS)
    }

    fn write_transaction<T>(&mut self, f: impl FnMut(&mut Self) -> Result<T>) -> Result<T> {
        retrying_transaction(self, f)
    }

    fn insert_message(&mut self, new: &NewMessage<'_>) -> QueryResult<Message> {
        diesel::insert_into(dm::table)
            .values(new)
            .returning(Message::as_returning())
            .get_result(self)
    }

    fn mark_read(
        &mut self,
        filter: ReadFilter<Pg>,
        at: DateTime<Utc>,
    ) -> QueryResult<Vec<Message>> {
        diesel::update(dm::table.filter(filter))
            .set(dm::read_at.eq(Stamp(at)))
            .returning(Message::as_returning())
            .get_results(self)
    }

    // READ COMMITTED: every statement sees what was committed before it.
    fn find_current(&mut self, id: MessageId) -> QueryResult<Option<StoredMessage>> {
        self.find_stored(id)
    }

    crate::queries::shared_queries!(PgConnection);
}
