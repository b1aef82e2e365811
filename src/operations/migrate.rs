//! Applies a dialect's embedded migrations and records them the way Diesel's migration
//! harness does, in `__diesel_schema_migrations`, beside the host app's own: one text for
//! both flavours (diesel-async has no harness that fits an `async fn` on a borrowed
//! connection). Mounted by each dialect, which serializes instances around it.

use diesel::prelude::*;

use super::execution::{self, RunQueryDsl};
use super::Conn;
use crate::operations::Body;
use crate::Result;

diesel::table! {
    /// Diesel's record of applied migrations.
    __diesel_schema_migrations (version) {
        /// The migration's version: its directory name up to the first `_`.
        version -> VarChar,
    }
}

/// The table as Diesel's harness creates it.
const CREATE_MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS __diesel_schema_migrations (\
     version VARCHAR(50) PRIMARY KEY NOT NULL, \
     run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)";

/// One embedded migration: its version and its `up.sql`.
pub(super) type Migration = (&'static str, &'static str);

/// Applies, in order, each of `migrations` not recorded yet, each in a transaction (a
/// savepoint inside one) with its record.
pub(super) async fn apply(conn: &mut Conn, migrations: &[Migration]) -> Result<()> {
    use self::__diesel_schema_migrations::dsl::{__diesel_schema_migrations as table, version};
    execution::batch_execute(conn, CREATE_MIGRATIONS_TABLE).await?;
    let applied: Vec<String> = super::statement(table.select(version)).load(conn).await?;
    for &(name, up) in migrations {
        if applied.iter().any(|v| v == name) {
            continue;
        }
        super::transactions::transaction(conn, None, &mut |conn| {
            Body::new(async move {
                execution::batch_execute(conn, up)
                    .await
                    .map_err(|e| crate::Error::Migration(format!("{name}: {e}")))?;
                super::statement(diesel::insert_into(table).values(version.eq(name)))
                    .execute(conn)
                    .await?;
                Ok(())
            })
        })
        .await?;
    }
    Ok(())
}
