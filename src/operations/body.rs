//! The body of a transaction as the shared text passes it around: a boxed future.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::Result;

/// The body of a transaction, as the transaction runs it (again on a retry): a future
/// that borrows the connection for `'c` and what the caller captured for `'a`, which
/// outlives it. (The `'a: 'c` bound, implied by the `PhantomData`, is what lets a closure
/// `for<'c> FnMut(&'c mut Conn) -> Body<'a, 'c, T>` borrow its caller's data.)
pub(crate) struct Body<'a, 'c, T, E = crate::Error> {
    future: Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>>,
    scope: PhantomData<&'c &'a ()>,
}

impl<'a, 'c, T, E> Body<'a, 'c, T, E> {
    /// The body that `future` runs.
    pub(crate) fn new(future: impl Future<Output = Result<T, E>> + Send + 'c) -> Self {
        Self {
            future: Box::pin(future),
            scope: PhantomData,
        }
    }
}

impl<T, E> Future for Body<'_, '_, T, E> {
    type Output = Result<T, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T, E>> {
        self.future.as_mut().poll(cx)
    }
}
