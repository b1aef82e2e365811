//! Every route and every error mapping, through the router in process.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use directmessages::{ConversationSummary, Message};
use directmessages_service::{app, AppState, Db, ErrorBody, Marked, Unread};
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;
use serde_json::json;
use tower::ServiceExt;

/// A fresh database file, removed with the value.
pub struct TempDb(std::path::PathBuf);

impl TempDb {
    fn new() -> Self {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self(std::env::temp_dir().join(format!("dm-service-api-{}-{n}.db", std::process::id())))
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
        }
    }
}

struct Client {
    router: axum::Router,
    _file: Option<TempDb>,
}

impl Client {
    /// On a new SQLite file.
    async fn new() -> Self {
        let file = TempDb::new();
        let db = Db::connect(&file.0.to_string_lossy()).await.unwrap();
        Self {
            router: app(AppState::new(db)),
            _file: Some(file),
        }
    }

    /// `method path` as `user` (none: no header), with a JSON body if given.
    async fn call(
        &self,
        user: Option<i64>,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (StatusCode, Vec<u8>) {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(user) = user {
            request = request.header("x-user-id", user.to_string());
        }
        let request = match body {
            Some(body) => request
                .header("content-type", "application/json")
                .body(Body::from(body.to_string())),
            None => request.body(Body::empty()),
        }
        .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, bytes.to_vec())
    }

    /// The call, expected to answer `status` with a JSON body of `T`.
    async fn json<T: DeserializeOwned>(
        &self,
        user: i64,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
        status: StatusCode,
    ) -> T {
        let (got, bytes) = self.call(Some(user), method, path, body).await;
        assert_eq!(
            got,
            status,
            "{method} {path}: {}",
            String::from_utf8_lossy(&bytes)
        );
        serde_json::from_slice(&bytes).unwrap()
    }

    /// The call, expected to fail with `status` and the error code `code`.
    async fn error(
        &self,
        user: Option<i64>,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
        status: StatusCode,
        code: &str,
    ) {
        let (got, bytes) = self.call(user, method, path, body).await;
        assert_eq!(
            got,
            status,
            "{method} {path}: {}",
            String::from_utf8_lossy(&bytes)
        );
        let error: ErrorBody = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(error.error, code, "{method} {path}");
        assert!(!error.message.is_empty());
    }

    async fn send(&self, from: i64, to: i64, text: &str) -> Message {
        self.json(
            from,
            "POST",
            "/api/messages",
            Some(json!({"to": to, "content": text})),
            StatusCode::CREATED,
        )
        .await
    }

    async fn no_content(&self, user: i64, method: &str, path: &str) {
        let (status, bytes) = self.call(Some(user), method, path, None).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{method} {path}: {bytes:?}");
    }
}

#[tokio::test]
async fn the_page_and_health_are_served() {
    let client = Client::new().await;
    let (status, body) = client.call(None, "GET", "/", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&body).contains("EventSource"));
    let (status, body) = client.call(None, "GET", "/healthz", None).await;
    assert_eq!(
        (status, body.as_slice()),
        (StatusCode::OK, b"ok".as_slice())
    );
}

