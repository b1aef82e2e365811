//! The registry of closures the inbox calls when messages are sent and read.

use std::sync::{Arc, RwLock};

use crate::{Message, MessageEvent, UserId};

type EventHandler = Arc<dyn Fn(&MessageEvent<'_>) + Send + Sync>;
type Policy = Arc<dyn Fn(&Draft<'_>) -> Result<(), String> + Send + Sync>;

/// What a before-send policy sees: a message that passed validation and is about to be
/// stored.
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
/// transaction can still roll back after a handler ran.
///
/// A handler that panics does not stop the others: every handler still gets every event of
/// the write (all the messages of a batch included), and the first panic is raised again
/// to the caller once all of them ran. The write itself stays committed.
///
/// No lock is held while handlers run: a handler may register more handlers (they take
/// effect from the next event on), and a slow handler never holds up registration or
/// another thread's events.
///
/// ```
/// # #[cfg(feature = "sqlite")]
/// # fn main() -> directmessages::Result<()> {
/// # use diesel::prelude::*;
/// # let mut conn = SqliteConnection::establish(":memory:").unwrap();
/// # directmessages::run_migrations(&mut conn)?;
/// use std::sync::{Arc, Mutex};
/// let inbox = directmessages::Inbox::new();
/// let log = Arc::new(Mutex::new(Vec::new()));
/// let sent = Arc::clone(&log);
/// inbox.signals().on_message_sent(move |e| sent.lock().unwrap().push(("sent", e.message.id)));
/// let read = Arc::clone(&log);
/// inbox.signals().on_message_read(move |e| read.lock().unwrap().push(("read", e.message.id)));
/// inbox.signals().on_before_send(|draft| {
///     if draft.content.contains("spam") { Err("no spam".into()) } else { Ok(()) }
/// });
/// let m = inbox.send_message(&mut conn, 1, 2, "hi")?;
/// inbox.read_message_as(&mut conn, 2, m.id)?;
/// inbox.read_message_as(&mut conn, 2, m.id)?; // already read: fires nothing
/// assert!(inbox.send_message(&mut conn, 1, 2, "spam!").is_err());
/// assert_eq!(*log.lock().unwrap(), vec![("sent", m.id), ("read", m.id)]);
/// # Ok(()) }
/// # #[cfg(not(feature = "sqlite"))] fn main() {}
/// ```
#[derive(Default)]
pub struct Signals {
    sent: Handlers<EventHandler>,
    read: Handlers<EventHandler>,
    edited: Handlers<EventHandler>,
    unsent: Handlers<EventHandler>,
    before_send: Handlers<Policy>,
}

/// One list of handlers, replaced whole on registration (rare) so that dispatch (often)
/// only clones an `Arc` under the lock.
struct Handlers<T>(RwLock<Arc<Vec<T>>>);

impl<T> Default for Handlers<T> {
    fn default() -> Self {
        Self(RwLock::new(Arc::new(Vec::new())))
    }
}

impl<T: Clone> Handlers<T> {
    fn snapshot(&self) -> Arc<Vec<T>> {
        // A handler that panicked poisoned nothing: the list is only ever swapped whole.
        Arc::clone(&self.0.read().unwrap_or_else(|e| e.into_inner()))
    }

    fn push(&self, handler: T) {
        let mut list = self.0.write().unwrap_or_else(|e| e.into_inner());
        let mut next = Vec::clone(&list);
        next.push(handler);
        *list = Arc::new(next);
    }
}

impl Handlers<EventHandler> {
    /// Calls every handler with every event, even when one panics; the first panic is
    /// raised again once all of them ran, so the rows already committed are announced to
    /// every other handler.
    fn fire<'m>(&self, signal: &'static str, events: impl IntoIterator<Item = MessageEvent<'m>>) {
        let handlers = self.snapshot();
        let mut first_panic = None;
        for event in events {
            for handler in handlers.iter() {
                let call = std::panic::AssertUnwindSafe(|| handler(&event));
                if let Err(payload) = std::panic::catch_unwind(call) {
                    crate::trace::handler_panicked(signal);
                    first_panic.get_or_insert(payload);
                }
            }
        }
        if let Some(payload) = first_panic {
            std::panic::resume_unwind(payload);
        }
    }
}

impl std::fmt::Debug for Signals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signals")
            .field("message_sent", &self.sent.snapshot().len())
            .field("message_read", &self.read.snapshot().len())
            .field("message_edited", &self.edited.snapshot().len())
            .field("message_unsent", &self.unsent.snapshot().len())
            .field("before_send", &self.before_send.snapshot().len())
            .finish()
    }
}

impl Signals {
    /// A registry with no handlers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Calls `f` after each message is stored.
    pub fn on_message_sent(&self, f: impl Fn(&MessageEvent<'_>) + Send + Sync + 'static) {
        self.sent.push(Arc::new(f));
    }

    /// Calls `f` once per message, when it is first marked read.
    pub fn on_message_read(&self, f: impl Fn(&MessageEvent<'_>) + Send + Sync + 'static) {
        self.read.push(Arc::new(f));
    }

    /// Calls `f` once per edit that changed a message's text, with the message as edited,
    /// after the edit committed.
    pub fn on_message_edited(&self, f: impl Fn(&MessageEvent<'_>) + Send + Sync + 'static) {
        self.edited.push(Arc::new(f));
    }

    /// Calls `f` once per message its sender unsent, with the message as it was last
    /// stored, after the unsend committed.
    pub fn on_message_unsent(&self, f: impl Fn(&MessageEvent<'_>) + Send + Sync + 'static) {
        self.unsent.push(Arc::new(f));
    }

    /// Adds a policy that may veto a message after validation and before it is stored:
    /// the first `Err(reason)` makes `send_message` return
    /// [`Error::Rejected`](crate::Error::Rejected) and stores nothing. Policies run in
    /// registration order, before the database is touched.
    pub fn on_before_send(
        &self,
        f: impl Fn(&Draft<'_>) -> Result<(), String> + Send + Sync + 'static,
    ) {
        self.before_send.push(Arc::new(f));
    }

    /// `message_sent`; `muted`: its recipient muted the conversation.
    pub(crate) fn message_sent(&self, message: &Message, muted: bool) {
        self.sent.fire("message_sent", [message.event(muted)]);
    }

    /// `message_read` for each message, in order; `muted`: their recipient muted the
    /// conversation.
    pub(crate) fn message_read(&self, messages: &[Message], muted: bool) {
        self.read
            .fire("message_read", messages.iter().map(|m| m.event(muted)));
    }

    /// `message_edited`; `muted`: its recipient muted the conversation.
    pub(crate) fn message_edited(&self, message: &Message, muted: bool) {
        self.edited.fire("message_edited", [message.event(muted)]);
    }

    /// `message_unsent`; `muted`: its recipient muted the conversation.
    pub(crate) fn message_unsent(&self, message: &Message, muted: bool) {
        self.unsent.fire("message_unsent", [message.event(muted)]);
    }

    pub(crate) fn before_send(&self, draft: &Draft<'_>) -> Result<(), String> {
        self.before_send
            .snapshot()
            .iter()
            .try_for_each(|policy| policy(draft))
    }
}
