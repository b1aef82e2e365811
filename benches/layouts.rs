//! The schema's layout against the alternatives it was chosen over, on SQLite:
//! `cargo bench --bench layouts`.
//!
//! One database file holds the inbox's tables, filled as a busy deployment fills them, and
//! next to them each alternative layout with the same rows:
//!
//! - **Integer timestamps**: `sent_at`, `read_at` and `edited_at` as microseconds since
//!   the epoch instead of the text the inbox writes (which its loader reads field by
//!   field), for a page of 50 messages.
//! - **A clustered messages table**: `WITHOUT ROWID`, keyed by the conversation and the
//!   id, so a page is one contiguous range instead of an index range and a lookup per row
//!   (the conversation's messages are spread among everyone else's, as in real traffic);
//!   and what it costs a read by id, which then goes through a second index.
//! - **The last message kept in the conversation row**: the inbox screen of 20 rows
//!   without the join to `direct_messages`.
//! - **A per-user unread total**: `unread_count` as one row, for a user with unread
//!   messages from 1,000 partners; and what it costs every send, which then updates one
//!   more row.
//!
//! Each pair returns the same rows into the same Rust types, through statements Diesel
//! keeps prepared; 30 rounds of 100 calls alternate between the two, and the table gives
//! the medians of the per-call means. `DIRECTMESSAGES_BENCH_SIZES` (default
//! `10000,1000000`) sets the sizes.

use chrono::{DateTime, Utc};
use diesel::connection::SimpleConnection;
use diesel::deserialize::QueryableByName;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::{Connection, RunQueryDsl, SqliteConnection};

mod common;
use common::{side_by_side, Hand, Number, Row, Summary};

/// The user whose screens are read: 1,000 partners, each with 3 messages unread, and
/// 5,000 messages with user 2 spread through the table.
const HOT: i64 = 1;

/// A message with its timestamps as integers (microseconds since the epoch).
#[derive(QueryableByName)]
struct IntRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = BigInt)]
    sender_id: i64,
    #[diesel(sql_type = BigInt)]
    recipient_id: i64,
    #[diesel(sql_type = Text)]
    content: String,
    #[diesel(sql_type = BigInt)]
    sent_at: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    read_at: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    edited_at: Option<i64>,
}

/// What a caller gets either way: a message with `DateTime`s.
#[allow(dead_code)]
struct Message {
    id: i64,
    sender_id: i64,
    recipient_id: i64,
    content: String,
    sent_at: DateTime<Utc>,
    read_at: Option<DateTime<Utc>>,
    edited_at: Option<DateTime<Utc>>,
}

impl From<Row> for Message {
    fn from(r: Row) -> Self {
        Self {
            id: r.id,
            sender_id: r.sender_id,
            recipient_id: r.recipient_id,
            content: r.content,
            sent_at: r.sent_at.0,
            read_at: r.read_at.map(|t| t.0),
            edited_at: r.edited_at.map(|t| t.0),
        }
    }
}

fn micros(t: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t).unwrap_or_default()
}

impl From<IntRow> for Message {
    fn from(r: IntRow) -> Self {
        Self {
            id: r.id,
            sender_id: r.sender_id,
            recipient_id: r.recipient_id,
            content: r.content,
            sent_at: micros(r.sent_at),
            read_at: r.read_at.map(micros),
            edited_at: r.edited_at.map(micros),
        }
    }
}

/// `1` to `n`.
fn series(n: u64) -> String {
    format!(
        "(WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n}) \
         SELECT i FROM s)"
    )
}

