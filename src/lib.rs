//! 1-to-1 private messages between the users of your app, over Diesel.
//!
//! Add the crate, run its migrations, and call an [`Inbox`] on your own Diesel
//! connection (`SqliteConnection` by default; PostgreSQL and
//! MySQL/MariaDB behind the `postgres` and `mysql` features; r2d2 pools with `r2d2`; in an
//! async service, `AsyncInbox` on diesel-async's connections and pools with `diesel-async`):
//!
//! ```
//! # #[cfg(feature = "sqlite")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use diesel::{Connection, SqliteConnection};
//! use directmessages::{ConversationQuery, ConversationsQuery, Inbox};
//!
//! let mut conn = SqliteConnection::establish(":memory:")?;
//! directmessages::run_migrations(&mut conn)?;
//!
//! let inbox = Inbox::new();
//! inbox.signals().on_message_read(|e| println!("{} read message {}", e.recipient, e.message.id));
//!
//! let hello = inbox.send_message(&mut conn, 1, 2, "Hello Bob")?;
//! inbox.send_message(&mut conn, 2, 1, "Hi Alice")?;
//!
//! assert_eq!(inbox.unread_messages(&mut conn, 2)?, vec![hello.clone()]);
//! inbox.read_message_as(&mut conn, 2, hello.id)?; // marks read, fires message_read once
//! assert_eq!(inbox.conversation_partners(&mut conn, 1)?, vec![2]);
//!
//! let inbox_screen = inbox.conversations(&mut conn, 1, ConversationsQuery::new().limit(20))?;
//! assert_eq!((inbox_screen[0].partner, inbox_screen[0].unread_count), (2, 1));
//!
//! let latest = inbox.conversation(&mut conn, 1, 2, ConversationQuery::new().reversed().limit(50))?;
//! assert_eq!(latest[0].content, "Hi Alice");
//! # Ok(()) }
//! # #[cfg(not(feature = "sqlite"))] fn main() {}
//! ```
//!
//! Everything that goes wrong is a typed [`Error`]; validation happens before anything is
//! written. Handlers registered on [`Signals`] run after the write committed. The tables
//! are in [`schema`], the migrations are applied by [`run_migrations`].
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    clippy::unwrap_used,
    rust_2018_idioms
)]

#[cfg(not(any(feature = "sqlite", feature = "postgres", feature = "mysql")))]
compile_error!("enable at least one backend feature: sqlite, postgres or mysql");

#[cfg(feature = "diesel-async")]
mod async_inbox;
mod connection;
mod conversation;
mod dialect;
mod error;
mod execution;
mod inbox;
mod message;
pub mod migrations;
// The sealed `Operations` trait and the values it returns are `pub` in this private
// module: reachable through `InboxConnection`'s sealed supertrait, never nameable.
#[allow(unreachable_pub)]
mod operations;
mod retry;
pub mod schema;
mod search;
mod signals;
mod timestamp;
mod trace;

#[cfg(feature = "diesel-async")]
pub use async_inbox::AsyncInbox;
#[cfg(feature = "diesel-async")]
pub use connection::AsyncInboxConnection;
pub use connection::InboxConnection;
pub use conversation::{ConversationQuery, ConversationSummary, ConversationsQuery};
#[cfg(all(feature = "sqlite", any(feature = "r2d2", feature = "diesel-async")))]
#[cfg_attr(
    docsrs,
    doc(cfg(all(feature = "sqlite", any(feature = "r2d2", feature = "diesel-async"))))
)]
pub use dialect::SqliteCustomizer;
#[cfg(all(feature = "postgres", feature = "diesel-async"))]
#[cfg_attr(docsrs, doc(cfg(all(feature = "postgres", feature = "diesel-async"))))]
pub use dialect::TransactionPooler;
pub use error::{Error, Result};
pub use inbox::{Inbox, InboxBuilder, DEFAULT_MAX_MESSAGE_CHARS};
pub use message::{Message, MessageEvent};
pub use migrations::run_migrations;
#[cfg(feature = "diesel-async")]
pub use migrations::run_migrations_async;
pub use search::SearchQuery;
pub use signals::{Draft, Signals};

/// The host app's user primary key; the crate owns no users table.
pub type UserId = i64;

/// A message's primary key.
pub type MessageId = i64;

/// Runs the README's code as doctests, so the tour stays true.
#[cfg(all(doctest, feature = "sqlite"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
