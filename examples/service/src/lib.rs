//! A live chat service over `directmessages`: a JSON API for a chat front end, live
//! updates over Server-Sent Events, and a small chat page, on axum and `AsyncInbox`.
//!
//! `main.rs` runs it on a SQLite file (or PostgreSQL, see the README); the tests drive the
//! router in process (`tests/api.rs`), over a real socket (`tests/socket.rs`) and in a
//! headless Chromium (`tests/browser.rs`).

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use diesel_async::pooled_connection::deadpool::Pool;
#[cfg(feature = "postgres")]
use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use directmessages::{
    AsyncInbox, ConversationQuery, ConversationSummary, ConversationsQuery, Error, Inbox, Message,
    MessageId, SearchQuery, SqliteCustomizer, UserId,
};
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::StreamExt;

/// SQLite's connection, run on blocking threads by diesel-async.
pub type SqliteConn = SyncConnectionWrapper<diesel::SqliteConnection>;

/// Where the messages live: a pool of connections to one database.
#[derive(Clone)]
pub enum Db {
    /// A SQLite file.
    Sqlite(Pool<SqliteConn>),
    /// A PostgreSQL server.
    #[cfg(feature = "postgres")]
    Postgres(Pool<diesel_async::AsyncPgConnection>, Pooler),
}

/// What stands between the service and PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pooler {
    /// Nothing, or a pooler in session mode, or one that keeps prepared statements itself
    /// (PgBouncer 1.21 or later with `max_prepared_statements` set).
    #[default]
    None,
    /// A pooler in transaction mode that keeps no prepared statements (PgBouncer before
    /// 1.21, or later without `max_prepared_statements`): the pool's connections run with
    /// their statement cache off, and the inbox with `transaction_pooling`.
    Transaction,
}

impl Db {
    /// A pool for `url`: `postgres://…` for PostgreSQL (with the `postgres` feature),
    /// anything else a SQLite file. Runs the inbox's migrations.
    pub async fn connect(url: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Self::connect_with(url, Pooler::None).await
    }

    /// As [`Db::connect`], through `pooler` on PostgreSQL (ignored on SQLite).
    pub async fn connect_with(
        url: &str,
        pooler: Pooler,
    ) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            #[cfg(feature = "postgres")]
            {
                // Through a pooler in transaction mode: connections set up inside a
                // transaction, their statement cache off, checked by a simple query.
                let manager = match pooler {
                    Pooler::Transaction => directmessages::TransactionPooler::manager(url),
                    Pooler::None => AsyncDieselConnectionManager::new(url),
                };
                let pool = Pool::builder(manager).max_size(8).build()?;
                directmessages::run_migrations_async(&mut pool.get().await?).await?;
                return Ok(Db::Postgres(pool, pooler));
            }
            #[cfg(not(feature = "postgres"))]
            let _ = pooler;
            #[cfg(not(feature = "postgres"))]
            return Err("built without PostgreSQL: run with `--features postgres`".into());
        }
        // WAL: readers go on while one connection writes, and a commit does not wait for
        // the disk (`synchronous = NORMAL`: a power cut can lose the last commits, a crash
        // of the process none). The busy timeout has a waiting writer woken as soon as
        // the lock is free; the inbox waits out a busy database in any case.
        let manager = SqliteCustomizer::new().wal(true).manager(url);
        // SQLite has one writer at a time; a few connections serve the readers.
        let pool = Pool::builder(manager).max_size(4).build()?;
        let mut conn = pool.get().await?;
        directmessages::run_migrations_async(&mut conn).await?;
        drop(conn);
        Ok(Db::Sqlite(pool))
    }

    /// What stands between the service and its database.
    pub fn pooler(&self) -> Pooler {
        match self {
            Db::Sqlite(_) => Pooler::None,
            #[cfg(feature = "postgres")]
            Db::Postgres(_, pooler) => *pooler,
        }
    }
}

/// Runs `$body` with `$conn` a pooled connection of whichever database `$db` is; `?` in
/// the body returns an [`ApiError`].
macro_rules! with_conn {
    ($db:expr, |$conn:ident| $body:expr) => {
        match &$db {
            Db::Sqlite(pool) => {
                let mut $conn = pool.get().await.map_err(ApiError::unavailable)?;
                $body
            }
            #[cfg(feature = "postgres")]
            Db::Postgres(pool, _) => {
                let mut $conn = pool.get().await.map_err(ApiError::unavailable)?;
                $body
            }
        }
    };
}

