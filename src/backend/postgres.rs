//! PostgreSQL: `RETURNING`, and write transactions retried on serialization failures and
//! deadlocks.

use chrono::{DateTime, Utc};
use diesel::pg::PgConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations};

use super::{apply_migrations, retrying_transaction, InboxConnection};
use crate::queries::prelude::*;

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

super::own_store!(PgConnection);

impl Store for PgConnection {
    fn migrate(&mut self) -> Result<()> {
        apply_migrations(self, MIGRATIONS)
    }

    fn write_transaction<T>(&mut self, f: impl FnMut(&mut Self) -> Result<T>) -> Result<T> {
        retrying_transaction(self, f)
    }

    super::returning_hooks!();

    // READ COMMITTED: every statement sees what was committed before it.
    fn find_current(&mut self, id: MessageId) -> QueryResult<Option<StoredMessage>> {
        self.find_stored(id)
    }

    crate::queries::shared_queries!(PgConnection);
}
