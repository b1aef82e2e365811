//! The two ways the operations run: `blocking` on Diesel's connections, `asynchronous` on
//! diesel-async's. The operations are written once, as `async fn`s (see
//! `src/queries/`); each flavour brings what they await:
//!
//! - `RunQueryDsl`, whose `load`, `get_result` and `execute` return futures: diesel-async's
//!   own, or, on the blocking flavour, ones that ran the statement already and are ready
//!   at once, so [`blocking::run`] completes the whole operation in one poll;
//! - transaction control (`begin`, `commit`, `rollback`, the transaction status) through
//!   each side's `AnsiTransactionManager`;
//! - `batch_execute` and `sleep` (between retries).

// Each flavour mounts each dialect file, which mounts `src/queries/`, once per connection
// type: the same text on purpose (see `src/queries/mod.rs`).
#![allow(
    clippy::duplicate_mod,
    reason = "the one text of the queries is mounted once per connection type"
)]

pub(crate) mod blocking;

// SQLite's async connection runs the blocking flavour on a blocking thread.
#[cfg(all(feature = "diesel-async", any(feature = "postgres", feature = "mysql")))]
pub(crate) mod asynchronous;

#[cfg(feature = "diesel-async")]
tokio::task_local! {
    /// Present while an operation of an [`AsyncInbox`](crate::AsyncInbox) built with
    /// [`transaction_pooling`](crate::InboxBuilder::transaction_pooling) runs on a
    /// PostgreSQL connection: a pooler in transaction mode may hand the second exchange of
    /// a statement prepared outside a transaction to another server connection, so the
    /// async flavour keeps each statement inside one (`transactions::outside`).
    static PINNED: ();
}

/// Runs `operation` with each of its statements kept inside a transaction when `on` (see
/// `PINNED`).
#[cfg(feature = "diesel-async")]
pub(crate) async fn pin<F: std::future::Future>(on: bool, operation: F) -> F::Output {
    if on {
        PINNED.scope((), operation).await
    } else {
        operation.await
    }
}
