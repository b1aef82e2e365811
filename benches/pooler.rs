//! The cost of PgBouncer in transaction pooling mode: the same calls on a direct connection
//! (statements prepared once per connection) and through the pooler
//! (`DIRECTMESSAGES_POSTGRES_POOLER_URL`, statement cache off, `transaction_pooling`),
//! blocking and async, alternating round by round; medians of the per-call means.
//!
//! `cargo bench --bench pooler --features postgres,diesel-async` prints a markdown table.

mod common;

use std::time::Instant;

use diesel::connection::SimpleConnection;
use diesel::Connection;
use directmessages::{AsyncInbox, ConversationQuery, Inbox, TransactionPooler};

const ROUNDS: usize = 15;
const CALLS: usize = 100;

/// The calls measured, by name; each takes the call index.
const OPERATIONS: [&str; 4] = [
    "send_message",
    "unread_count",
    "conversation (50)",
    "read_message (read)",
];

fn blocking(inbox: &Inbox, conn: &mut diesel::PgConnection, op: usize, i: usize, read: i64) {
    let user = 2 + (i % 50) as i64;
    match op {
        0 => drop(inbox.send_message(conn, 1, user, "hello").expect("send")),
        1 => drop(inbox.unread_count(conn, user).expect("count")),
        2 => drop(
            inbox
                .conversation(conn, 1, user, ConversationQuery::new().limit(50))
                .expect("page"),
        ),
        _ => drop(inbox.read_message(conn, read).expect("read")),
    }
}

async fn asynchronous(
    inbox: &AsyncInbox,
    conn: &mut diesel_async::AsyncPgConnection,
    op: usize,
    i: usize,
    read: i64,
) {
    let user = 2 + (i % 50) as i64;
    match op {
        0 => drop(
            inbox
                .send_message(conn, 1, user, "hello")
                .await
                .expect("send"),
        ),
        1 => drop(inbox.unread_count(conn, user).await.expect("count")),
        2 => drop(
            inbox
                .conversation(conn, 1, user, ConversationQuery::new().limit(50))
                .await
                .expect("page"),
        ),
        _ => drop(inbox.read_message(conn, read).await.expect("read")),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let (Ok(admin), Ok(pooler)) = (
        std::env::var("DIRECTMESSAGES_POSTGRES_URL"),
        std::env::var("DIRECTMESSAGES_POSTGRES_POOLER_URL"),
    ) else {
        eprintln!("note: skipped: DIRECTMESSAGES_POSTGRES_URL and _POOLER_URL must be set");
        return;
    };
    let name = format!("dm_pooler_bench_{}", std::process::id());
    let mut server = diesel::PgConnection::establish(&admin).expect("postgres");
    server
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .expect("database");
    let (direct_url, pooled_url) = (
        common::with_database(&admin, &name),
        common::with_database(&pooler, &name),
    );

    let direct = Inbox::new();
    let pooled = Inbox::builder().transaction_pooling(true).build();
    let mut conns = [
        diesel::PgConnection::establish(&direct_url).expect("direct"),
        diesel::PgConnection::establish(&pooled_url).expect("through the pooler"),
    ];
    directmessages::run_migrations(&mut conns[0]).expect("migrations");
    for i in 0..2_000 {
        direct
            .send_message(&mut conns[0], 100 + (i % 7), 2 + (i % 50), "fixture")
            .expect("fixture");
    }
    let read = direct
        .send_message(&mut conns[0], 2, 1, "read")
        .expect("read")
        .id;
    direct.read_message(&mut conns[0], read).expect("mark");

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let async_inboxes = [
        Inbox::new().into(),
        Inbox::builder().transaction_pooling(true).build_async(),
    ];
    let mut async_conns = rt.block_on(async {
        [
            <diesel_async::AsyncPgConnection as diesel_async::AsyncConnection>::establish(
                &direct_url,
            )
            .await
            .expect("direct"),
            TransactionPooler::establish(&pooled_url)
                .await
                .expect("through the pooler"),
        ]
    });
    let inboxes = [&direct, &pooled];

    println!("| operation | blocking direct µs | blocking PgBouncer µs | ratio | async direct µs | async PgBouncer µs | ratio |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (op, label) in OPERATIONS.iter().enumerate() {
        // [blocking direct, blocking pooled, async direct, async pooled]
        let mut samples: [Vec<f64>; 4] = Default::default();
        for _ in 0..ROUNDS {
            for (side, (inbox, conn)) in inboxes.iter().zip(conns.iter_mut()).enumerate() {
                let start = Instant::now();
                for i in 0..CALLS {
                    blocking(inbox, conn, op, i, read);
                }
                samples[side].push(start.elapsed().as_secs_f64() * 1e6 / CALLS as f64);
            }
            for (side, (inbox, conn)) in
                async_inboxes.iter().zip(async_conns.iter_mut()).enumerate()
            {
                let start = Instant::now();
                rt.block_on(async {
                    for i in 0..CALLS {
                        asynchronous(inbox, conn, op, i, read).await;
                    }
                });
                samples[2 + side].push(start.elapsed().as_secs_f64() * 1e6 / CALLS as f64);
            }
        }
        let [a, b, c, d] = samples.map(median);
        println!(
            "| {label} | {a:.0} | {b:.0} | {:.2}x | {c:.0} | {d:.0} | {:.2}x |",
            b / a,
            d / c
        );
    }
    drop(conns);
    drop(async_conns);
    let _ = server.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
}
