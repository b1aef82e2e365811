//! Applies a dialect's migrations: on a blocking connection with Diesel's own
//! `MigrationHarness` (`run_pending_migrations` of the embedded migrations); on an async
//! one, which has no harness that fits an `async fn` on a borrowed connection, by applying
//! the same files (listed from the same folder by `build.rs`) and recording each the way
//! the harness does, in `__diesel_schema_migrations` beside the host app's own. Mounted by
//! each dialect, which serializes instances around it.

use diesel::prelude::*;
use diesel_migrations::EmbeddedMigrations;

use super::execution::{self, RunQueryDsl};
use super::{Conn, Dialect, H};
use crate::operations::Body;
use crate::Result;

/// Applies each of the migrations not recorded yet, in order: `embedded` through Diesel's
/// harness where the flavour has one, else `listed`, the same files.
pub(crate) async fn apply(
    conn: &mut Conn,
    embedded: EmbeddedMigrations,
    listed: &'static [(&'static str, &'static str)],
) -> Result<()> {
    if let Some(harness) = execution::harness(conn) {
        return harness.run_pending(embedded);
    }
    apply_listed(conn, listed).await
}

/// Applies, in order, each of `migrations` (version, `up.sql`) not recorded yet, each in a
/// transaction (a savepoint inside one) with its record.
async fn apply_listed(
    conn: &mut Conn,
    migrations: &'static [(&'static str, &'static str)],
) -> Result<()> {
    use crate::migrations::__diesel_schema_migrations::dsl::{
        __diesel_schema_migrations as table, version,
    };
    execution::batch_execute(conn, crate::migrations::CREATE_MIGRATIONS_TABLE).await?;
    let applied: Vec<String> = H::statement(table.select(version)).load(conn).await?;
    for &(name, up) in migrations {
        if applied.iter().any(|v| v == name) {
            continue;
        }
        super::transactions::transaction::<_, crate::Error, _>(conn, None, &mut |conn| {
            Body::new(async move {
                execution::batch_execute(conn, up)
                    .await
                    .map_err(|e| crate::Error::Migration(format!("{name}: {e}")))?;
                H::statement(diesel::insert_into(table).values(version.eq(name)))
                    .execute(conn)
                    .await?;
                Ok(())
            })
        })
        .await?;
    }
    Ok(())
}
