//! The registry of closures the inbox calls when messages are sent and read.

use std::sync::RwLock;

use crate::{MessageEvent, UserId};

type EventHandler = Box<dyn Fn(&MessageEvent<'_>) + Send + Sync>;
type Policy = Box<dyn Fn(&Draft<'_>) -> Result<(), String> + Send + Sync>;

/// What a before-send policy sees: a message that passed validation and is about to be
/// stored.
#[non_exhaustive]
#[derive(Debug, Clone, Copy)]
pub struct Draft<'a> {
    /// Who is sending.
    pub sender: UserId,
    /// Who it is for.
    pub recipient: UserId,
    /// The text.
    pub content: &'a str,
}

/// A `Send + Sync` registry of handlers, owned by an [`Inbox`](crate::Inbox).
///
/// Handlers run on the calling thread, in registration order, after the inbox's own
/// transaction committed. If you call the inbox inside a transaction of yours, that outer
/// transaction can still roll back after a handler ran. A handler must not register
/// handlers on the same registry (that would deadlock).
#[derive(Default)]
pub struct Signals {
    sent: RwLock<Vec<EventHandler>>,
    read: RwLock<Vec<EventHandler>>,
    before_send: RwLock<Vec<Policy>>,
}

impl std::fmt::Debug for Signals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signals")
            .field("message_sent", &len(&self.sent))
            .field("message_read", &len(&self.read))
            .field("before_send", &len(&self.before_send))
            .finish()
    }
}

fn len<T>(handlers: &RwLock<Vec<T>>) -> usize {
    handlers
        .read()
        .map_or_else(|e| e.into_inner().len(), |h| h.len())
}

fn push<T>(handlers: &RwLock<Vec<T>>, handler: T) {
    // A handler that panicked poisoned nothing we rely on: the Vec is always whole.
    handlers
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .push(handler);
}

fn each<T>(handlers: &RwLock<Vec<T>>, mut f: impl FnMut(&T) -> bool) {
    let handlers = handlers.read().unwrap_or_else(|e| e.into_inner());
    for handler in handlers.iter() {
        if !f(handler) {
            break;
        }
    }
}

impl Signals {
    /// A registry with no handlers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Calls `f` after each message is stored.
    pub fn on_message_sent(&self, f: impl Fn(&MessageEvent<'_>) + Send + Sync + 'static) {
        push(&self.sent, Box::new(f));
    }

    /// Calls `f` once per message, when it is first marked read.
    pub fn on_message_read(&self, f: impl Fn(&MessageEvent<'_>) + Send + Sync + 'static) {
        push(&self.read, Box::new(f));
    }

    /// Adds a policy that may veto a message after validation and before it is stored:
    /// the first `Err(reason)` makes `send_message` return
    /// [`Error::Rejected`](crate::Error::Rejected) and stores nothing. Policies run in
    /// registration order, before the database is touched.
    pub fn on_before_send(
        &self,
        f: impl Fn(&Draft<'_>) -> Result<(), String> + Send + Sync + 'static,
    ) {
        push(&self.before_send, Box::new(f));
    }

    pub(crate) fn message_sent(&self, event: &MessageEvent<'_>) {
        each(&self.sent, |h| {
            h(event);
            true
        });
    }

    pub(crate) fn message_read(&self, event: &MessageEvent<'_>) {
        each(&self.read, |h| {
            h(event);
            true
        });
    }

    pub(crate) fn before_send(&self, draft: &Draft<'_>) -> Result<(), String> {
        let mut verdict = Ok(());
        each(&self.before_send, |policy| {
            verdict = policy(draft);
            verdict.is_ok()
        });
        verdict
    }
}
