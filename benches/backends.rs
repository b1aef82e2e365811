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
//! The hand-written side returns the same rows as the inbox and leaves the same rows
//! behind, by the statements one would write by hand on the same schema and indexes,
//! kept prepared by Diesel's statement cache as its own DSL's are (on MySQL prepared
//! afresh each time, as the inbox's statements are there). The hand-written send gives
//! the same guarantees as the inbox's: it locks the conversation, refuses a blocked
//! sender and never stamps a time earlier than the conversation's latest; where the
//! dialect allows it, in one statement (see `send_by_hand`).

use std::cell::RefCell;
#[cfg(feature = "r2d2")]
use std::time::Instant;

use diesel::connection::LoadConnection;
#[cfg(any(feature = "sqlite", feature = "mysql"))]
use diesel::connection::SimpleConnection;
use diesel::deserialize::QueryableByName;
use diesel::query_dsl::methods::ExecuteDsl;
use diesel::query_dsl::LoadQuery;
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, HasSqlType};
use diesel::{Connection, RunQueryDsl};
use directmessages::schema::UtcTimestamp;
use directmessages::{ConversationQuery, ConversationsQuery, Inbox, InboxConnection};

mod common;
#[cfg(feature = "mysql")]
use common::MysqlScratch;
#[cfg(feature = "postgres")]
use common::PgScratch;
use common::{side_by_side, side_by_side_with, Hand, Number, Row, Summary, CALLS};

/// The user the reads look at: 1,000 partners and 5,000 messages with user 2.
const HOT: i64 = 1;

/// What differs between the backends in the fixture and the hand-written SQL.
struct Dialect {
    name: &'static str,
    /// What makes a `SELECT` lock its rows (nothing on SQLite, whose write transactions
    /// hold the database's one write lock).
    for_update: &'static str,
    /// What opens a write transaction.
    begin: &'static str,
    /// A bound `LIMIT` count (SQLite compiles a bare `LIMIT ?` again for every value).
    limit: &'static str,
    /// Any other bound value. SQLite with statistics (`ANALYZE`, as the fixture runs)
    /// reads a value bound against an indexed column while it plans, and compiles the
    /// statement again for every new value: a careful hand writes `? + 0`, as the inbox does.
    key: &'static str,
    /// SQL yielding `i` from 1 to `{n}`.
    series: &'static str,
    /// SQL for the current time, for `sent_at`.
    now: &'static str,
    /// Whether `INSERT … RETURNING id` exists.
    returning: bool,
}

/// `sql` with the dialect's bound value for each `?`, and its clock, row-lock clause and
/// bound row count in place of `{now}`, `{for_update}` and `{limit}`.
fn text(dialect: &Dialect, sql: &str) -> String {
    sql.replace('?', dialect.key)
        .replace("{now}", dialect.now)
        .replace("{for_update}", dialect.for_update)
        .replace("{limit}", dialect.limit)
}

/// A hand-written statement of `dialect`, kept prepared under the name `K` (see
/// [`Hand`]); on MySQL prepared afresh each time, as the inbox's statements are there.
fn hand<'a, const K: u32, const N: usize>(
    dialect: &Dialect,
    sql: &'a str,
    binds: [i64; N],
) -> Hand<'a, K, N> {
    Hand::new(sql, binds, dialect.name != "mysql")
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

/// A user who writes to `HOT` in the write benchmarks: fixture partners 10 to 1,009.
const PARTNER: i64 = 10;

