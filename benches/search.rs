//! Search at scale: `cargo bench --bench search --all-features`.
//!
//! One user with 20,000 messages (with 200 partners, spread over the whole id range) among
//! `DIRECTMESSAGES_BENCH_SIZES` messages in all (default `10000,1000000,10000000`), each of
//! eight words drawn from a Zipf-distributed vocabulary of 5,000, so the most common word is
//! in about half of all messages. SQLite runs on a temporary file (WAL); PostgreSQL and
//! MySQL/MariaDB on the servers of `DIRECTMESSAGES_POSTGRES_URL` and
//! `DIRECTMESSAGES_MYSQL_URL` (skipped with a notice when unset), up to 1,000,000 messages
//! unless `DIRECTMESSAGES_BENCH_SERVERS_10M` is set (filling a server takes long).
//!
//! The fixture writes rows and index rows in bulk, in the form the inbox writes them (the
//! terms of `src/search.rs`; every word here stands for itself), and checks that the
//! inbox finds in it exactly what a scan in Rust finds. Each search then runs 15 rounds of
//! 20 calls (fewer for a search slower than 2.5 ms: as many as fit in 50 ms), the searches
//! alternating by round; the table gives the median of the per-call means.

use std::time::Instant;

#[cfg(feature = "sqlite")]
use diesel::connection::SimpleConnection;
use diesel::Connection;
use directmessages::{Inbox, InboxConnection, SearchQuery};

mod common;

/// The user who searches.
const USER: i64 = 1;
/// How many messages `USER` has.
const USER_MESSAGES: u64 = 20_000;
/// The vocabulary's size, and the words of a message.
const VOCABULARY: usize = 5_000;
const WORDS_PER_MESSAGE: usize = 8;
/// Rows per `INSERT`.
const BATCH: u64 = 500;

/// A small deterministic generator.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

/// Word `i` of the vocabulary: five letters, none of them `q` (so each stands for itself
/// in a term); no word is a prefix of another.
fn word(i: usize) -> String {
    const LETTERS: &[u8] = b"abcdefghijklmnoprstuvwxyz";
    let mut n = (i as u64 * 7_919 + 1_234) % 9_765_625; // 25^5
    let mut w = String::with_capacity(5);
    for _ in 0..5 {
        w.push(char::from(LETTERS[(n % 25) as usize]));
        n /= 25;
    }
    w
}

/// Draws word ranks by Zipf's law (weight `1 / (rank + 1)`).
struct Zipf(Vec<f64>);

impl Zipf {
    fn new() -> Self {
        let mut total = 0.0;
        Self(
            (0..VOCABULARY)
                .map(|r| {
                    total += 1.0 / (r as f64 + 1.0);
                    total
                })
                .collect(),
        )
    }

    fn draw(&self, rng: &mut Lcg) -> usize {
        let total = self.0[VOCABULARY - 1];
        let x = (rng.next() % 1_000_000_007) as f64 / 1_000_000_007.0 * total;
        self.0.partition_point(|&c| c < x).min(VOCABULARY - 1)
    }
}

/// One generated message.
struct Generated {
    id: i64,
    sender: i64,
    recipient: i64,
    words: Vec<usize>,
}

/// Message `id` of a fixture of `total`: every `total / 20,000`-th is `USER`'s.
fn generate(id: i64, total: u64, zipf: &Zipf, rng: &mut Lcg) -> Generated {
    let stride = (total / USER_MESSAGES).max(1) as i64;
    let (sender, recipient) = if id % stride == 0 && (id / stride) as u64 <= USER_MESSAGES {
        let partner = 2 + (id / stride) % 200;
        if id % 2 == 0 {
            (USER, partner)
        } else {
            (partner, USER)
        }
    } else {
        let a = 1_000 + (rng.next() % 100_000) as i64;
        (a, a + 1 + (rng.next() % 1_000) as i64)
    };
    let words = (0..WORDS_PER_MESSAGE).map(|_| zipf.draw(rng)).collect();
    Generated {
        id,
        sender,
        recipient,
        words,
    }
}