#[tokio::test]
async fn send_list_read_and_mark() {
    let client = Client::new().await;
    let first = client.send(1, 2, "Lunch?").await;
    assert_eq!((first.sender_id, first.recipient_id), (1, 2));
    let second = client.send(1, 2, "At noon").await;

    let unread: Unread = client
        .json(2, "GET", "/api/unread", None, StatusCode::OK)
        .await;
    assert_eq!(unread.count, 2);
    let inbox: Vec<ConversationSummary> = client
        .json(2, "GET", "/api/inbox?limit=10", None, StatusCode::OK)
        .await;
    assert_eq!(inbox.len(), 1);
    assert_eq!((inbox[0].partner, inbox[0].unread_count), (1, 2));
    assert_eq!(inbox[0].last_message.id, second.id);
    let partners: Vec<i64> = client
        .json(1, "GET", "/api/partners", None, StatusCode::OK)
        .await;
    assert_eq!(partners, [2]);

    // The page with its cursors.
    let page: Vec<Message> = client
        .json(
            2,
            "GET",
            "/api/conversations/1?reversed=true&limit=1",
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(page, std::slice::from_ref(&second));
    let older: Vec<Message> = client
        .json(
            2,
            "GET",
            &format!("/api/conversations/1?reversed=true&before={}", second.id),
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(older, std::slice::from_ref(&first));
    let newer: Vec<Message> = client
        .json(
            2,
            "GET",
            &format!("/api/conversations/1?after={}", first.id),
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(newer, std::slice::from_ref(&second));

    let read: Message = client
        .json(
            2,
            "POST",
            &format!("/api/messages/{}/read", first.id),
            None,
            StatusCode::OK,
        )
        .await;
    assert!(read.read_at.is_some());
    let marked: Marked = client
        .json(2, "POST", "/api/conversations/1/read", None, StatusCode::OK)
        .await;
    assert_eq!(marked.marked, 1);
    let unread: Unread = client
        .json(2, "GET", "/api/unread", None, StatusCode::OK)
        .await;
    assert_eq!(unread.count, 0);
}

#[tokio::test]
async fn edit_unsend_delete_archive_mute_block_and_search() {
    let client = Client::new().await;
    let typo = client.send(1, 2, "Lunhc?").await;
    let fixed: Message = client
        .json(
            1,
            "PATCH",
            &format!("/api/messages/{}", typo.id),
            Some(json!({"content": "Lunch?"})),
            StatusCode::OK,
        )
        .await;
    assert_eq!(fixed.content, "Lunch?");
    assert!(fixed.edited_at.is_some());

    let found: Vec<Message> = client
        .json(
            2,
            "GET",
            "/api/search?text=lunc&with=1&limit=5",
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(found, std::slice::from_ref(&fixed));

    client
        .no_content(1, "POST", &format!("/api/messages/{}/unsend", typo.id))
        .await;
    let page: Vec<Message> = client
        .json(2, "GET", "/api/conversations/1", None, StatusCode::OK)
        .await;
    assert!(page.is_empty());

    let kept = client.send(1, 2, "still here").await;
    client
        .no_content(2, "DELETE", &format!("/api/messages/{}", kept.id))
        .await;
    let page: Vec<Message> = client
        .json(1, "GET", "/api/conversations/2", None, StatusCode::OK)
        .await;
    assert_eq!(page, [kept], "deleted for user 2 only");

    client
        .no_content(1, "PUT", "/api/conversations/2/archive")
        .await;
    let inbox: Vec<ConversationSummary> = client
        .json(1, "GET", "/api/inbox", None, StatusCode::OK)
        .await;
    assert!(inbox.is_empty());
    let archived: Vec<ConversationSummary> = client
        .json(1, "GET", "/api/inbox?archived=true", None, StatusCode::OK)
        .await;
    assert!(archived[0].archived);
    client
        .no_content(1, "DELETE", "/api/conversations/2/archive")
        .await;
    client
        .no_content(1, "PUT", "/api/conversations/2/mute")
        .await;
    let inbox: Vec<ConversationSummary> = client
        .json(1, "GET", "/api/inbox", None, StatusCode::OK)
        .await;
    assert!(inbox[0].muted && !inbox[0].archived);
    client
        .no_content(1, "DELETE", "/api/conversations/2/mute")
        .await;

    client.no_content(2, "PUT", "/api/blocks/1").await;
    client
        .error(
            Some(1),
            "POST",
            "/api/messages",
            Some(json!({"to": 2, "content": "hello?"})),
            StatusCode::FORBIDDEN,
            "blocked",
        )
        .await;
    client.no_content(2, "DELETE", "/api/blocks/1").await;
    client.send(1, 2, "hello again").await;
}

/// A request (user, method, path, body) and the status and error code it must get.
type Case = (
    Option<i64>,
    &'static str,
    String,
    Option<serde_json::Value>,
    StatusCode,
    &'static str,
);

#[tokio::test]
async fn every_error_has_its_status_and_a_json_body() {
    let client = Client::new().await;
    let m = client.send(1, 2, "hi").await;
    let send = |to: i64, text: &str| Some(json!({"to": to, "content": text}));
    let cases: Vec<Case> = vec![
        (
            None,
            "GET",
            "/api/unread".into(),
            None,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        ),
        (
            Some(1),
            "POST",
            "/api/messages".into(),
            send(1, "me"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "self_message",
        ),
        (
            Some(1),
            "POST",
            "/api/messages".into(),
            send(2, "  "),
            StatusCode::UNPROCESSABLE_ENTITY,
            "empty_message",
        ),
        (
            Some(1),
            "POST",
            "/api/messages".into(),
            send(2, &"x".repeat(4_001)),
            StatusCode::UNPROCESSABLE_ENTITY,
            "message_too_long",
        ),
        (
            Some(1),
            "POST",
            "/api/messages".into(),
            send(2, "nul \0 byte"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_content",
        ),
        (
            Some(1),
            "PUT",
            "/api/blocks/1".into(),
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
            "self_block",
        ),
        (
            Some(1),
            "GET",
            "/api/search?text=%3F%21".into(),
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
            "empty_search",
        ),
        (
            Some(2),
            "POST",
            "/api/messages/999999/read".into(),
            None,
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Some(3),
            "POST",
            format!("/api/messages/{}/read", m.id),
            None,
            StatusCode::FORBIDDEN,
            "not_allowed",
        ),
        (
            Some(2),
            "PATCH",
            format!("/api/messages/{}", m.id),
            Some(json!({"content": "mine now"})),
            StatusCode::FORBIDDEN,
            "not_allowed",
        ),
        (
            Some(2),
            "POST",
            format!("/api/messages/{}/unsend", m.id),
            None,
            StatusCode::FORBIDDEN,
            "not_allowed",
        ),
        (
            Some(3),
            "DELETE",
            format!("/api/messages/{}", m.id),
            None,
            StatusCode::FORBIDDEN,
            "not_allowed",
        ),
    ];
    for (user, method, path, body, status, code) in cases {
        client.error(user, method, &path, body, status, code).await;
    }
    // Nothing was stored by any of them.
    let page: Vec<Message> = client
        .json(2, "GET", "/api/conversations/1", None, StatusCode::OK)
        .await;
    assert_eq!(page, [m]);
}

/// A raw request (method, path, body, content type) and the status and error code it
/// must get.
type Malformed = (
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    StatusCode,
    &'static str,
);

/// What axum refuses before a handler runs (a body that is not JSON or lacks a field, a
/// path or query of the wrong type, no such route, a method the route does not take)
/// answers in the same `{"error", "message"}` shape as every other error.
#[tokio::test]
async fn malformed_requests_answer_in_the_error_shape() {
    let client = Client::new().await;
    let cases: [Malformed; 8] = [
        (
            "POST",
            "/api/messages",
            Some("{not json"),
            Some("application/json"),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "POST",
            "/api/messages",
            Some(r#"{"to": 2}"#),
            Some("application/json"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_request",
        ),
        (
            "POST",
            "/api/messages",
            Some(r#"{"to": 2, "content": "x"}"#),
            None,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "bad_request",
        ),
        (
            "PATCH",
            "/api/messages/1",
            Some("[1, 2]"),
            Some("application/json"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_request",
        ),
        (
            "POST",
            "/api/messages/abc/read",
            None,
            None,
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "GET",
            "/api/conversations/2?limit=many",
            None,
            None,
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            "GET",
            "/api/nowhere",
            None,
            None,
            StatusCode::NOT_FOUND,
            "no_route",
        ),
        (
            "PUT",
            "/api/messages",
            None,
            None,
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
    ];
    for (method, path, body, content_type, status, code) in cases {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("x-user-id", "1");
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let request = request
            .body(Body::from(body.unwrap_or_default().to_owned()))
            .unwrap();
        let response = client.router.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), status, "{method} {path}");
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let error: ErrorBody = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!("{method} {path}: {e}: {}", String::from_utf8_lossy(&bytes))
        });
        assert_eq!(error.error, code, "{method} {path}");
        assert!(!error.message.is_empty(), "{method} {path}");
    }
    let (status, bytes) = client.call(Some(2), "GET", "/api/unread", None).await;
    assert_eq!(
        (status, bytes.as_slice()),
        (StatusCode::OK, &br#"{"count":0}"#[..]),
        "nothing stored"
    );
}

#[test]
fn every_inbox_error_maps_to_the_status_a_client_expects() {
    use axum::response::IntoResponse;
    use directmessages::Error;
    use directmessages_service::ApiError;
    let cases = [
        (
            Error::EditWindowClosed { message: 1 },
            StatusCode::FORBIDDEN,
        ),
        (
            Error::Rejected {
                reason: "no".into(),
            },
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Error::Database(diesel::result::Error::NotFound),
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
        (
            Error::Migration("broken".into()),
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
    ];
    for (error, status) in cases {
        assert_eq!(ApiError::from(error).into_response().status(), status);
    }
}

/// With the `postgres` feature, a `postgres://` URL puts the service on PostgreSQL (here
/// the server of `DIRECTMESSAGES_POSTGRES_URL`, in a schema of its own).
#[cfg(feature = "postgres")]
#[tokio::test]
async fn a_postgres_url_runs_it_on_postgresql() {
    let Some(schema) = common::PgSchema::new("dm_service") else {
        return;
    };
    let client = Client {
        router: app(AppState::new(Db::connect(&schema.url).await.unwrap())),
        _file: None,
    };
    let sent = client.send(1, 2, "over PostgreSQL").await;
    let inbox: Vec<ConversationSummary> = client
        .json(2, "GET", "/api/inbox", None, StatusCode::OK)
        .await;
    assert_eq!(inbox[0].last_message, sent);
    let found: Vec<Message> = client
        .json(2, "GET", "/api/search?text=postgre", None, StatusCode::OK)
        .await;
    assert_eq!(found, [sent]);
    drop(client);
}