/// What the live stream tells a user's open pages.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Event {
    /// `message_sent`, `message_read`, `message_edited` or `message_unsent`.
    pub kind: String,
    /// The message as the event left it.
    pub message: Message,
    /// The recipient muted the conversation.
    pub muted: bool,
}

/// The state every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The inbox, with the handlers that feed [`AppState::events`].
    pub inbox: Arc<AsyncInbox>,
    /// The database.
    pub db: Db,
    /// Every event of this process, for the live streams.
    pub events: broadcast::Sender<Event>,
}

impl AppState {
    /// The state over `db`: an inbox whose signals go out on the live streams.
    ///
    /// Signals are per process. With several instances behind a load balancer, a page
    /// connected to instance A does not hear of a message sent through instance B. Two
    /// ways out: have each handler also `NOTIFY` a PostgreSQL channel that every instance
    /// `LISTEN`s to and re-broadcasts here, or have pages poll the open conversation with
    /// `ConversationQuery::after(last id shown)`, which is exact under concurrent writers
    /// (the page here refetches after every event, so either feed works). And a handler
    /// runs after the inbox's own transaction commits: called inside a transaction of
    /// yours, it can announce a message that your transaction then rolls back.
    pub fn new(db: Db) -> Self {
        let (events, _) = broadcast::channel(1024);
        let inbox = Inbox::builder()
            .max_message_chars(4_000)
            .transaction_pooling(db.pooler() == Pooler::Transaction)
            .build();
        for kind in [
            "message_sent",
            "message_read",
            "message_edited",
            "message_unsent",
        ] {
            let events = events.clone();
            let forward = move |e: &directmessages::MessageEvent<'_>| {
                // No page listening is not an error.
                let _ = events.send(Event {
                    kind: kind.to_owned(),
                    message: e.message.clone(),
                    muted: e.muted,
                });
            };
            let signals = inbox.signals();
            match kind {
                "message_sent" => signals.on_message_sent(forward),
                "message_read" => signals.on_message_read(forward),
                "message_edited" => signals.on_message_edited(forward),
                _ => signals.on_message_unsent(forward),
            }
        }
        Self {
            inbox: Arc::new(AsyncInbox::from(inbox)),
            db,
            events,
        }
    }
}

/// The user a request acts for: the `x-user-id` header (or, for `EventSource`, which
/// cannot set headers, a `user` query parameter).
///
/// A stand-in for real sessions: in an app, read the user from your session cookie or
/// token here (e.g. with tower-sessions or axum-login) and never trust a client-sent id.
#[derive(Debug, Clone, Copy)]
pub struct CurrentUser(pub UserId);

impl<S: Send + Sync> FromRequestParts<S> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let from_header = parts
            .headers
            .get("x-user-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let from_query = parts.uri.query().and_then(|q| {
            q.split('&')
                .find_map(|pair| pair.strip_prefix("user="))
                .map(str::to_owned)
        });
        from_header
            .or(from_query)
            .and_then(|id| id.parse().ok())
            .map(CurrentUser)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthenticated",
                    "send the user id in the x-user-id header".to_owned(),
                )
            })
    }
}

/// An error as the client gets it: a status and `{"error": code, "message": text}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