/// `per_partner` new unread messages to `HOT` from each of `partners` fixture partners
/// from [`PARTNER`] on, with their conversation rows kept exact; returns the new ids.
fn unread_for_hot<C>(conn: &mut C, dialect: &Dialect, partners: i64, per_partner: i64) -> Vec<i64>
where
    C: Connection + LoadConnection,
    diesel::query_builder::BoxedSqlQuery<'static, C::Backend, diesel::query_builder::SqlQuery>:
        LoadQuery<'static, C, Number>,
{
    let last = PARTNER + partners - 1;
    let series = dialect
        .series
        .replace("{n}", &(partners * per_partner).to_string());
    let latest = "(SELECT MAX(m.id) FROM direct_messages m WHERE m.user_lo = {HOT} \
                  AND m.user_hi = direct_message_conversations.{side})";
    let sql = format!(
        "INSERT INTO direct_messages (sender_id, recipient_id, content, sent_at) \
         SELECT {PARTNER} + i % {partners}, {HOT}, 'unread', {now} FROM {series};
         UPDATE direct_message_conversations SET unread_count = unread_count + {per_partner}, \
         last_message_id = {mine} WHERE owner_id = {HOT} AND partner_id BETWEEN {PARTNER} AND {last};
         UPDATE direct_message_conversations SET last_message_id = {theirs} \
         WHERE partner_id = {HOT} AND owner_id BETWEEN {PARTNER} AND {last}",
        now = dialect.now,
        mine = latest.replace("{HOT}", &HOT.to_string()).replace("{side}", "partner_id"),
        theirs = latest.replace("{HOT}", &HOT.to_string()).replace("{side}", "owner_id"),
    );
    for part in sql.split(";\n") {
        conn.batch_execute(part).expect("unread messages");
    }
    let ids: Vec<Number> = diesel::sql_query(format!(
        "SELECT id AS n FROM direct_messages WHERE recipient_id = {HOT} \
         AND sender_id BETWEEN {PARTNER} AND {last} AND read_at IS NULL ORDER BY id"
    ))
    .into_boxed()
    .load(conn)
    .expect("unread ids");
    ids.into_iter().map(|r| r.n).collect()
}

/// Marks read, by hand, the unread messages to `HOT` that `filter` selects (`?`s bound
/// to `binds`), and lowers the counter of `HOT`'s conversation with `partner`: an
/// `UPDATE … RETURNING` where the dialect has it, else the rows locked and read first.
fn mark_by_hand<C, const K: u32, const N: usize>(
    conn: &mut C,
    dialect: &Dialect,
    sql: &[String; 3],
    binds: [i64; N],
    partner: i64,
) -> Vec<Row>
where
    C: Connection + LoadConnection,
    C::Backend: HasSqlType<BigInt>,
    i64: ToSql<BigInt, C::Backend>,
    for<'a> Hand<'a, K, N>: LoadQuery<'a, C, Row> + ExecuteDsl<C>,
    for<'a> Hand<'a, 9, 3>: ExecuteDsl<C>,
{
    conn.batch_execute(dialect.begin).expect("begin");
    let mut rows: Vec<Row> = hand::<K, N>(dialect, &sql[0], binds)
        .load(conn)
        .expect("mark");
    if !dialect.returning {
        // The clock the statement used, as a hand-writer binding it would have it.
        let at = UtcTimestamp(chrono::Utc::now());
        hand::<K, N>(dialect, &sql[1], binds)
            .execute(conn)
            .expect("mark");
        for row in &mut rows {
            row.read_at = Some(at);
        }
    }
    let n = i64::try_from(rows.len()).expect("count");
    hand::<9, 3>(dialect, &sql[2], [n, HOT, partner])
        .execute(conn)
        .expect("counter");
    conn.batch_execute("COMMIT").expect("commit");
    rows
}