/// The terms of `owner`'s side of `m`, as the inbox writes them.
fn terms(owner: i64, partner: i64, m: &Generated) -> String {
    let mut words: Vec<usize> = m.words.clone();
    words.sort_unstable();
    words.dedup();
    let mut t: Vec<String> = words
        .iter()
        .map(|&w| format!("{owner:x}x{}", word(w)))
        .collect();
    t.push(format!("{owner:x}y{partner:x}"));
    t.join(" ")
}

/// How a backend takes the bulk rows.
struct Dialect {
    name: &'static str,
    /// The terms column's value for the space-separated `{}`.
    terms: &'static str,
    /// Whether the index rows are keyed by FTS5 rowid (`2 * id + side`).
    rowid: bool,
    /// What lets an `INSERT` give the ids (PostgreSQL's identity column).
    own_ids: &'static str,
}

/// Fills an empty, migrated database with `total` messages and their index rows;
/// returns, for each benchmarked query, how many of `USER`'s messages hold it.
fn fill<C: Connection>(conn: &mut C, dialect: &Dialect, total: u64, queries: &[Query]) -> Vec<u64> {
    let zipf = Zipf::new();
    let mut rng = Lcg(0x5eed);
    let mut expected = vec![0_u64; queries.len()];
    let mut id = 1_i64;
    while id as u64 <= total {
        let batch: Vec<Generated> = (0..BATCH.min(total + 1 - id as u64))
            .map(|i| generate(id + i as i64, total, &zipf, &mut rng))
            .collect();
        id += batch.len() as i64;
        let messages: Vec<String> = batch
            .iter()
            .map(|m| {
                let text: Vec<String> = m.words.iter().map(|&w| word(w)).collect();
                format!(
                    "({}, {}, {}, '{}', '2026-01-01 00:00:00', '2026-01-01 00:00:00')",
                    m.id,
                    m.sender,
                    m.recipient,
                    text.join(" ")
                )
            })
            .collect();
        let mut index = Vec::with_capacity(batch.len() * 2);
        for m in &batch {
            for (side, owner, partner) in [(0, m.sender, m.recipient), (1, m.recipient, m.sender)] {
                let value = dialect.terms.replace("{}", &terms(owner, partner, m));
                index.push(if dialect.rowid {
                    format!("({}, {value})", 2 * m.id + side)
                } else {
                    format!("({}, {owner}, {value})", m.id)
                });
            }
            if m.sender == USER || m.recipient == USER {
                for (q, query) in queries.iter().enumerate() {
                    if query.words.iter().all(|w| m.words.contains(w)) {
                        expected[q] += 1;
                    }
                }
            }
        }
        let columns = if dialect.rowid {
            "(rowid, terms)"
        } else {
            "(message_id, owner_id, terms)"
        };
        conn.batch_execute(&format!(
            "INSERT INTO direct_messages (id, sender_id, recipient_id, content, sent_at, read_at) \
             {} VALUES {}; INSERT INTO direct_message_search {columns} VALUES {}",
            dialect.own_ids,
            messages.join(", "),
            index.join(", ")
        ))
        .expect("fill");
    }
    let analyze = match dialect.name {
        "mysql" => "ANALYZE TABLE direct_messages, direct_message_search",
        "sqlite" => "INSERT INTO direct_message_search (direct_message_search) VALUES ('optimize')",
        _ => "VACUUM ANALYZE",
    };
    conn.batch_execute(analyze).expect("analyze");
    expected
}

/// A benchmarked search: its label, its words (ranks), and its limit.
struct Query {
    label: &'static str,
    words: Vec<usize>,
    limit: Option<u32>,
}

impl Query {
    fn search(&self) -> SearchQuery {
        let text: Vec<String> = self.words.iter().map(|&w| word(w)).collect();
        let query = SearchQuery::new(&text.join(" "));
        match self.limit {
            Some(n) => query.limit(n),
            None => query,
        }
    }
}

fn queries() -> Vec<Query> {
    vec![
        Query {
            label: "common word, latest 20",
            words: vec![0],
            limit: Some(20),
        },
        Query {
            label: "rare word, latest 20",
            words: vec![VOCABULARY - 1],
            limit: Some(20),
        },
        Query {
            label: "two words, latest 20",
            words: vec![1, 2],
            limit: Some(20),
        },
        Query {
            label: "common word, every match",
            words: vec![0],
            limit: None,
        },
    ]
}

