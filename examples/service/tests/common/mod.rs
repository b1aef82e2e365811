//! What the service's test files share.

/// A schema of its own on the PostgreSQL server of `DIRECTMESSAGES_POSTGRES_URL`, dropped
/// with the value.
#[cfg(feature = "postgres")]
pub struct PgSchema {
    admin_url: String,
    schema: String,
    /// The server's URL with `search_path` set to the schema.
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
            schema,
            url,
        })
    }
}

#[cfg(feature = "postgres")]
impl Drop for PgSchema {
    fn drop(&mut self) {
        use diesel::connection::SimpleConnection;
        use diesel::Connection;
        if let Ok(mut admin) = diesel::PgConnection::establish(&self.admin_url) {
            let _ = admin.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema));
        }
    }
}