/// The JSON body of an error.
#[derive(Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A stable code for programs.
    pub error: String,
    /// A sentence for people.
    pub message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: String) -> Self {
        Self {
            status,
            code,
            message,
        }
    }

    fn unavailable(e: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("no database connection: {e}"),
        )
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let (status, code) = match &e {
            Error::SelfMessage { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "self_message"),
            Error::EmptyMessage => (StatusCode::UNPROCESSABLE_ENTITY, "empty_message"),
            Error::MessageTooLong { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "message_too_long"),
            Error::InvalidContent { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_content"),
            Error::Rejected { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "rejected"),
            Error::SelfBlock { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "self_block"),
            Error::EmptySearch => (StatusCode::UNPROCESSABLE_ENTITY, "empty_search"),
            Error::MessageNotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Error::NotAllowed { .. } => (StatusCode::FORBIDDEN, "not_allowed"),
            Error::Blocked { .. } => (StatusCode::FORBIDDEN, "blocked"),
            Error::EditWindowClosed { .. } => (StatusCode::FORBIDDEN, "edit_window_closed"),
            // Database, Migration, and whatever later versions add.
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        // The database's own message stays in the server's log, not in the response.
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            eprintln!("internal error: {e}: {:?}", std::error::Error::source(&e));
            "something went wrong on our side".to_owned()
        } else {
            e.to_string()
        };
        Self::new(status, code, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.code.to_owned(),
            message: self.message,
        };
        (self.status, Json(body)).into_response()
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// A request axum could not take apart (malformed JSON, a path or query of the wrong
/// type, a body too large): its status, in the API's error shape.
fn malformed(status: StatusCode, text: String) -> ApiError {
    ApiError::new(status, "bad_request", text)
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        malformed(r.status(), r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        malformed(r.status(), r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        malformed(r.status(), r.body_text())
    }
}

/// axum's `Json` body, rejected in the API's error shape.
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let Json(value) = Json::<T>::from_request(req, state).await?;
        Ok(Body(value))
    }
}

/// axum's `Path`, rejected in the API's error shape.
#[derive(Debug)]
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Path(value) =
            axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(Path(value))
    }
}

/// axum's `Query`, rejected in the API's error shape.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Query(value) =
            axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(Query(value))
    }
}

/// A path no route has.
async fn no_route() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no_route",
        "no such route".to_owned(),
    )
}

/// A route asked with a method it does not take.
async fn wrong_method() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method".to_owned(),
    )
}

/// The router: the chat page at `/`, the API under `/api`.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/api/events", get(events))
        .route("/api/messages", post(send))
        .route(
            "/api/messages/{id}",
            axum::routing::patch(edit).delete(delete_for_me),
        )
        .route("/api/messages/{id}/read", post(read))
        .route("/api/messages/{id}/unsend", post(unsend))
        .route("/api/inbox", get(inbox))
        .route("/api/unread", get(unread))
        .route("/api/partners", get(partners))
        .route("/api/search", get(search))
        .route("/api/conversations/{partner}", get(conversation))
        .route("/api/conversations/{partner}/read", post(read_all))
        .route(
            "/api/conversations/{partner}/archive",
            put(archive).delete(unarchive),
        )
        .route(
            "/api/conversations/{partner}/mute",
            put(mute).delete(unmute),
        )
        .route("/api/blocks/{user}", put(block).delete(unblock))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .with_state(state)
}

async fn page() -> Html<&'static str> {
    Html(include_str!("page.html"))
}

/// A new message.
#[derive(Debug, Serialize, Deserialize)]
pub struct NewMessage {
    /// The recipient.
    pub to: UserId,
    /// The text.
    pub content: String,
}

async fn send(
    State(app): State<AppState>,
    CurrentUser(me): CurrentUser,
    Body(new): Body<NewMessage>,
) -> ApiResult<(StatusCode, Json<Message>)> {
    let sent = with_conn!(app.db, |conn| app
        .inbox
        .send_message(&mut conn, me, new.to, &new.content)
        .await?);
    Ok((StatusCode::CREATED, Json(sent)))
}

/// A message's new text.
#[derive(Debug, Serialize, Deserialize)]
pub struct Edit {
    /// The text.
    pub content: String,
}

async fn edit(
    State(app): State<AppState>,
    CurrentUser(me): CurrentUser,
    Path(id): Path<MessageId>,
    Body(edit): Body<Edit>,
) -> ApiResult<Json<Message>> {
    let edited = with_conn!(app.db, |conn| app
        .inbox
        .edit_message(&mut conn, me, id, &edit.content)
        .await?);
    Ok(Json(edited))
}

async fn delete_for_me(
    State(app): State<AppState>,
    CurrentUser(me): CurrentUser,
    Path(id): Path<MessageId>,
) -> ApiResult<StatusCode> {
    with_conn!(app.db, |conn| app
        .inbox
        .delete_message(&mut conn, me, id)
        .await?);
    Ok(StatusCode::NO_CONTENT)
}

async fn read(
    State(app): State<AppState>,
    CurrentUser(me): CurrentUser,
    Path(id): Path<MessageId>,
) -> ApiResult<Json<Message>> {
    let message = with_conn!(app.db, |conn| app
        .inbox
        .read_message_as(&mut conn, me, id)
        .await?);
    Ok(Json(message))
}

