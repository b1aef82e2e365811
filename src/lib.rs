#![doc = include_str!("../README.md")]
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

mod backend;
mod conversation;
mod error;
mod inbox;
mod message;
mod migrations;
mod queries;
pub mod schema;
mod signals;
mod timestamp;

pub use backend::InboxConnection;
#[cfg(all(feature = "sqlite", feature = "r2d2"))]
pub use backend::SqliteCustomizer;
pub use conversation::{ConversationQuery, ConversationSummary, ConversationsQuery};
pub use error::{Error, Result};
pub use inbox::{Inbox, InboxBuilder, DEFAULT_MAX_MESSAGE_CHARS};
pub use message::{Message, MessageEvent};
pub use migrations::run_migrations;
pub use signals::{Draft, Signals};

/// The host app's user primary key; the crate owns no users table.
pub type UserId = i64;

/// A message's primary key.
pub type MessageId = i64;
