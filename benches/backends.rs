//! The inbox next to hand-written SQL for the same result, on every configured backend,
//! at 10,000 and at 1,000,000 messages: `cargo bench --bench backends --all-features`.
//!
//! SQLite runs on a temporary file (WAL); PostgreSQL and MySQL/MariaDB on the servers of
//! `DIRECTMESSAGES_POSTGRES_URL` and `DIRECTMESSAGES_MYSQL_URL` (each skipped with a
//! notice when unset), in a schema or database of their own that is dropped afterwards.
//! `DIRECTMESSAGES_BENCH_SIZES` (default `10000,1000000`) sets the sizes.
//!
//! Each operation runs 30 rounds of 100 calls, the crate and the hand-written SQL
//! alternating by round; the table gives the median of the per-call means, and the ratio.
//! The hand-written reads return the same rows as the inbox, by the statement one would
//! write by hand on the same schema and indexes. The hand-written send is the least one
//! could write: the insert and the update of both conversation rows in one transaction,
//! without the inbox's conversation lock, block check and clock guard.

use std::cell::RefCell;
use std::time::Instant;

use diesel::backend::Backend;
use diesel::connection::{LoadConnection, SimpleConnection};
use diesel::deserialize::QueryableByName;
use diesel::query_builder::{BoxedSqlQuery, SqlQuery};
use diesel::query_dsl::methods::ExecuteDsl;
use diesel::query_dsl::LoadQuery;
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, HasSqlType, Nullable, Text};
use diesel::{Connection, RunQueryDsl};
use directmessages::schema::sql_types::UtcDateTime;
use directmessages::schema::UtcTimestamp;
use directmessages::{ConversationQuery, ConversationsQuery, Inbox, InboxConnection};

/// The user the reads look at: 1,000 partners and 5,000 messages with user 2.
const HOT: i64 = 1;

/// A message row as hand-written SQL reads it.
#[derive(QueryableByName)]
#[allow(dead_code)]
struct Row {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = BigInt)]
    sender_id: i64,
    #[diesel(sql_type = BigInt)]
    recipient_id: i64,
    #[diesel(sql_type = Text)]
    content: String,
    #[diesel(sql_type = UtcDateTime)]
    sent_at: UtcTimestamp,
    #[diesel(sql_type = Nullable<UtcDateTime>)]
    read_at: Option<UtcTimestamp>,
}

/// One number a hand-written statement returns.
#[derive(QueryableByName)]
struct Number {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// A summary row of the inbox screen.
#[derive(QueryableByName)]
#[allow(dead_code)]
struct Summary {
    #[diesel(sql_type = BigInt)]
    partner_id: i64,
    #[diesel(embed)]
    last: Row,
    #[diesel(sql_type = BigInt)]
    unread_count: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    blocker_id: Option<i64>,
}

/// What differs between the backends in the fixture and the hand-written SQL.
struct Dialect {
    name: &'static str,
    /// `$1, $2, …` (PostgreSQL) rather than `?`.
    numbered: bool,
    /// SQL yielding `i` from 1 to `{n}`.
    series: &'static str,
    /// SQL for the current time, for `sent_at`.
    now: &'static str,
    /// Whether `INSERT … RETURNING id` exists.
    returning: bool,
}

fn statement<DB: Backend>(dialect: &Dialect, sql: &str) -> BoxedSqlQuery<'static, DB, SqlQuery> {
    let mut text = String::with_capacity(sql.len());
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' && dialect.numbered {
            n += 1;
            text.push_str(&format!("${n}"));
        } else {
            text.push(c);
        }
    }
    diesel::sql_query(text).into_boxed()
}

