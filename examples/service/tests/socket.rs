//! The service over a real loopback socket: HTTP requests and the live event stream.

mod common;

use std::time::Duration;

use directmessages::Message;
use directmessages_service::{app, AppState, Db, Event};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One HTTP/1.1 request on a new connection; the status and the body.
async fn request(
    addr: std::net::SocketAddr,
    user: i64,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nx-user-id: {user}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Reads the event stream until an event named `kind` arrives; its data.
async fn next_event(stream: &mut TcpStream, seen: &mut String, kind: &str) -> Event {
    let marker = format!("event: {kind}\n");
    loop {
        if let Some(at) = seen.find(&marker) {
            let rest = &seen[at + marker.len()..];
            if let Some(end) = rest.find("\n\n") {
                let data: String = rest[..end]
                    .lines()
                    .filter_map(|l| l.strip_prefix("data: "))
                    .collect();
                let event = serde_json::from_str(&data).unwrap();
                *seen = rest[end..].to_owned();
                return event;
            }
        }
        let mut buffer = [0_u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer))
            .await
            .unwrap_or_else(|_| panic!("no {kind} event within 10 s; got {seen:?}"))
            .unwrap();
        assert!(n > 0, "the stream closed");
        // Chunked transfer: the chunk sizes are lines of their own, which the parse skips.
        seen.push_str(&String::from_utf8_lossy(&buffer[..n]).replace("\r\n", "\n"));
    }
}

