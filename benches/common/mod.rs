//! What the benchmarks share: scratch schemas and databases on the configured servers,
//! hand-written statements kept prepared, and side-by-side timing.
#![allow(dead_code)]

use std::time::Instant;

use diesel::backend::Backend;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, HasSqlType, Nullable, Text, Untyped};
use diesel::{QueryResult, QueryableByName, RunQueryDsl};
use directmessages::schema::sql_types::UtcDateTime;
use directmessages::schema::UtcTimestamp;

/// A message row as hand-written SQL reads it.
#[derive(QueryableByName)]
pub struct Row {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = BigInt)]
    pub sender_id: i64,
    #[diesel(sql_type = BigInt)]
    pub recipient_id: i64,
    #[diesel(sql_type = Text)]
    pub content: String,
    #[diesel(sql_type = UtcDateTime)]
    pub sent_at: UtcTimestamp,
    #[diesel(sql_type = Nullable<UtcDateTime>)]
    pub read_at: Option<UtcTimestamp>,
    #[diesel(sql_type = Nullable<UtcDateTime>)]
    pub edited_at: Option<UtcTimestamp>,
}

/// A summary row of the inbox screen.
#[derive(QueryableByName)]
pub struct Summary {
    #[diesel(sql_type = BigInt)]
    pub partner_id: i64,
    #[diesel(embed)]
    pub last: Row,
    #[diesel(sql_type = BigInt)]
    pub unread_count: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub blocker_id: Option<i64>,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pub muted: bool,
}

/// One number a hand-written statement returns.
#[derive(QueryableByName)]
pub struct Number {
    #[diesel(sql_type = BigInt)]
    pub n: i64,
}

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

/// `url` with its database replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, String::new()), |(b, q)| (b, format!("?{q}")));
    let server = base.rsplit_once('/').map_or(base, |(server, _)| server);
    format!("{server}/{name}{query}")
}

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
        let url = with_database(&url, &name);
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

/// A hand-written statement binding `N` integers, which Diesel's statement cache keeps
/// prepared under the name `K` (one `K` per text), as it keeps the inbox's own, unless
/// not `cached`.
#[derive(Debug, Clone, Copy)]
pub struct Hand<'a, const K: u32, const N: usize> {
    sql: &'a str,
    binds: [i64; N],
    cached: bool,
}

/// The cache key of the statements named `K`.
pub struct Named<const K: u32>;

impl<'a, const K: u32, const N: usize> Hand<'a, K, N> {
    /// `sql`, its `?`s bound to `binds` in order; kept prepared if `cached`.
    pub fn new(sql: &'a str, binds: [i64; N], cached: bool) -> Self {
        Self { sql, binds, cached }
    }
}

impl<const K: u32, const N: usize> Query for Hand<'_, K, N> {
    type SqlType = Untyped;
}

impl<const K: u32, const N: usize> QueryId for Hand<'_, K, N> {
    type QueryId = Named<K>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<DB, const K: u32, const N: usize> QueryFragment<DB> for Hand<'_, K, N>
where
    DB: Backend + HasSqlType<BigInt>,
    i64: ToSql<BigInt, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        if !self.cached {
            out.unsafe_to_cache_prepared();
        }
        // The text between the `?`s; the backend writes each parameter its own way.
        let mut parts = self.sql.split('?');
        out.push_sql(parts.next().unwrap_or_default());
        for (bind, part) in self.binds.iter().zip(parts) {
            out.push_bind_param::<BigInt, _>(bind)?;
            out.push_sql(part);
        }
        Ok(())
    }
}

impl<C, const K: u32, const N: usize> RunQueryDsl<C> for Hand<'_, K, N> {}

/// Rounds of calls, and calls per round.
pub const ROUNDS: usize = 30;
pub const CALLS: usize = 100;

/// The median of the per-call means of `f` and of `g` over [`ROUNDS`] rounds of [`CALLS`]
/// calls, in µs, the two alternating by round; before each round, untimed, `setup`
/// makes what each call of the round takes.
pub fn side_by_side_with<T>(
    mut setup: impl FnMut() -> Vec<T>,
    mut f: impl FnMut(T),
    mut g: impl FnMut(T),
) -> (f64, f64) {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        for first in [round % 2 == 0, round % 2 == 1] {
            let inputs = setup();
            let start = Instant::now();
            for input in inputs {
                if first {
                    f(input)
                } else {
                    g(input)
                }
            }
            let per_call = start.elapsed().as_secs_f64() * 1e6 / CALLS as f64;
            if first {
                a.push(per_call)
            } else {
                b.push(per_call)
            }
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    (median(a), median(b))
}

/// [`side_by_side_with`] for calls that need nothing made for them.
pub fn side_by_side(mut f: impl FnMut(), mut g: impl FnMut()) -> (f64, f64) {
    side_by_side_with(|| vec![(); CALLS], |()| f(), |()| g())
}
