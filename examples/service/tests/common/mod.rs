//! What the service's test files share.

/// A schema (or, through a pooler, a database) of its own on the PostgreSQL server of
/// `DIRECTMESSAGES_POSTGRES_URL`, dropped with the value.
#[cfg(feature = "postgres")]
pub struct PgSchema {
    admin_url: String,
    drop: String,
    /// The server's URL with `search_path` set to the schema, or the pooler's URL of the
    /// database.
    pub url: String,
}

#[cfg(feature = "postgres")]
impl PgSchema {
    /// A new schema named `prefix` and the process id, or `None` (with a notice) when no
    /// server is configured; under `CI=true` a missing server is a failure.
    pub fn new(prefix: &str) -> Option<Self> {
        use diesel::connection::SimpleConnection;
        use diesel::Connection;
        let Ok(admin_url) = std::env::var("DIRECTMESSAGES_POSTGRES_URL") else {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true but DIRECTMESSAGES_POSTGRES_URL is not set");
            }
            eprintln!("note: PostgreSQL test skipped: DIRECTMESSAGES_POSTGRES_URL is not set");
            return None;
        };
        let schema = format!("{prefix}_{}", std::process::id());
        diesel::PgConnection::establish(&admin_url)
            .expect("PostgreSQL")
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .expect("create schema");
        let separator = if admin_url.contains('?') { '&' } else { '?' };
        let url = format!("{admin_url}{separator}options=-csearch_path%3D{schema}");
        Some(Self {
            admin_url,
            drop: format!("DROP SCHEMA IF EXISTS {schema} CASCADE"),
            url,
        })
    }

    /// A database of its own, made on the server of `DIRECTMESSAGES_POSTGRES_URL` and
    /// reached through the pooler in transaction mode of
    /// `DIRECTMESSAGES_POSTGRES_POOLER_URL` (which passes no `search_path` on); `None`
    /// (with a notice) when either is not configured, a failure under `CI=true`.
    #[allow(dead_code, reason = "the socket tests use it, the API tests do not")]
    pub fn through_pooler(prefix: &str) -> Option<Self> {
        use diesel::connection::SimpleConnection;
        use diesel::Connection;
        let (Ok(admin_url), Ok(pooler)) = (
            std::env::var("DIRECTMESSAGES_POSTGRES_URL"),
            std::env::var("DIRECTMESSAGES_POSTGRES_POOLER_URL"),
        ) else {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true but DIRECTMESSAGES_POSTGRES_URL or _POOLER_URL is not set");
            }
            eprintln!("note: pooler test skipped: DIRECTMESSAGES_POSTGRES_POOLER_URL is not set");
            return None;
        };
        let name = format!("{prefix}_{}", std::process::id());
        diesel::PgConnection::establish(&admin_url)
            .expect("PostgreSQL")
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create database");
        let (base, query) = pooler.split_once('?').unwrap_or((&pooler, ""));
        let server = base.rsplit_once('/').map_or(base, |(server, _)| server);
        let query = if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        };
        Some(Self {
            admin_url,
            drop: format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            url: format!("{server}/{name}{query}"),
        })
    }
}

#[cfg(feature = "postgres")]
impl Drop for PgSchema {
    fn drop(&mut self) {
        use diesel::connection::SimpleConnection;
        use diesel::Connection;
        if let Ok(mut admin) = diesel::PgConnection::establish(&self.admin_url) {
            let _ = admin.batch_execute(&self.drop);
        }
    }
}
