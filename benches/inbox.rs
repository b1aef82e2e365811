//! Every read path and the write paths of the inbox on SQLite, at 20 thousand and at 1
//! million messages, side by side: an operation that stays flat between the two sizes
//! uses its index the whole way.
//!
//! `cargo bench --bench inbox`; the fixtures are built once per size in a temp file.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use diesel::connection::SimpleConnection;
use diesel::{Connection, SqliteConnection};
use directmessages::{ConversationQuery, ConversationsQuery, Inbox};

/// The user the benchmarks look at: 1,000 partners, and 10,000 messages with user 2.
const HOT: i64 = 1;
/// Total messages: the hot user's 20,000 alone, then with 980,000 more around them.
const SIZES: [u64; 2] = [20_000, 1_000_000];

struct Fixture {
    conn: SqliteConnection,
    path: std::path::PathBuf,
    /// A message id in the middle of the hot conversation, for deep pages.
    middle: i64,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut name = self.path.clone().into_os_string();
            name.push(suffix);
            let _ = std::fs::remove_file(name);
        }
    }
}

/// `total` messages: 20,000 around the hot user, the rest between 10,000 random users,
/// a third of them unread; the conversation table derived from them.
fn fixture(total: u64) -> Fixture {
    let path = std::env::temp_dir().join(format!("dm-bench-{}-{total}.db", std::process::id()));
    let mut conn = SqliteConnection::establish(&path.to_string_lossy()).expect("open");
    conn.batch_execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
        .expect("pragmas");
    directmessages::run_migrations(&mut conn).expect("migrations");
    let background = total.saturating_sub(20_000);
    conn.batch_execute(&format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000)
         INSERT INTO direct_messages (sender_id, recipient_id, content, sent_at, read_at)
         SELECT CASE WHEN i % 2 = 0 THEN 1 ELSE 2 + i % 1000 END,
                CASE WHEN i % 2 = 0 THEN 2 + i % 1000 ELSE 1 END,
                'to and from the hot user ' || i, '2026-01-01 00:00:00.000000',
                CASE WHEN i % 3 = 0 THEN NULL ELSE '2026-01-01 00:00:01.000000' END
         FROM n;
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000)
         INSERT INTO direct_messages (sender_id, recipient_id, content, sent_at, read_at)
         SELECT 1 + i % 2, 2 - i % 2, 'a long conversation ' || i, '2026-01-01 00:00:00.000000',
                CASE WHEN i % 3 = 0 THEN NULL ELSE '2026-01-01 00:00:01.000000' END
         FROM n;
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {background})
         INSERT INTO direct_messages (sender_id, recipient_id, content, sent_at, read_at)
         SELECT s, CASE WHEN r = s THEN r + 1 ELSE r END, 'message ' || i,
                '2026-01-01 00:00:00.000000',
                CASE WHEN i % 3 = 0 THEN NULL ELSE '2026-01-01 00:00:01.000000' END
         FROM (SELECT i, 2000 + (i * 7919) % 10000 AS s, 2000 + (i * 104729) % 10007 AS r FROM n);
         INSERT INTO direct_message_conversations (owner_id, partner_id, last_message_id, unread_count)
         SELECT owner, partner, MAX(id), SUM(unread) FROM (
             SELECT sender_id AS owner, recipient_id AS partner, id, 0 AS unread FROM direct_messages
             UNION ALL
             SELECT recipient_id, sender_id, id, read_at IS NULL FROM direct_messages
         ) GROUP BY owner, partner;
         ANALYZE;"
    ))
    .expect("fixture");
    // Hot conversation ids: 10,001..=20,000.
    Fixture {
        conn,
        path,
        middle: 15_000,
    }
}

fn benches(c: &mut Criterion) {
    let inbox = Inbox::new();
    let mut fixtures: Vec<(u64, Fixture)> = SIZES.iter().map(|&n| (n, fixture(n))).collect();

    let mut group = c.benchmark_group("inbox");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));
    for (size, f) in &mut fixtures {
        let size = *size;
        let (conn, middle) = (&mut f.conn, f.middle);
        group.bench_with_input(BenchmarkId::new("send_message", size), &size, |b, _| {
            b.iter(|| {
                inbox
                    .send_message(conn, 3, HOT, black_box("hello"))
                    .expect("send")
            })
        });
        group.bench_with_input(
            BenchmarkId::new("read_message (unread)", size),
            &size,
            |b, _| {
                // Sent untimed, then read: each read marks an unread message.
                b.iter_custom(|iters| {
                    let ids: Vec<i64> = (0..iters)
                        .map(|_| {
                            inbox
                                .send_message(conn, 4, HOT, "read me")
                                .expect("send")
                                .id
                        })
                        .collect();
                    let start = std::time::Instant::now();
                    for id in ids {
                        black_box(inbox.read_message_as(conn, HOT, id).expect("read"));
                    }
                    start.elapsed()
                })
            },
        );
        // User 4 has a handful of unread messages, the hot user 3,333 from 1,001 users.
        group.bench_with_input(BenchmarkId::new("unread_count", size), &size, |b, _| {
            b.iter(|| inbox.unread_count(conn, black_box(4)).expect("count"))
        });
        group.bench_with_input(
            BenchmarkId::new("unread_count (3333)", size),
            &size,
            |b, _| b.iter(|| inbox.unread_count(conn, black_box(HOT)).expect("count")),
        );
        group.bench_with_input(BenchmarkId::new("unread_messages", size), &size, |b, _| {
            b.iter(|| inbox.unread_messages(conn, black_box(4)).expect("unread"))
        });
        group.bench_with_input(
            BenchmarkId::new("conversation latest 50", size),
            &size,
            |b, _| {
                let q = ConversationQuery::new().reversed().limit(50);
                b.iter(|| inbox.conversation(conn, HOT, 2, q).expect("page"))
            },
        );
        group.bench_with_input(
            BenchmarkId::new("conversation deep page 50", size),
            &size,
            |b, _| {
                let q = ConversationQuery::new().reversed().limit(50).before(middle);
                b.iter(|| inbox.conversation(conn, HOT, 2, q).expect("page"))
            },
        );
        group.bench_with_input(
            BenchmarkId::new("conversations (inbox) 20", size),
            &size,
            |b, _| {
                let q = ConversationsQuery::new().limit(20);
                b.iter(|| inbox.conversations(conn, HOT, q).expect("summary"))
            },
        );
        group.bench_with_input(
            BenchmarkId::new("conversation_partners (1000)", size),
            &size,
            |b, _| b.iter(|| inbox.conversation_partners(conn, HOT).expect("partners")),
        );
    }
    group.finish();
}

criterion_group!(inbox, benches);
criterion_main!(inbox);