/// Sends "hello" from `sender` to `HOT` by hand with the inbox's guarantees, in as few
/// statements as the dialect allows: on PostgreSQL one, which locks the conversation,
/// inserts unless the recipient blocks the sender, stamps no earlier than the
/// conversation's latest message, adds both sides' search rows (their terms made in SQL)
/// and updates both sides' rows; elsewhere the same in a transaction (on SQLite its write
/// lock is the conversation's; MySQL reads its id back).
fn send_by_hand<C>(conn: &mut C, dialect: &Dialect, sql: &SendSql, sender: i64) -> i64
where
    C: Connection + LoadConnection,
    for<'a> Hand<'a, 10, 14>: LoadQuery<'a, C, Number>,
    for<'a> Hand<'a, 11, 2>: ExecuteDsl<C>,
    for<'a> Hand<'a, 12, 6>: LoadQuery<'a, C, Number> + ExecuteDsl<C>,
    for<'a> Hand<'a, 13, 0>: LoadQuery<'a, C, Number>,
    for<'a> Hand<'a, 14, 7>: ExecuteDsl<C>,
    for<'a> Hand<'a, 15, 10>: ExecuteDsl<C>,
{
    let (lo, hi) = (sender.min(HOT), sender.max(HOT));
    if dialect.name == "postgres" {
        let rows: Vec<Number> = hand::<10, 14>(
            dialect,
            &sql.one_statement,
            [
                lo, hi, sender, HOT, HOT, sender, sender, HOT, HOT, sender, sender, HOT, sender,
                HOT,
            ],
        )
        .load(conn)
        .expect("send");
        return rows.first().map_or(0, |r| r.n);
    }
    conn.batch_execute(dialect.begin).expect("begin");
    if dialect.name == "mysql" {
        hand::<11, 2>(dialect, &sql.lock, [lo, hi])
            .execute(conn)
            .expect("lock");
    }
    let insert = hand::<12, 6>(dialect, &sql.insert, [sender, HOT, lo, hi, HOT, sender]);
    let id = if dialect.returning {
        insert
            .load::<Number>(conn)
            .expect("insert")
            .first()
            .map_or(0, |r| r.n)
    } else {
        insert.execute(conn).expect("insert");
        let id: Vec<Number> = hand::<13, 0>(dialect, &sql.last_id, [])
            .load(conn)
            .expect("id");
        id.first().map_or(0, |r| r.n)
    };
    hand::<15, 10>(
        dialect,
        &sql.index,
        [id, sender, sender, sender, HOT, id, HOT, HOT, HOT, sender],
    )
    .execute(conn)
    .expect("index");
    hand::<14, 7>(
        dialect,
        &sql.update,
        [id, id, HOT, sender, HOT, sender, HOT],
    )
    .execute(conn)
    .expect("update");
    conn.batch_execute("COMMIT").expect("commit");
    id
}

/// The statements of [`send_by_hand`], in the dialect's text.
struct SendSql {
    one_statement: String,
    lock: String,
    insert: String,
    last_id: String,
    index: String,
    update: String,
}