/// `total` messages: 5,000 between `HOT` and user 2, 5,000 between `HOT` and 1,000 others,
/// the rest between 10,000 other users; a third of them unread; the conversation rows
/// derived from them.
fn fixture<C: Connection>(conn: &mut C, dialect: &Dialect, total: u64) {
    let background = total.saturating_sub(10_000);
    let series = |n: u64| dialect.series.replace("{n}", &n.to_string());
    let sql = format!(
        "INSERT INTO direct_messages (sender_id, recipient_id, content, sent_at, read_at) \
         SELECT CASE WHEN i % 2 = 0 THEN 1 ELSE 2 END, CASE WHEN i % 2 = 0 THEN 2 ELSE 1 END, \
                'a long conversation', {now}, CASE WHEN i % 3 = 0 THEN NULL ELSE {now} END \
         FROM {s5};
         INSERT INTO direct_messages (sender_id, recipient_id, content, sent_at, read_at) \
         SELECT 1, 10 + i % 1000, 'to one of many', {now}, CASE WHEN i % 3 = 0 THEN NULL ELSE {now} END \
         FROM {s5};
         INSERT INTO direct_messages (sender_id, recipient_id, content, sent_at, read_at) \
         SELECT 2000 + (i * 7919) % 10000, 12001 + (i * 104729) % 10007, 'elsewhere', {now}, \
                CASE WHEN i % 3 = 0 THEN NULL ELSE {now} END \
         FROM {sb};
         INSERT INTO direct_message_conversations (owner_id, partner_id, last_message_id, unread_count) \
         SELECT owner, partner, MAX(id), SUM(unread) FROM ( \
             SELECT sender_id AS owner, recipient_id AS partner, id, 0 AS unread FROM direct_messages \
             UNION ALL \
             SELECT recipient_id, sender_id, id, CASE WHEN read_at IS NULL THEN 1 ELSE 0 END \
             FROM direct_messages) x GROUP BY owner, partner;",
        now = dialect.now,
        s5 = series(5_000),
        sb = series(background.max(1)),
    );
    for part in sql.split(";\n") {
        conn.batch_execute(part).expect("fixture");
    }
    let analyze = match dialect.name {
        "mysql" => "ANALYZE TABLE direct_messages, direct_message_conversations",
        _ => "ANALYZE",
    };
    conn.batch_execute(analyze).expect("analyze");
}

