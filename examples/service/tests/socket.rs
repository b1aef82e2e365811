//! The service over a real loopback socket: HTTP requests and the live event stream.

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