async fn unsend(
    State(app): State<AppState>,
    CurrentUser(me): CurrentUser,
    Path(id): Path<MessageId>,
) -> ApiResult<StatusCode> {
    with_conn!(app.db, |conn| app
        .inbox
        .unsend_message(&mut conn, me, id)
        .await?);
    Ok(StatusCode::NO_CONTENT)
}

async fn inbox(
    State(app): State<AppState>,
    CurrentUser(me): CurrentUser,
    Query(query): Query<ConversationsQuery>,
) -> ApiResult<Json<Vec<ConversationSummary>>> {
    let rows = with_conn!(app.db, |conn| app
        .inbox
        .conversations(&mut conn, me, query)
        .await?);
    Ok(Json(rows))
}

/// The unread badge.
#[derive(Debug, Serialize, Deserialize)]
pub struct Unread {
    /// Messages the user has not read, from users the user does not block.
    pub count: i64,
}

async fn unread(
    State(app): State<AppState>,
    CurrentUser(me): CurrentUser,
) -> ApiResult<Json<Unread>> {
    let count = with_conn!(app.db, |conn| app.inbox.unread_count(&mut conn, me).await?);
    Ok(Json(Unread { count }))
}

async fn partners(
    State(app): State<AppState>,
    CurrentUser(me): CurrentUser,
) -> ApiResult<Json<Vec<UserId>>> {
    let partners = with_conn!(app.db, |conn| app
        .inbox
        .conversation_partners(&mut conn, me)
        .await?);
    Ok(Json(partners))
}

async fn search(
    State(app): State<AppState>,
    CurrentUser(me): CurrentUser,
    Query(query): Query<SearchQuery>,
) -> ApiResult<Json<Vec<Message>>> {
    let found = with_conn!(app.db, |conn| app
        .inbox
        .search(&mut conn, me, query)
        .await?);
    Ok(Json(found))
}

async fn conversation(
    State(app): State<AppState>,
    CurrentUser(me): CurrentUser,
    Path(partner): Path<UserId>,
    Query(query): Query<ConversationQuery>,
) -> ApiResult<Json<Vec<Message>>> {
    let page = with_conn!(app.db, |conn| app
        .inbox
        .conversation(&mut conn, me, partner, query)
        .await?);
    Ok(Json(page))
}

/// How many messages a call marked read.
#[derive(Debug, Serialize, Deserialize)]
pub struct Marked {
    /// That many.
    pub marked: usize,
}

async fn read_all(
    State(app): State<AppState>,
    CurrentUser(me): CurrentUser,
    Path(partner): Path<UserId>,
) -> ApiResult<Json<Marked>> {
    let marked = with_conn!(app.db, |conn| app
        .inbox
        .mark_conversation_read(&mut conn, me, partner)
        .await?);
    Ok(Json(Marked { marked }))
}

/// The per-side flags and the block: `PUT` sets, `DELETE` clears, both answer 204.
macro_rules! toggle {
    ($name:ident, $method:ident) => {
        async fn $name(
            State(app): State<AppState>,
            CurrentUser(me): CurrentUser,
            Path(other): Path<UserId>,
        ) -> ApiResult<StatusCode> {
            with_conn!(app.db, |conn| app
                .inbox
                .$method(&mut conn, me, other)
                .await?);
            Ok(StatusCode::NO_CONTENT)
        }
    };
}

toggle!(archive, archive_conversation);
toggle!(unarchive, unarchive_conversation);
toggle!(mute, mute_conversation);
toggle!(unmute, unmute_conversation);
toggle!(block, block_user);
toggle!(unblock, unblock_user);

/// The live stream of the current user: every event of a message they sent or received,
/// as it happens in this process (see [`AppState::new`] for several instances).
async fn events(
    State(app): State<AppState>,
    CurrentUser(me): CurrentUser,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let stream = BroadcastStream::new(app.events.subscribe()).filter_map(move |event| {
        // A page too slow to keep up misses events (`Lagged`); it refetches on the next.
        let event = event.ok()?;
        let concerned = event.message.sender_id == me || event.message.recipient_id == me;
        concerned.then(|| {
            Ok(SseEvent::default()
                .event(event.kind.clone())
                .json_data(&event)
                .unwrap_or_else(|_| SseEvent::default().comment("unserializable")))
        })
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