/// Checks the fixture against the inbox, then times each query; prints a row each.
fn run<C: InboxConnection>(
    conn: &mut C,
    name: &str,
    total: u64,
    expected: &[u64],
    queries: &[Query],
) {
    let inbox = Inbox::new();
    for (query, &n) in queries.iter().zip(expected) {
        let all = query.search();
        let all = SearchQuery::new(all.text());
        let found = inbox.search(conn, USER, all).expect("search");
        assert_eq!(
            found.len() as u64,
            n,
            "{}: the index disagrees",
            query.label
        );
    }
    const ROUNDS: usize = 15;
    // Calls per round: 20, or as many as fit in about 50 ms for a slow search (at least 1).
    let calls: Vec<usize> = queries
        .iter()
        .map(|query| {
            let start = Instant::now();
            inbox.search(conn, USER, query.search()).expect("search");
            let once = start.elapsed().as_secs_f64();
            ((0.05 / once) as usize).clamp(1, 20)
        })
        .collect();
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); queries.len()];
    let mut found = vec![0; queries.len()];
    for round in 0..ROUNDS {
        for k in 0..queries.len() {
            let q = (k + round) % queries.len();
            let start = Instant::now();
            for _ in 0..calls[q] {
                found[q] = inbox
                    .search(conn, USER, queries[q].search())
                    .expect("search")
                    .len();
            }
            times[q].push(start.elapsed().as_secs_f64() * 1e6 / calls[q] as f64);
        }
    }
    for (q, query) in queries.iter().enumerate() {
        times[q].sort_by(f64::total_cmp);
        println!(
            "| {name} | {total} | {} | {} of {} | {:.0} |",
            query.label,
            found[q],
            expected[q],
            times[q][ROUNDS / 2]
        );
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this with no argument.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let queries = queries();
    let servers_10m = std::env::var("DIRECTMESSAGES_BENCH_SERVERS_10M").is_ok();
    println!("| backend | messages | search | found of matches | p50 µs |");
    println!("|---|---:|---|---:|---:|");
    for total in common::sizes("10000,1000000,10000000") {
        #[cfg(feature = "sqlite")]
        {
            let path =
                std::env::temp_dir().join(format!("dm-search-{}-{total}.db", std::process::id()));
            let mut conn =
                diesel::SqliteConnection::establish(&path.to_string_lossy()).expect("open");
            conn.batch_execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF;")
                .expect("pragmas");
            directmessages::run_migrations(&mut conn).expect("migrations");
            let dialect = Dialect {
                name: "sqlite",
                terms: "'{}'",
                rowid: true,
                own_ids: "",
            };
            conn.batch_execute("BEGIN").expect("begin");
            let expected = fill(&mut conn, &dialect, total, &queries);
            conn.batch_execute("COMMIT").expect("commit");
            run(&mut conn, "sqlite", total, &expected, &queries);
            drop(conn);
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
        }
        if total > 1_000_000 && !servers_10m {
            continue;
        }
        #[cfg(feature = "postgres")]
        if let Some(scratch) = common::PgScratch::new("search") {
            let mut conn = diesel::PgConnection::establish(&scratch.url).expect("postgres");
            let dialect = Dialect {
                name: "postgres",
                terms: "array_to_tsvector(string_to_array('{}', ' '))",
                rowid: false,
                own_ids: "OVERRIDING SYSTEM VALUE",
            };
            let expected = fill(&mut conn, &dialect, total, &queries);
            run(&mut conn, "postgres", total, &expected, &queries);
        }
        #[cfg(feature = "mysql")]
        if let Some(scratch) = common::MysqlScratch::new("search") {
            let mut conn = diesel::MysqlConnection::establish(&scratch.url).expect("mysql");
            let dialect = Dialect {
                name: "mysql",
                terms: "'{}'",
                rowid: false,
                own_ids: "",
            };
            let expected = fill(&mut conn, &dialect, total, &queries);
            run(&mut conn, "mysql", total, &expected, &queries);
        }
    }
}