#[tokio::test]
async fn the_event_stream_tells_both_users_over_a_socket() {
    let path = std::env::temp_dir().join(format!("dm-service-socket-{}.db", std::process::id()));
    let state = AppState::new(Db::connect(&path.to_string_lossy()).await.unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app(state)).await });

    // User 2's page: the stream, with the user in the query as EventSource sends it.
    let mut events = TcpStream::connect(addr).await.unwrap();
    events
        .write_all(
            format!("GET /api/events?user=2 HTTP/1.1\r\nhost: {addr}\r\naccept: text/event-stream\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
    let mut seen = String::new();
    // Wait for the response head, so the subscription exists before the send.
    while !seen.contains("\n\n") {
        let mut buffer = [0_u8; 1024];
        let n = tokio::time::timeout(Duration::from_secs(10), events.read(&mut buffer))
            .await
            .expect("response head")
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&buffer[..n]).replace("\r\n", "\n"));
    }
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    assert!(seen.contains("text/event-stream"), "{seen}");
    seen.clear();

    // Someone else's message is not on user 2's stream; user 1's is.
    let (status, _) = request(
        addr,
        3,
        "POST",
        "/api/messages",
        r#"{"to": 4, "content": "not for 2"}"#,
    )
    .await;
    assert_eq!(status, 201);
    let (status, body) = request(
        addr,
        1,
        "POST",
        "/api/messages",
        r#"{"to": 2, "content": "Lunch?"}"#,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let sent: Message = serde_json::from_str(&body).unwrap();
    let event = next_event(&mut events, &mut seen, "message_sent").await;
    assert_eq!(event.message, sent);
    assert!(!event.muted);

    // User 2 reads it: the stream says so (user 1's page would show "seen").
    let (status, body) = request(
        addr,
        2,
        "POST",
        &format!("/api/messages/{}/read", sent.id),
        "",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let event = next_event(&mut events, &mut seen, "message_read").await;
    assert_eq!(event.message.id, sent.id);
    assert!(event.message.read_at.is_some());

    // An edit and an unsend reach it too.
    let (status, _) = request(
        addr,
        1,
        "PATCH",
        &format!("/api/messages/{}", sent.id),
        r#"{"content": "Lunch at 1?"}"#,
    )
    .await;
    assert_eq!(status, 200);
    let event = next_event(&mut events, &mut seen, "message_edited").await;
    assert_eq!(event.message.content, "Lunch at 1?");
    let (status, _) = request(
        addr,
        1,
        "POST",
        &format!("/api/messages/{}/unsend", sent.id),
        "",
    )
    .await;
    assert_eq!(status, 204);
    let event = next_event(&mut events, &mut seen, "message_unsent").await;
    assert_eq!(event.message.id, sent.id);
    assert!(!seen.contains("not for 2"));

    server.abort();
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

/// One instance of the service as a user starts it: the binary, with `DATABASE_URL` and
/// `ADDR`, on a port of its own; stopped on drop.
struct Instance {
    _child: tokio::process::Child,
    addr: std::net::SocketAddr,
}

impl Instance {
    async fn start(database_url: &str, pooler: &str) -> Self {
        use tokio::io::AsyncBufReadExt;
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_directmessages-service"))
            .env("DATABASE_URL", database_url)
            .env("DATABASE_POOLER", pooler)
            .env("ADDR", "127.0.0.1:0")
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start the service");
        let stdout = child.stdout.take().expect("its output");
        let mut line = String::new();
        tokio::time::timeout(
            Duration::from_secs(60),
            tokio::io::BufReader::new(stdout).read_line(&mut line),
        )
        .await
        .expect("the service started within a minute")
        .expect("its first line");
        // "chat on http://127.0.0.1:PORT (database: …)"
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        Self {
            _child: child,
            addr,
        }
    }
}

/// Sixteen clients send 500 messages from one user to five others, each send through one
/// of two instances on the same database, then forty clients read one message at once
/// through both: every send answers 201, every read 200, never a 5xx, and the unread
/// counts add up to the sends.
async fn two_instances_take_sixteen_concurrent_senders(database_url: &str, pooler: &str) {
    const CLIENTS: usize = 16;
    const SENDS: usize = 500;
    // Started together: both run the migrations at once.
    let (first, second) = tokio::join!(
        Instance::start(database_url, pooler),
        Instance::start(database_url, pooler)
    );
    let instances = [first, second];
    let addrs = [instances[0].addr, instances[1].addr];
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let next = next.clone();
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                loop {
                    let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if k >= SENDS {
                        return statuses;
                    }
                    let body = format!(r#"{{"to": {}, "content": "load {k}"}}"#, 2 + k % 5);
                    let (status, text) =
                        request(addrs[(c + k) % 2], 1, "POST", "/api/messages", &body).await;
                    statuses.push((status, text));
                }
            })
        })
        .collect();
    let mut created = 0;
    for client in clients {
        for (status, text) in client.await.unwrap() {
            assert_eq!(status, 201, "a send answered {status}: {text}");
            created += 1;
        }
    }
    assert_eq!(created, SENDS);

    let mut unread = 0;
    for user in 2..=6 {
        let (status, body) = request(addrs[user % 2], user as i64, "GET", "/api/unread", "").await;
        assert_eq!(status, 200, "{body}");
        unread += serde_json::from_str::<serde_json::Value>(&body).unwrap()["count"]
            .as_i64()
            .unwrap();
    }
    assert_eq!(
        unread, SENDS as i64,
        "the unread counts add up to the sends"
    );

    // Forty readers of one unread message, through both instances at once.
    let (status, body) = request(
        addrs[0],
        1,
        "POST",
        "/api/messages",
        r#"{"to": 7, "content": "read me"}"#,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let id = serde_json::from_str::<Message>(&body).unwrap().id;
    let readers: Vec<_> = (0..40)
        .map(|r| {
            let addr = addrs[r % 2];
            tokio::spawn(async move {
                request(addr, 7, "POST", &format!("/api/messages/{id}/read"), "").await
            })
        })
        .collect();
    for reader in readers {
        let (status, body) = reader.await.unwrap();
        assert_eq!(status, 200, "a read answered {status}: {body}");
    }
    let (status, body) = request(addrs[1], 7, "GET", "/api/unread", "").await;
    assert_eq!((status, body.as_str()), (200, r#"{"count":0}"#));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_sqlite_file_answer_every_concurrent_send() {
    let path = std::env::temp_dir().join(format!("dm-service-load-{}.db", std::process::id()));
    two_instances_take_sixteen_concurrent_senders(&path.to_string_lossy(), "").await;
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

/// The same on PostgreSQL (`DIRECTMESSAGES_POSTGRES_URL`, a schema of its own).
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_postgresql_answer_every_concurrent_send() {
    let Some(schema) = common::PgSchema::new("dm_service_load") else {
        return;
    };
    two_instances_take_sixteen_concurrent_senders(&schema.url, "").await;
}

/// The same through PgBouncer in transaction pooling mode
/// (`DIRECTMESSAGES_POSTGRES_POOLER_URL`), the service started with
/// `DATABASE_POOLER=transaction`.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_through_pgbouncer_answer_every_concurrent_send() {
    let Some(database) = common::PgSchema::through_pooler("dm_service_pooled") else {
        return;
    };
    two_instances_take_sixteen_concurrent_senders(&database.url, "transaction").await;
}