/// The inbox's tables with `total` messages, and each alternative with the same rows.
fn fixture(conn: &mut SqliteConnection, total: u64) {
    // The hot conversation's 5,000 messages every `step`-th row among everyone else's.
    let step = (total.saturating_sub(3_000) / 5_000).max(2);
    let spread = 5_000 * step;
    let sql = format!(
        "INSERT INTO direct_messages (sender_id, recipient_id, content, sent_at, read_at)
         SELECT CASE WHEN i % {step} <> 0 THEN 2000 + (i * 7919) % 10000
                     WHEN (i / {step}) % 2 = 0 THEN 1 ELSE 2 END,
                CASE WHEN i % {step} <> 0 THEN 12001 + (i * 104729) % 10007
                     WHEN (i / {step}) % 2 = 0 THEN 2 ELSE 1 END,
                'message number ' || i,
                strftime('%Y-%m-%d %H:%M:%f000', 1767225600 + i, 'unixepoch'),
                strftime('%Y-%m-%d %H:%M:%f000', 1767225700 + i, 'unixepoch')
         FROM {s};
         INSERT INTO direct_messages (sender_id, recipient_id, content, sent_at)
         SELECT 10 + i % 1000, {HOT}, 'unread number ' || i,
                strftime('%Y-%m-%d %H:%M:%f000', 1767225600 + {spread} + i, 'unixepoch')
         FROM {u};
         INSERT INTO direct_message_conversations
             (owner_id, partner_id, last_message_id, unread_count, last_sent_at)
         SELECT owner, partner, MAX(id), SUM(unread), MAX(sent_at) FROM (
             SELECT sender_id AS owner, recipient_id AS partner, id, 0 AS unread, sent_at
             FROM direct_messages
             UNION ALL
             SELECT recipient_id, sender_id, id, read_at IS NULL, sent_at FROM direct_messages
         ) GROUP BY owner, partner;

         CREATE TABLE alt_int_messages (
             id INTEGER PRIMARY KEY, sender_id BIGINT NOT NULL, recipient_id BIGINT NOT NULL,
             content TEXT NOT NULL, sent_at BIGINT NOT NULL, read_at BIGINT, edited_at BIGINT,
             user_lo BIGINT NOT NULL, user_hi BIGINT NOT NULL);
         INSERT INTO alt_int_messages
         SELECT id, sender_id, recipient_id, content,
                CAST(round((julianday(sent_at) - 2440587.5) * 86400000000) AS INTEGER),
                CAST(round((julianday(read_at) - 2440587.5) * 86400000000) AS INTEGER),
                NULL, user_lo, user_hi
         FROM direct_messages;
         CREATE INDEX alt_int_conversation ON alt_int_messages (user_lo, user_hi, id);

         CREATE TABLE alt_clustered_messages (
             id BIGINT NOT NULL, sender_id BIGINT NOT NULL, recipient_id BIGINT NOT NULL,
             content TEXT NOT NULL, sent_at TIMESTAMP NOT NULL, read_at TIMESTAMP,
             edited_at TIMESTAMP, user_lo BIGINT NOT NULL, user_hi BIGINT NOT NULL,
             PRIMARY KEY (user_lo, user_hi, id)) WITHOUT ROWID;
         INSERT INTO alt_clustered_messages
         SELECT id, sender_id, recipient_id, content, sent_at, read_at, edited_at,
                user_lo, user_hi
         FROM direct_messages;
         CREATE UNIQUE INDEX alt_clustered_id ON alt_clustered_messages (id);

         CREATE TABLE alt_wide_conversations (
             owner_id BIGINT NOT NULL, partner_id BIGINT NOT NULL, last_message_id BIGINT,
             unread_count BIGINT NOT NULL, archived BOOLEAN NOT NULL DEFAULT 0,
             muted BOOLEAN NOT NULL DEFAULT 0, last_sender_id BIGINT, last_recipient_id BIGINT,
             last_content TEXT, last_sent_at TIMESTAMP, last_read_at TIMESTAMP,
             last_edited_at TIMESTAMP,
             PRIMARY KEY (owner_id, partner_id)) WITHOUT ROWID;
         INSERT INTO alt_wide_conversations
         SELECT c.owner_id, c.partner_id, c.last_message_id, c.unread_count, c.archived,
                c.muted, m.sender_id, m.recipient_id, m.content, m.sent_at, m.read_at,
                m.edited_at
         FROM direct_message_conversations c JOIN direct_messages m ON m.id = c.last_message_id;
         CREATE INDEX alt_wide_inbox ON alt_wide_conversations (owner_id, archived, last_message_id);

         CREATE TABLE alt_unread_totals (
             user_id BIGINT NOT NULL PRIMARY KEY, unread BIGINT NOT NULL) WITHOUT ROWID;
         INSERT INTO alt_unread_totals
         SELECT owner_id, SUM(unread_count) FROM direct_message_conversations GROUP BY owner_id;

         ANALYZE;",
        s = series(total.saturating_sub(3_000).max(spread)),
        u = series(3_000),
    );
    conn.batch_execute(&sql).expect("fixture");
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this with no argument.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    println!("| question | messages | inbox layout µs | alternative µs | alternative / inbox |");
    println!("|---|---:|---:|---:|---:|");
    for size in common::sizes("10000,1000000") {
        let path =
            std::env::temp_dir().join(format!("dm-layouts-{}-{size}.db", std::process::id()));
        let mut conn = SqliteConnection::establish(&path.to_string_lossy()).expect("open");
        conn.batch_execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
            .expect("pragmas");
        directmessages::run_migrations(&mut conn).expect("migrations");
        fixture(&mut conn, size);
        run(&mut conn, size);
        drop(conn);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
}

fn run(conn: &mut SqliteConnection, size: u64) {
    let conn = std::cell::RefCell::new(conn);
    let c = || conn.borrow_mut();
    let report = |name: &str, (ours, theirs): (f64, f64)| {
        println!(
            "| {name} | {size} | {ours:.1} | {theirs:.1} | {:.2} |",
            theirs / ours
        );
    };
    const COLUMNS: &str = "id, sender_id, recipient_id, content, sent_at, read_at, edited_at";
    let page = |table: &str| {
        format!(
            "SELECT {COLUMNS} FROM {table} WHERE user_lo = ? + 0 AND user_hi = ? + 0 \
             ORDER BY user_lo DESC, user_hi DESC, id DESC LIMIT ? + 0"
        )
    };

    let (text, int) = (page("direct_messages"), page("alt_int_messages"));
    report(
        "integer timestamps: a page of 50",
        side_by_side(
            || {
                let rows: Vec<Row> = Hand::<1, 3>::new(&text, [1, 2, 50], true)
                    .load(&mut **c())
                    .expect("page");
                std::hint::black_box(rows.into_iter().map(Message::from).collect::<Vec<_>>());
            },
            || {
                let rows: Vec<IntRow> = Hand::<2, 3>::new(&int, [1, 2, 50], true)
                    .load(&mut **c())
                    .expect("page");
                std::hint::black_box(rows.into_iter().map(Message::from).collect::<Vec<_>>());
            },
        ),
    );

    let clustered = page("alt_clustered_messages");
    report(
        "clustered messages: a page of 50 spread through the table",
        side_by_side(
            || {
                let rows: Vec<Row> = Hand::<1, 3>::new(&text, [1, 2, 50], true)
                    .load(&mut **c())
                    .expect("page");
                std::hint::black_box(rows);
            },
            || {
                let rows: Vec<Row> = Hand::<3, 3>::new(&clustered, [1, 2, 50], true)
                    .load(&mut **c())
                    .expect("page");
                std::hint::black_box(rows);
            },
        ),
    );
    let by_id = |table: &str| format!("SELECT {COLUMNS} FROM {table} WHERE id = ? + 0");
    let (rowid, secondary) = (by_id("direct_messages"), by_id("alt_clustered_messages"));
    // Messages all over the table, a different one each call.
    let id = std::cell::Cell::new(0_i64);
    let next = || {
        id.set((id.get() * 7919 + 13) % i64::try_from(size).unwrap_or(i64::MAX) + 1);
        id.get()
    };
    report(
        "clustered messages: a message by id",
        side_by_side(
            || {
                let row: Vec<Row> = Hand::<4, 1>::new(&rowid, [next()], true)
                    .load(&mut **c())
                    .expect("by id");
                std::hint::black_box(row);
            },
            || {
                let row: Vec<Row> = Hand::<5, 1>::new(&secondary, [next()], true)
                    .load(&mut **c())
                    .expect("by id");
                std::hint::black_box(row);
            },
        ),
    );

    let joined = "SELECT c.partner_id, m.id, m.sender_id, m.recipient_id, m.content, m.sent_at, \
         m.read_at, m.edited_at, c.unread_count, b.blocker_id, c.muted \
         FROM direct_message_conversations c JOIN direct_messages m ON m.id = c.last_message_id \
         LEFT JOIN direct_message_blocks b ON b.blocker_id = c.owner_id AND b.blocked_id = c.partner_id \
         WHERE c.owner_id = ? + 0 AND c.archived = ? + 0 ORDER BY c.last_message_id DESC LIMIT ? + 0";
    let wide = "SELECT c.partner_id, c.last_message_id AS id, c.last_sender_id AS sender_id, \
         c.last_recipient_id AS recipient_id, c.last_content AS content, \
         c.last_sent_at AS sent_at, c.last_read_at AS read_at, c.last_edited_at AS edited_at, \
         c.unread_count, b.blocker_id, c.muted \
         FROM alt_wide_conversations c \
         LEFT JOIN direct_message_blocks b ON b.blocker_id = c.owner_id AND b.blocked_id = c.partner_id \
         WHERE c.owner_id = ? + 0 AND c.archived = ? + 0 ORDER BY c.last_message_id DESC LIMIT ? + 0";
    report(
        "last message in the conversation row: inbox screen of 20",
        side_by_side(
            || {
                let rows: Vec<Summary> = Hand::<6, 3>::new(joined, [HOT, 0, 20], true)
                    .load(&mut **c())
                    .expect("screen");
                std::hint::black_box(rows);
            },
            || {
                let rows: Vec<Summary> = Hand::<7, 3>::new(wide, [HOT, 0, 20], true)
                    .load(&mut **c())
                    .expect("screen");
                std::hint::black_box(rows);
            },
        ),
    );

    let per_partner = "SELECT c.unread_count AS n FROM direct_message_conversations c \
         WHERE c.owner_id = ? + 0 AND c.unread_count > 0 AND NOT EXISTS (SELECT 1 \
         FROM direct_message_blocks b WHERE b.blocker_id = c.owner_id AND b.blocked_id = c.partner_id)";
    let total = "SELECT unread AS n FROM alt_unread_totals WHERE user_id = ? + 0";
    report(
        "per-user unread total: unread_count, 1,000 partners",
        side_by_side(
            || {
                let counts: Vec<Number> = Hand::<8, 1>::new(per_partner, [HOT], true)
                    .load(&mut **c())
                    .expect("count");
                std::hint::black_box(counts.iter().map(|r| r.n).sum::<i64>());
            },
            || {
                let counts: Vec<Number> = Hand::<9, 1>::new(total, [HOT], true)
                    .load(&mut **c())
                    .expect("count");
                std::hint::black_box(counts.iter().map(|r| r.n).sum::<i64>());
            },
        ),
    );
    // The send's own statements by hand (the message, both conversation rows), with and
    // without the recipient's total; each in its write transaction.
    let insert = "INSERT INTO direct_messages (sender_id, recipient_id, content, sent_at) \
         VALUES (? + 0, ? + 0, 'hello', '2027-01-01 00:00:00.000000')";
    let sides = "UPDATE direct_message_conversations SET last_message_id = last_insert_rowid(), \
         unread_count = unread_count + (owner_id = ? + 0) \
         WHERE owner_id IN (? + 0, ? + 0) AND partner_id IN (? + 0, ? + 0)";
    let bump = "UPDATE alt_unread_totals SET unread = unread + 1 WHERE user_id = ? + 0";
    let send = |with_total: bool| {
        let mut conn = c();
        conn.batch_execute("BEGIN IMMEDIATE").expect("begin");
        Hand::<10, 2>::new(insert, [20, HOT], true)
            .execute(&mut **conn)
            .expect("insert");
        Hand::<11, 5>::new(sides, [HOT, 20, HOT, 20, HOT], true)
            .execute(&mut **conn)
            .expect("sides");
        if with_total {
            Hand::<12, 1>::new(bump, [HOT], true)
                .execute(&mut **conn)
                .expect("total");
        }
        conn.batch_execute("COMMIT").expect("commit");
    };
    report(
        "per-user unread total: what a send pays for it",
        side_by_side(|| send(false), || send(true)),
    );
}