/// The median of `rounds` per-call means of `f`, in µs, interleaved with `g`.
fn side_by_side(mut f: impl FnMut(), mut g: impl FnMut()) -> (f64, f64) {
    const ROUNDS: usize = 30;
    const CALLS: usize = 100;
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        for first in [round % 2 == 0, round % 2 == 1] {
            let start = Instant::now();
            for _ in 0..CALLS {
                if first {
                    f()
                } else {
                    g()
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

fn run<C>(conn: C, dialect: &Dialect, size: u64)
where
    C: InboxConnection + LoadConnection,
    C::Backend: HasSqlType<BigInt>,
    i64: ToSql<BigInt, C::Backend>,
    for<'a> BoxedSqlQuery<'a, C::Backend, SqlQuery>: LoadQuery<'a, C, Row>
        + LoadQuery<'a, C, Number>
        + LoadQuery<'a, C, Summary>
        + ExecuteDsl<C>,
    Row: QueryableByName<C::Backend>,
{
    let conn = RefCell::new(conn);
    let inbox = Inbox::new();
    let c = || conn.borrow_mut();
    let report = |name: &str, (ours, theirs): (f64, f64)| {
        println!(
            "| {} | {size} | {name} | {ours:.1} | {theirs:.1} | {:.2}x |",
            dialect.name,
            ours / theirs
        );
    };

    report(
        "unread_count (a user with 1,000 partners)",
        side_by_side(
            || {
                std::hint::black_box(inbox.unread_count(&mut *c(), HOT).expect("count"));
            },
            || {
                let counts: Vec<Number> = statement(
                    dialect,
                    "SELECT c.unread_count AS n FROM direct_message_conversations c \
                     WHERE c.owner_id = ? AND c.unread_count > 0 AND NOT EXISTS (SELECT 1 \
                     FROM direct_message_blocks b WHERE b.blocker_id = c.owner_id \
                     AND b.blocked_id = c.partner_id)",
                )
                .bind::<BigInt, _>(HOT)
                .load(&mut *c())
                .expect("count");
                std::hint::black_box(counts.iter().map(|r| r.n).sum::<i64>());
            },
        ),
    );
    report(
        "conversation, latest 50 of 5,000",
        side_by_side(
            || {
                let q = ConversationQuery::new().reversed().limit(50);
                drop(inbox.conversation(&mut *c(), HOT, 2, q).expect("page"))
            },
            || {
                let rows: Vec<Row> = statement(
                    dialect,
                    "SELECT id, sender_id, recipient_id, content, sent_at, read_at \
                     FROM direct_messages WHERE user_lo = ? AND user_hi = ? \
                     AND (deleted_by_sender = false OR sender_id <> ?) \
                     AND (deleted_by_recipient = false OR recipient_id <> ?) \
                     ORDER BY user_lo DESC, user_hi DESC, id DESC LIMIT 50",
                )
                .bind::<BigInt, _>(1_i64)
                .bind::<BigInt, _>(2_i64)
                .bind::<BigInt, _>(HOT)
                .bind::<BigInt, _>(HOT)
                .load(&mut *c())
                .expect("page");
                std::hint::black_box(rows);
            },
        ),
    );
    report(
        "conversations (inbox screen, 20 of 1,001)",
        side_by_side(
            || {
                let q = ConversationsQuery::new().limit(20);
                drop(inbox.conversations(&mut *c(), HOT, q).expect("summary"))
            },
            || {
                let rows: Vec<Summary> = statement(
                    dialect,
                    "SELECT c.partner_id, m.id, m.sender_id, m.recipient_id, m.content, \
                     m.sent_at, m.read_at, c.unread_count, b.blocker_id \
                     FROM direct_message_conversations c \
                     JOIN direct_messages m ON m.id = c.last_message_id \
                     LEFT JOIN direct_message_blocks b \
                     ON b.blocker_id = c.owner_id AND b.blocked_id = c.partner_id \
                     WHERE c.owner_id = ? ORDER BY c.last_message_id DESC LIMIT 20",
                )
                .bind::<BigInt, _>(HOT)
                .load(&mut *c())
                .expect("summary");
                std::hint::black_box(rows);
            },
        ),
    );
    report(
        "conversation_partners (1,001)",
        side_by_side(
            || {
                drop(
                    inbox
                        .conversation_partners(&mut *c(), HOT)
                        .expect("partners"),
                )
            },
            || {
                let rows: Vec<Number> = statement(
                    dialect,
                    "SELECT partner_id AS n FROM direct_message_conversations \
                     WHERE owner_id = ? AND last_message_id IS NOT NULL \
                     ORDER BY last_message_id DESC",
                )
                .bind::<BigInt, _>(HOT)
                .load(&mut *c())
                .expect("partners");
                std::hint::black_box(rows);
            },
        ),
    );
    // Message 2 of the fixture: from user 1 to user 2, already read.
    report(
        "read_message_as, already read",
        side_by_side(
            || {
                std::hint::black_box(inbox.read_message_as(&mut *c(), 2, 2).expect("read"));
            },
            || {
                let rows: Vec<Row> = statement(
                    dialect,
                    "SELECT id, sender_id, recipient_id, content, sent_at, read_at \
                     FROM direct_messages WHERE id = ? \
                     AND (sender_id = ? AND deleted_by_sender = false \
                     OR recipient_id = ? AND deleted_by_recipient = false)",
                )
                .bind::<BigInt, _>(2_i64)
                .bind::<BigInt, _>(2_i64)
                .bind::<BigInt, _>(2_i64)
                .load(&mut *c())
                .expect("read");
                std::hint::black_box(rows);
            },
        ),
    );
    report(
        "mark_conversation_read, nothing unread",
        side_by_side(
            || {
                std::hint::black_box(inbox.mark_conversation_read(&mut *c(), 3, 4).expect("mark"));
            },
            || {
                let rows: Vec<Number> = statement(
                    dialect,
                    "SELECT unread_count AS n FROM direct_message_conversations \
                     WHERE owner_id = ? AND partner_id = ?",
                )
                .bind::<BigInt, _>(3_i64)
                .bind::<BigInt, _>(4_i64)
                .load(&mut *c())
                .expect("mark");
                std::hint::black_box(rows);
            },
        ),
    );
    let mut sent = 0_i64;
    report(
        "send_message (existing conversation)",
        side_by_side(
            || {
                drop(
                    inbox
                        .send_message(&mut *c(), 3, HOT, "hello")
                        .expect("send"),
                )
            },
            || {
                sent += 1;
                let mut conn = c();
                conn.transaction(|conn| {
                    let insert =
                        "INSERT INTO direct_messages (sender_id, recipient_id, content, sent_at) \
                                  VALUES (?, ?, 'hello', CURRENT_TIMESTAMP)";
                    let id = if dialect.returning {
                        statement(dialect, &format!("{insert} RETURNING id AS n"))
                            .bind::<BigInt, _>(3_i64)
                            .bind::<BigInt, _>(HOT)
                            .load::<Number>(conn)?
                            .pop()
                            .map_or(0, |r| r.n)
                    } else {
                        statement(dialect, insert)
                            .bind::<BigInt, _>(3_i64)
                            .bind::<BigInt, _>(HOT)
                            .execute(conn)?;
                        statement(dialect, "SELECT CAST(LAST_INSERT_ID() AS SIGNED) AS n")
                            .load::<Number>(conn)?
                            .pop()
                            .map_or(0, |r| r.n)
                    };
                    statement(
                        dialect,
                        "UPDATE direct_message_conversations SET last_message_id = ?, \
                         unread_count = unread_count + CASE WHEN owner_id = ? THEN 1 ELSE 0 END \
                         WHERE owner_id IN (?, ?) AND partner_id IN (?, ?)",
                    )
                    .bind::<BigInt, _>(id)
                    .bind::<BigInt, _>(HOT)
                    .bind::<BigInt, _>(3_i64)
                    .bind::<BigInt, _>(HOT)
                    .bind::<BigInt, _>(3_i64)
                    .bind::<BigInt, _>(HOT)
                    .execute(conn)?;
                    Ok::<_, diesel::result::Error>(())
                })
                .expect("hand-written send");
            },
        ),
    );
}

/// Sends per second through an r2d2 pool of `threads` connections, one thread each,
/// every thread writing to conversations of its own (PostgreSQL commits durably; SQLite
/// in WAL with a busy timeout).
#[cfg(feature = "r2d2")]
fn sends_per_second<C>(
    name: &str,
    pool_of: impl Fn(u32) -> diesel::r2d2::Pool<diesel::r2d2::ConnectionManager<C>>,
) where
    C: InboxConnection + diesel::r2d2::R2D2Connection + Send + 'static,
{
    for threads in [4_u32, 8] {
        let pool = pool_of(threads);
        let inbox = Inbox::new();
        let seconds = 3.0;
        let start = Instant::now();
        let total: u64 = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let (pool, inbox) = (&pool, &inbox);
                    s.spawn(move || {
                        let mut conn = pool.get().expect("pooled connection");
                        let mut sent = 0_u64;
                        let me = 100_000 + i64::from(t);
                        while start.elapsed().as_secs_f64() < seconds {
                            let to = 200_000 + (sent % 50) as i64;
                            inbox
                                .send_message(&mut *conn, me, to, "hello")
                                .expect("send");
                            sent += 1;
                        }
                        sent
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("sender")).sum()
        });
        let rate = total as f64 / start.elapsed().as_secs_f64();
        println!("| {name} | pool of {threads}, {threads} threads | {rate:.0} sends/s |");
    }
}

fn sizes() -> Vec<u64> {
    std::env::var("DIRECTMESSAGES_BENCH_SIZES")
        .unwrap_or_else(|_| "10000,1000000".to_owned())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

/// A scratch schema on a PostgreSQL server: created here, dropped with the value.
#[cfg(feature = "postgres")]
struct PgScratch {
    admin: diesel::PgConnection,
    schema: String,
    /// The URL of a connection that works in it.
    url: String,
}

#[cfg(feature = "postgres")]
impl PgScratch {
    /// A new schema, migrated, or `None` (with a notice) without a server URL.
    fn new(tag: &str) -> Option<Self> {
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
struct MysqlScratch {
    admin: diesel::MysqlConnection,
    name: String,
    /// The URL of a connection that works in it.
    url: String,
}

#[cfg(feature = "mysql")]
impl MysqlScratch {
    /// A new database, migrated, or `None` (with a notice) without a server URL.
    fn new(tag: &str) -> Option<Self> {
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

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this with no argument.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    println!("| backend | messages | operation | inbox µs | hand-written µs | ratio |");
    println!("|---|---:|---|---:|---:|---:|");
    for size in sizes() {
        #[cfg(feature = "sqlite")]
        {
            let dialect = Dialect {
                name: "sqlite",
                numbered: false,
                series: "(WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n}) SELECT i FROM n) s",
                now: "'2026-01-01 00:00:00.000000'",
                returning: true,
            };
            let path =
                std::env::temp_dir().join(format!("dm-backends-{}-{size}.db", std::process::id()));
            let mut conn =
                diesel::SqliteConnection::establish(&path.to_string_lossy()).expect("open");
            conn.batch_execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
                .expect("pragmas");
            directmessages::run_migrations(&mut conn).expect("migrations");
            fixture(&mut conn, &dialect, size);
            run(conn, &dialect, size);
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
        }
        #[cfg(feature = "postgres")]
        if let Some(scratch) = PgScratch::new("bench") {
            let dialect = Dialect {
                name: "postgres",
                numbered: true,
                series: "generate_series(1::bigint, {n}) AS s(i)",
                now: "now()",
                returning: true,
            };
            let mut conn = diesel::PgConnection::establish(&scratch.url).expect("postgres");
            fixture(&mut conn, &dialect, size);
            run(conn, &dialect, size);
        }
        #[cfg(feature = "mysql")]
        if let Some(scratch) = MysqlScratch::new("bench") {
            let dialect = Dialect {
                name: "mysql",
                numbered: false,
                series: "(WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n}) SELECT i FROM n) s",
                now: "UTC_TIMESTAMP(6)",
                returning: false,
            };
            let mut conn = diesel::MysqlConnection::establish(&scratch.url).expect("mysql");
            conn.batch_execute("SET SESSION max_recursive_iterations = 100000000")
                .ok();
            fixture(&mut conn, &dialect, size);
            run(conn, &dialect, size);
        }
    }
    #[cfg(feature = "r2d2")]
    throughput();
}

/// The sends-per-second table, on fresh databases of each configured backend.
#[cfg(feature = "r2d2")]
fn throughput() {
    println!();
    println!("| backend | senders | throughput |");
    println!("|---|---|---:|");
    #[cfg(feature = "sqlite")]
    {
        let path = std::env::temp_dir().join(format!("dm-sends-{}.db", std::process::id()));
        let url = path.to_string_lossy().into_owned();
        let mut conn = diesel::SqliteConnection::establish(&url).expect("open");
        directmessages::run_migrations(&mut conn).expect("migrations");
        sends_per_second("sqlite", |threads| {
            diesel::r2d2::Pool::builder()
                .max_size(threads)
                .connection_customizer(Box::new(directmessages::SqliteCustomizer::new().wal(true)))
                .build(diesel::r2d2::ConnectionManager::<diesel::SqliteConnection>::new(&url))
                .expect("pool")
        });
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
    #[cfg(feature = "postgres")]
    if let Some(scratch) = PgScratch::new("sends") {
        sends_per_second("postgres", |threads| {
            diesel::r2d2::Pool::builder()
                .max_size(threads)
                .build(diesel::r2d2::ConnectionManager::<diesel::PgConnection>::new(&scratch.url))
                .expect("pool")
        });
    }
    #[cfg(feature = "mysql")]
    if let Some(scratch) = MysqlScratch::new("sends") {
        sends_per_second("mysql", |threads| {
            diesel::r2d2::Pool::builder()
                .max_size(threads)
                .build(
                    diesel::r2d2::ConnectionManager::<diesel::MysqlConnection>::new(&scratch.url),
                )
                .expect("pool")
        });
    }
}
