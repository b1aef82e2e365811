//! What the benchmarks share: scratch schemas and databases on the configured servers.
#![allow(dead_code)]

#[cfg(any(feature = "postgres", feature = "mysql"))]
use diesel::connection::SimpleConnection;

/// The table sizes to measure: `DIRECTMESSAGES_BENCH_SIZES`, or `default`, comma-separated.
pub fn sizes(default: &str) -> Vec<u64> {
    std::env::var("DIRECTMESSAGES_BENCH_SIZES")
        .unwrap_or_else(|_| default.to_owned())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}
#[cfg(any(feature = "postgres", feature = "mysql"))]
use diesel::Connection;

/// A scratch schema on a PostgreSQL server: created here, dropped with the value.
#[cfg(feature = "postgres")]
pub struct PgScratch {
    admin: diesel::PgConnection,
    schema: String,
    /// The URL of a connection that works in it.
    pub url: String,
}

#[cfg(feature = "postgres")]
impl PgScratch {
    /// A new schema, migrated, or `None` (with a notice) without a server URL.
    pub fn new(tag: &str) -> Option<Self> {
        let Ok(url) = std::env::var("DIRECTMESSAGES_POSTGRES_URL") else {
            eprintln!("note: postgres skipped: DIRECTMESSAGES_POSTGRES_URL is not set");
            return None;
        };
        let schema = format!("dm_{tag}_{}", std::process::id());
        let mut admin = diesel::PgConnection::establish(&url).expect("postgres");
        admin
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .expect("schema");
        let separator = if url.contains('?') { '&' } else { '?' };
        let url = format!("{url}{separator}options=-csearch_path%3D{schema}");
        directmessages::run_migrations(
            &mut diesel::PgConnection::establish(&url).expect("postgres"),
        )
        .expect("migrations");
        Some(Self { admin, schema, url })
    }
}

#[cfg(feature = "postgres")]
impl Drop for PgScratch {
    fn drop(&mut self) {
        let _ = self
            .admin
            .batch_execute(&format!("DROP SCHEMA {} CASCADE", self.schema));
    }
}

/// A scratch database on a MySQL/MariaDB server: created here, dropped with the value.
#[cfg(feature = "mysql")]
pub struct MysqlScratch {
    admin: diesel::MysqlConnection,
    name: String,
    /// The URL of a connection that works in it.
    pub url: String,
}

#[cfg(feature = "mysql")]
impl MysqlScratch {
    /// A new database, migrated, or `None` (with a notice) without a server URL.
    pub fn new(tag: &str) -> Option<Self> {
        let Ok(url) = std::env::var("DIRECTMESSAGES_MYSQL_URL") else {
            eprintln!("note: mysql skipped: DIRECTMESSAGES_MYSQL_URL is not set");
            return None;
        };
        let name = format!("dm_{tag}_{}", std::process::id());
        let mut admin = diesel::MysqlConnection::establish(&url).expect("mysql");
        admin
            .batch_execute(&format!("CREATE DATABASE {name} CHARACTER SET utf8mb4"))
            .expect("database");
        let (base, query) = url
            .split_once('?')
            .map_or((url.as_str(), String::new()), |(b, q)| (b, format!("?{q}")));
        let server = base.rsplit_once('/').map_or(base, |(server, _)| server);
        let url = format!("{server}/{name}{query}");
        directmessages::run_migrations(
            &mut diesel::MysqlConnection::establish(&url).expect("mysql"),
        )
        .expect("migrations");
        Some(Self { admin, name, url })
    }
}

#[cfg(feature = "mysql")]
impl Drop for MysqlScratch {
    fn drop(&mut self) {
        let _ = self
            .admin
            .batch_execute(&format!("DROP DATABASE {}", self.name));
    }
}