impl SendSql {
    fn new(dialect: &Dialect) -> Self {
        let greatest = if dialect.name == "sqlite" {
            "max"
        } else {
            "GREATEST"
        };
        let stamp = format!("{greatest}({{now}}, COALESCE(c.last_sent_at, {{now}}))");
        let not_blocked = "NOT EXISTS (SELECT 1 FROM direct_message_blocks b \
                           WHERE b.blocker_id = ? AND b.blocked_id = ?)";
        Self {
            one_statement: text(
                dialect,
                &format!(
                    "WITH c AS (SELECT last_sent_at FROM direct_message_conversations \
                     WHERE owner_id = ? AND partner_id = ? FOR UPDATE), \
                     m AS (INSERT INTO direct_messages (sender_id, recipient_id, content, sent_at) \
                     SELECT ?, ?, 'hello', {stamp} FROM c WHERE {not_blocked} \
                     RETURNING id, sent_at), \
                     s AS (INSERT INTO direct_message_search (message_id, owner_id, terms) \
                     SELECT m.id, v.o, array_to_tsvector(ARRAY[to_hex(v.o) || 'xhello', \
                     to_hex(v.o) || 'y' || to_hex(v.p)]) FROM m, \
                     (VALUES (?::bigint, ?::bigint), (?::bigint, ?::bigint)) AS v (o, p)) \
                     UPDATE direct_message_conversations SET last_message_id = m.id, \
                     last_sent_at = m.sent_at, unread_count = unread_count \
                     + CASE WHEN owner_id = {HOT} THEN 1 ELSE 0 END \
                     FROM m WHERE owner_id IN (?, ?) AND partner_id IN (?, ?) \
                     RETURNING m.id AS n"
                ),
            ),
            lock: text(
                dialect,
                "SELECT owner_id FROM direct_message_conversations \
                 WHERE owner_id = ? AND partner_id = ? {for_update}",
            ),
            insert: text(
                dialect,
                &format!(
                    "INSERT INTO direct_messages (sender_id, recipient_id, content, sent_at) \
                     SELECT ?, ?, 'hello', {stamp} FROM direct_message_conversations c \
                     WHERE c.owner_id = ? AND c.partner_id = ? AND {not_blocked}{returning}",
                    returning = if dialect.returning {
                        " RETURNING id AS n"
                    } else {
                        ""
                    },
                ),
            ),
            last_id: "SELECT CAST(LAST_INSERT_ID() AS SIGNED) AS n".to_owned(),
            // Both sides' search rows, their terms (`{owner:x}xhello {owner:x}y{partner:x}`)
            // made in SQL from the ids.
            index: if dialect.name == "sqlite" {
                "INSERT INTO direct_message_search (rowid, terms) VALUES \
                 (2 * ? + 0 * ?, printf('%xxhello %xy%x', ?, ?, ?)), \
                 (2 * ? + 1 + 0 * ?, printf('%xxhello %xy%x', ?, ?, ?))"
                    .to_owned()
            } else {
                "INSERT INTO direct_message_search (message_id, owner_id, terms) VALUES \
                 (?, ?, CONCAT(LOWER(HEX(?)), 'xhello ', LOWER(HEX(?)), 'y', LOWER(HEX(?)))), \
                 (?, ?, CONCAT(LOWER(HEX(?)), 'xhello ', LOWER(HEX(?)), 'y', LOWER(HEX(?))))"
                    .to_owned()
            },
            update: text(
                dialect,
                "UPDATE direct_message_conversations SET last_message_id = ?, \
                 last_sent_at = (SELECT sent_at FROM direct_messages WHERE id = ?), \
                 unread_count = unread_count + CASE WHEN owner_id = ? THEN 1 ELSE 0 END \
                 WHERE owner_id IN (?, ?) AND partner_id IN (?, ?)",
            ),
        }
    }
}

