//! How the inbox's own transactions begin, end and are run again, written once.
//!
//! Part of the shared text, mounted per connection type. The
//! dialect decides how its outermost transaction is run (`Dialect::outermost`) and which
//! failures are run again; this text holds the one retry loop
//! ([`again`]) and how a failed transaction is cleaned up.

use diesel::QueryResult;

use super::execution;
use super::{Conn, Dialect, H};
use crate::operations::Body;
use crate::retry::{Retry, END_ATTEMPTS};
use crate::Result;

/// Whether `conn` is already inside a transaction (the caller's).
pub(crate) fn is_nested(conn: &mut Conn) -> QueryResult<bool> {
    Ok(execution::status(conn).transaction_depth()?.is_some())
}

/// Runs `f` in a transaction, or a savepoint inside the caller's: it begins with `begin`
/// (`None`: Diesel's `BEGIN` or `SAVEPOINT`), commits what `f` did when it succeeds, and
/// rolls it back when it fails.
pub(crate) async fn transaction<'a, T, E, F>(
    conn: &mut Conn,
    begin: Option<&str>,
    f: &mut F,
) -> std::result::Result<T, E>
where
    E: From<diesel::result::Error>,
    F: for<'c> FnMut(&'c mut Conn) -> Body<'a, 'c, T, E>,
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

/// One attempt of something [`again`] may run several times: a body (any closure that
/// makes one), or a whole transaction ([`Outermost`]).
pub(super) trait Attempt<'a, T, E> {
    /// Starts the attempt on `conn`.
    fn start<'c>(&'c mut self, conn: &'c mut Conn) -> Body<'a, 'c, T, E>
    where
        'a: 'c;
}

impl<'a, T, E, F> Attempt<'a, T, E> for F
where
    F: for<'c> FnMut(&'c mut Conn) -> Body<'a, 'c, T, E>,
{
    fn start<'c>(&'c mut self, conn: &'c mut Conn) -> Body<'a, 'c, T, E>
    where
        'a: 'c,
    {
        self(conn)
    }
}

/// A transaction of the inbox's as one attempt: the dialect's `Dialect::outermost` around
/// the body its closure makes.
pub(super) struct Outermost<F>(F);

impl<'a, T, F> Attempt<'a, T, crate::Error> for Outermost<F>
where
    T: Send + 'a,
    F: for<'c> FnMut(&'c mut Conn) -> Body<'a, 'c, T> + Send,
{
    fn start<'c>(&'c mut self, conn: &'c mut Conn) -> Body<'a, 'c, T>
    where
        'a: 'c,
    {
        Body::new(H::outermost(conn, &mut self.0))
    }
}

/// Runs the body `f` makes until it succeeds or fails for good (see [`attempts`]).
pub(crate) async fn again<'a, T, E, F>(
    conn: &mut Conn,
    policy: Retry,
    f: F,
) -> std::result::Result<T, E>
where
    E: crate::retry::Failure + std::fmt::Display,
    F: for<'c> FnMut(&'c mut Conn) -> Body<'a, 'c, T, E>,
{
    attempts(conn, policy, f).await
}

/// Runs `attempt` until it succeeds or fails for good: after each failure that `policy`
/// retries, a short random wait (the crate's backoff), then again. The crate's only retry
/// loop; an attempt that fails must leave nothing behind.
async fn attempts<'a, T, E>(
    conn: &mut Conn,
    policy: Retry,
    mut attempt: impl Attempt<'a, T, E>,
) -> std::result::Result<T, E>
where
    E: crate::retry::Failure + std::fmt::Display,
{
    let mut attempts = policy.start();
    loop {
        match attempt.start(conn).await {
            Err(error) => match attempts.again(&error) {
                Some(wait) => execution::sleep(wait).await,
                None => return Err(error),
            },
            done => return done,
        }
    }
}

/// Runs `f`, statements outside any transaction of the inbox's (plain reads, and writes
/// of one statement). When the connection is not inside a transaction of the caller's
/// either, the failures the dialect's `H::PLAIN_RETRY` names are waited out (see
/// [`again`]): on SQLite a busy database, which a read meets while a writer commits
/// (with the rollback journal) and a write while another connection holds the lock.
///
/// Behind a pooler in transaction mode ([`execution::pinned`]) `f` runs in a transaction
/// instead, so that each of its statements, prepared and then executed, stays on one
/// server connection.
pub(crate) async fn outside<'a, T, E, F>(conn: &mut Conn, mut f: F) -> std::result::Result<T, E>
where
    E: crate::retry::Failure + std::fmt::Display + From<diesel::result::Error>,
    F: for<'c> FnMut(&'c mut Conn) -> Body<'a, 'c, T, E>,
{
    if is_nested(conn)? {
        return f(conn).await;
    }
    if execution::pinned() {
        return transaction(conn, None, &mut f).await;
    }
    match H::PLAIN_RETRY {
        Some(policy) => again(conn, policy, f).await,
        None => f(conn).await,
    }
}

/// A transaction that is run again (see [`again`]) on the failures `policy` names when
/// it is the outermost one. Inside the caller's transaction it is a savepoint and never
/// retried: the database may have aborted the caller's whole transaction, which only the
/// caller can run again.
pub(crate) async fn retrying<'a, T, F>(conn: &mut Conn, policy: Retry, mut f: F) -> Result<T>
where
    T: Send + 'a,
    F: for<'c> FnMut(&'c mut Conn) -> Body<'a, 'c, T> + Send,
{
    if is_nested(conn)? {
        return transaction(conn, None, &mut f).await;
    }
    attempts(conn, policy, Outermost(f)).await
}

/// Ends a top-level transaction of ours for good: the statements `first` (then, if the
/// server did not confirm them all, `again`) are sent, up to [`END_ATTEMPTS`] times in
/// all, since a `KILL QUERY` can cut those statements off too. The record of the
/// connection's transactions is then reset to "none", or left broken if the server never
/// confirmed, so that a pool discards the connection rather than let the next transaction
/// commit what this one left behind.
#[cfg_attr(
    feature = "sqlite",
    allow(dead_code, reason = "SQLite's mount leaves its ROLLBACK to Diesel")
)]
pub(crate) async fn end_transaction(conn: &mut Conn, first: &[&str], again: &[&str]) {
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
