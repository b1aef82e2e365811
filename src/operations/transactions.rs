//! How the inbox's own transactions begin, end and are run again, written once.
//!
//! Mounted by each dialect next to `queries.rs`, for each execution flavour, like it. The
//! dialect decides how its outermost transaction is run (`super::outermost`); this text
//! decides when one is retried and how a failed one is cleaned up.

use diesel::QueryResult;

use super::execution;
use super::Conn;
use crate::operations::Body;
use crate::retry::{backoff, is_transient, END_ATTEMPTS, MAX_ATTEMPTS};
use crate::Result;

/// Whether `conn` is already inside a transaction (the caller's).
pub(super) fn is_nested(conn: &mut Conn) -> QueryResult<bool> {
    Ok(execution::status(conn).transaction_depth()?.is_some())
}

/// Runs `f` in a transaction, or a savepoint inside the caller's: it begins with `begin`
/// (`None`: Diesel's `BEGIN` or `SAVEPOINT`), commits what `f` did when it succeeds, and
/// rolls it back when it fails.
pub(super) async fn transaction<'a, T, F>(
    conn: &mut Conn,
    begin: Option<&str>,
    f: &mut F,
) -> Result<T>
where
    F: for<'c> FnMut(&'c mut Conn) -> Body<'a, 'c, T>,
{
    match begin {
        Some(sql) => execution::begin_with(conn, sql).await?,
        None => execution::begin(conn).await?,
    }
    match f(conn).await {
        Ok(value) => {
            execution::commit(conn).await?;
            Ok(value)
        }
        Err(error) => match execution::rollback(conn).await {
            Ok(()) | Err(diesel::result::Error::BrokenTransactionManager) => Err(error),
            Err(rollback) => Err(rollback.into()),
        },
    }
}

/// A transaction that is retried, after a short random wait, on transient errors when it
/// is the outermost one. Inside the caller's transaction it is a savepoint and never
/// retried: the database may have aborted the caller's whole transaction, which only the
/// caller can run again.
pub(super) async fn retrying<'a, T, F>(conn: &mut Conn, mut f: F) -> Result<T>
where
    F: for<'c> FnMut(&'c mut Conn) -> Body<'a, 'c, T> + Send,
{
    if is_nested(conn)? {
        return transaction(conn, None, &mut f).await;
    }
    let mut attempt = 1;
    loop {
        match super::outermost(conn, &mut f).await {
            Err(e) if attempt < MAX_ATTEMPTS && is_transient(&e) => {
                let wait = backoff(attempt);
                crate::trace::retry(attempt, &e, wait);
                execution::sleep(wait).await;
                attempt += 1;
            }
            result => return result,
        }
    }
}

/// Ends a top-level transaction of ours for good: the statements `first` (then, if the
/// server did not confirm them all, `again`) are sent, up to [`END_ATTEMPTS`] times in
/// all, since a `KILL QUERY` can cut those statements off too. The record of the
/// connection's transactions is then reset to "none", or left broken if the server never
/// confirmed, so that a pool discards the connection rather than let the next transaction
/// commit what this one left behind.
pub(super) async fn end_transaction(conn: &mut Conn, first: &[&str], again: &[&str]) {
    let mut ended = false;
    for attempt in 0..END_ATTEMPTS {
        let statements = if attempt == 0 { first } else { again };
        ended = true;
        for sql in statements {
            if execution::batch_execute(conn, sql).await.is_err() {
                ended = false;
                break;
            }
        }
        if ended {
            break;
        }
    }
    let status = execution::status(conn);
    if ended {
        *status = Default::default();
    } else {
        status.set_in_error();
    }
}