fn run<C>(conn: C, dialect: &Dialect, size: u64)
where
    C: InboxConnection + LoadConnection,
    C::Backend: HasSqlType<BigInt>,
    i64: ToSql<BigInt, C::Backend>,
    for<'a> Hand<'a, 1, 1>: LoadQuery<'a, C, Number>,
    for<'a> Hand<'a, 2, 5>: LoadQuery<'a, C, Row>,
    for<'a> Hand<'a, 3, 2>: LoadQuery<'a, C, Summary>,
    for<'a> Hand<'a, 4, 1>: LoadQuery<'a, C, Number>,
    for<'a> Hand<'a, 5, 3>: LoadQuery<'a, C, Row>,
    for<'a> Hand<'a, 6, 2>: LoadQuery<'a, C, Number>,
    for<'a> Hand<'a, 7, 2>: LoadQuery<'a, C, Row> + ExecuteDsl<C>,
    for<'a> Hand<'a, 8, 2>: LoadQuery<'a, C, Row> + ExecuteDsl<C>,
    for<'a> Hand<'a, 9, 3>: ExecuteDsl<C>,
    for<'a> Hand<'a, 10, 14>: LoadQuery<'a, C, Number>,
    for<'a> Hand<'a, 11, 2>: ExecuteDsl<C>,
    for<'a> Hand<'a, 12, 6>: LoadQuery<'a, C, Number> + ExecuteDsl<C>,
    for<'a> Hand<'a, 13, 0>: LoadQuery<'a, C, Number>,
    for<'a> Hand<'a, 14, 7>: ExecuteDsl<C>,
    diesel::query_builder::BoxedSqlQuery<'static, C::Backend, diesel::query_builder::SqlQuery>:
        LoadQuery<'static, C, Number>,
    Row: QueryableByName<C::Backend>,
    for<'a> Hand<'a, 15, 10>: ExecuteDsl<C>,
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
    const ROW: &str = "id, sender_id, recipient_id, content, sent_at, read_at, edited_at";

    let sql = text(
        dialect,
        "SELECT c.unread_count AS n FROM direct_message_conversations c \
         WHERE c.owner_id = ? AND c.unread_count > 0 AND NOT EXISTS (SELECT 1 \
         FROM direct_message_blocks b WHERE b.blocker_id = c.owner_id \
         AND b.blocked_id = c.partner_id)",
    );
    report(
        "unread_count (a user with 1,000 partners)",
        side_by_side(
            || {
                std::hint::black_box(inbox.unread_count(&mut *c(), HOT).expect("count"));
            },
            || {
                let counts: Vec<Number> = hand::<1, 1>(dialect, &sql, [HOT])
                    .load(&mut *c())
                    .expect("count");
                std::hint::black_box(counts.iter().map(|r| r.n).sum::<i64>());
            },
        ),
    );
    let sql = text(
        dialect,
        &format!(
            "SELECT {ROW} FROM direct_messages WHERE user_lo = ? AND user_hi = ? \
             AND (deleted_by_sender = false OR sender_id <> ?) \
             AND (deleted_by_recipient = false OR recipient_id <> ?) \
             ORDER BY user_lo DESC, user_hi DESC, id DESC LIMIT {{limit}}"
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
                let rows: Vec<Row> = hand::<2, 5>(dialect, &sql, [1, 2, HOT, HOT, 50])
                    .load(&mut *c())
                    .expect("page");
                std::hint::black_box(rows);
            },
        ),
    );
    let sql = text(
        dialect,
        "SELECT c.partner_id, m.id, m.sender_id, m.recipient_id, m.content, \
         m.sent_at, m.read_at, m.edited_at, c.unread_count, b.blocker_id, c.muted \
         FROM direct_message_conversations c \
         JOIN direct_messages m ON m.id = c.last_message_id \
         LEFT JOIN direct_message_blocks b \
         ON b.blocker_id = c.owner_id AND b.blocked_id = c.partner_id \
         WHERE c.owner_id = ? AND c.archived = false \
         ORDER BY c.last_message_id DESC LIMIT {limit}",
    );
    report(
        "conversations (inbox screen, 20 of 1,001)",
        side_by_side(
            || {
                let q = ConversationsQuery::new().limit(20);
                drop(inbox.conversations(&mut *c(), HOT, q).expect("summary"))
            },
            || {
                let rows: Vec<Summary> = hand::<3, 2>(dialect, &sql, [HOT, 20])
                    .load(&mut *c())
                    .expect("summary");
                std::hint::black_box(rows);
            },
        ),
    );
    let sql = text(
        dialect,
        "SELECT partner_id AS n FROM direct_message_conversations \
         WHERE owner_id = ? AND last_message_id IS NOT NULL \
         ORDER BY last_message_id DESC",
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
                let rows: Vec<Number> = hand::<4, 1>(dialect, &sql, [HOT])
                    .load(&mut *c())
                    .expect("partners");
                std::hint::black_box(rows);
            },
        ),
    );
    // Message 2 of the fixture: from user 1 to user 2, already read.
    let sql = text(
        dialect,
        &format!(
            "SELECT {ROW} FROM direct_messages WHERE id = ? \
             AND (sender_id = ? AND deleted_by_sender = false \
             OR recipient_id = ? AND deleted_by_recipient = false)"
        ),
    );
    report(
        "read_message_as, already read",
        side_by_side(
            || {
                std::hint::black_box(inbox.read_message_as(&mut *c(), 2, 2).expect("read"));
            },
            || {
                let rows: Vec<Row> = hand::<5, 3>(dialect, &sql, [2, 2, 2])
                    .load(&mut *c())
                    .expect("read");
                std::hint::black_box(rows);
            },
        ),
    );
    let sql = text(
        dialect,
        "SELECT unread_count AS n FROM direct_message_conversations \
         WHERE owner_id = ? AND partner_id = ?",
    );
    report(
        "mark_conversation_read, nothing unread",
        side_by_side(
            || {
                std::hint::black_box(inbox.mark_conversation_read(&mut *c(), 3, 4).expect("mark"));
            },
            || {
                let rows: Vec<Number> = hand::<6, 2>(dialect, &sql, [3, 4])
                    .load(&mut *c())
                    .expect("mark");
                std::hint::black_box(rows);
            },
        ),
    );

    // The writes that mark: what they mark is made before each round, untimed.
    let counter = text(
        dialect,
        "UPDATE direct_message_conversations SET unread_count = unread_count - ? \
         WHERE owner_id = ? AND partner_id = ?",
    );
    let marking = |filter: &str| -> [String; 3] {
        let first = if dialect.returning {
            format!("UPDATE direct_messages SET read_at = {{now}} WHERE {filter} RETURNING {ROW}")
        } else {
            format!("SELECT {ROW} FROM direct_messages WHERE {filter} {{for_update}}")
        };
        [
            text(dialect, &first),
            text(
                dialect,
                &format!("UPDATE direct_messages SET read_at = {{now}} WHERE {filter}"),
            ),
            counter.clone(),
        ]
    };
    let one =
        marking("id = ? AND recipient_id = ? AND read_at IS NULL AND deleted_by_recipient = false");
    report(
        "read_message_as, unread",
        side_by_side_with(
            || unread_for_hot(&mut *c(), dialect, 1, CALLS as i64),
            |id| {
                let read = inbox.read_message_as(&mut *c(), HOT, id).expect("read");
                assert!(read.read_at.is_some());
            },
            |id| {
                let rows = mark_by_hand::<C, 7, 2>(&mut c(), dialect, &one, [id, HOT], PARTNER);
                assert_eq!(rows.len(), 1);
            },
        ),
    );
    let all = marking(
        "recipient_id = ? AND sender_id = ? AND read_at IS NULL AND deleted_by_recipient = false",
    );
    report(
        "mark_conversation_read, 5 unread",
        side_by_side_with(
            || {
                unread_for_hot(&mut *c(), dialect, CALLS as i64, 5);
                (PARTNER..PARTNER + CALLS as i64).collect()
            },
            |partner| {
                let marked = inbox
                    .mark_conversation_read(&mut *c(), HOT, partner)
                    .expect("mark");
                assert_eq!(marked, 5);
            },
            |partner| {
                let rows =
                    mark_by_hand::<C, 8, 2>(&mut c(), dialect, &all, [HOT, partner], partner);
                assert_eq!(rows.len(), 5);
            },
        ),
    );
    let send = SendSql::new(dialect);
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
                let id = send_by_hand(&mut *c(), dialect, &send, 3);
                assert!(id > 0, "the hand-written send stored nothing");
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

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this with no argument.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    println!("| backend | messages | operation | inbox µs | hand-written µs | ratio |");
    println!("|---|---:|---|---:|---:|---:|");
    for size in common::sizes("10000,1000000") {
        #[cfg(feature = "sqlite")]
        {
            let dialect = Dialect {
                name: "sqlite",
                limit: "? + 0",
                key: "? + 0",
                for_update: "",
                begin: "BEGIN IMMEDIATE",
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
                limit: "?",
                key: "?",
                for_update: "FOR UPDATE",
                begin: "BEGIN",
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
                limit: "?",
                key: "?",
                for_update: "FOR UPDATE",
                begin: "START TRANSACTION",
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
