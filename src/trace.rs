//! With the feature `tracing`: one span per inbox operation (target `directmessages`),
//! carrying the user and message ids it works on, never a message's text; an event when
//! an operation fails, when a transaction that lost a race is retried, and when a signal
//! handler panics. Without the feature all of it compiles to nothing.

/// Awaits `$future` inside the span `$name` with the given id fields (and, with the
/// feature, reports a failure as an event in it).
macro_rules! traced {
    ($name:literal $(, $field:ident = $value:expr)* ; $future:expr) => {{
        #[cfg(feature = "tracing")]
        let output = {
            let span = tracing::info_span!(target: "directmessages", $name $(, $field = $value)*);
            let output = tracing::Instrument::instrument($future, span.clone()).await;
            $crate::trace::outcome(&span, &output);
            output
        };
        #[cfg(not(feature = "tracing"))]
        let output = $future.await;
        output
    }};
}
pub(crate) use traced;

/// Reports a failed operation, inside its span.
#[cfg(feature = "tracing")]
pub(crate) fn outcome<T>(span: &tracing::Span, output: &crate::Result<T>) {
    if let Err(error) = output {
        span.in_scope(|| match error {
            crate::Error::Database(_) | crate::Error::Migration(_) => {
                tracing::error!(target: "directmessages", %error, "operation failed");
            }
            _ => tracing::debug!(target: "directmessages", %error, "operation refused"),
        });
    }
}

/// An attempt lost a race (or found SQLite busy) and runs again after `wait`.
#[allow(unused_variables)]
pub(crate) fn retry(attempt: u32, error: &dyn std::fmt::Display, wait: std::time::Duration) {
    #[cfg(feature = "tracing")]
    tracing::warn!(
        target: "directmessages",
        attempt,
        %error,
        wait_ms = wait.as_millis() as u64,
        "transaction retried"
    );
}

/// A handler of `signal` panicked (the other handlers still ran).
#[allow(unused_variables)]
pub(crate) fn handler_panicked(signal: &'static str) {
    #[cfg(feature = "tracing")]
    tracing::error!(target: "directmessages", signal, "a signal handler panicked");
}

/// A subscriber that writes down every span and event, for the tests.
#[cfg(all(test, feature = "tracing"))]
pub(crate) mod recorder {
    use std::fmt::Write;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};

    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Metadata};

    /// Every span as `span NAME field=value…` and every event as `event LEVEL field=value…`.
    #[derive(Debug, Default, Clone)]
    pub(crate) struct Recorder {
        lines: Arc<Mutex<Vec<String>>>,
        next: Arc<AtomicU64>,
    }

    struct Line<'a>(&'a mut String);

    impl Visit for Line<'_> {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            let _ = write!(self.0, " {}={:?}", field.name(), value);
        }
    }

    impl Recorder {
        /// What `f` traced, with this recorder as the subscriber.
        pub(crate) fn during(f: impl FnOnce()) -> Vec<String> {
            let recorder = Recorder::default();
            tracing::subscriber::with_default(recorder.clone(), f);
            let lines = recorder.lines.lock().map(|l| l.clone());
            lines.unwrap_or_default()
        }

        fn push(&self, line: String) {
            if let Ok(mut lines) = self.lines.lock() {
                lines.push(line);
            }
        }
    }

    impl tracing::Subscriber for Recorder {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, attrs: &Attributes<'_>) -> Id {
            let mut line = format!("span {}", attrs.metadata().name());
            attrs.record(&mut Line(&mut line));
            self.push(line);
            Id::from_u64(self.next.fetch_add(1, Ordering::Relaxed) + 1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            let mut line = format!("event {}", event.metadata().level());
            event.record(&mut Line(&mut line));
            self.push(line);
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }
}

#[cfg(all(test, feature = "tracing", feature = "sqlite"))]
mod tests {
    use diesel::{Connection, SqliteConnection};

    use super::recorder::Recorder;
    use crate::{ConversationQuery, Error, Inbox, SearchQuery};

    fn conn() -> SqliteConnection {
        let mut conn = SqliteConnection::establish(":memory:").expect("in-memory SQLite");
        crate::run_migrations(&mut conn).expect("migrations");
        conn
    }

    #[test]
    fn each_operation_has_a_span_with_its_ids_and_never_the_text() {
        let mut conn = conn();
        let inbox = Inbox::new();
        let lines = Recorder::during(|| {
            let m = inbox
                .send_message(&mut conn, 1, 2, "secret lunch plans")
                .expect("send");
            inbox.read_message_as(&mut conn, 2, m.id).expect("read");
            inbox
                .conversation(&mut conn, 1, 2, ConversationQuery::new())
                .expect("page");
            inbox
                .search(&mut conn, 2, SearchQuery::new("secret").with(1))
                .expect("search");
            inbox
                .archive_conversation(&mut conn, 2, 1)
                .expect("archive");
            inbox.block_user(&mut conn, 2, 1).expect("block");
            inbox.delete_message(&mut conn, 2, m.id).expect("delete");
            inbox.purge_user(&mut conn, 1).expect("purge");
        });
        for expected in [
            "span send_message sender=1 recipient=2",
            "span read_message message=1 reader=2",
            "span conversation user=1 partner=2",
            "span search user=2 partner=1",
            "span set_conversation_flag user=2 partner=1 flag=\"archived\" on=true",
            "span block_user user=2 blocked=1 on=true",
            "span delete_message user=2 message=1",
            "span purge_user user=1",
        ] {
            assert!(
                lines.iter().any(|l| l == expected),
                "{expected} in {lines:#?}"
            );
        }
        assert!(
            lines.iter().all(|l| !l.contains("secret")),
            "no text in {lines:#?}"
        );
    }

    #[test]
    fn a_refused_operation_and_a_panicking_handler_are_events() {
        let mut conn = conn();
        let inbox = Inbox::new();
        inbox.signals().on_message_sent(|_| panic!("handler bug"));
        let lines = Recorder::during(|| {
            assert!(matches!(
                inbox.send_message(&mut conn, 1, 1, "me"),
                Err(Error::SelfMessage { .. })
            ));
            let sent = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                inbox.send_message(&mut conn, 1, 2, "hi")
            }));
            assert!(sent.is_err(), "the handler's panic is raised again");
        });
        assert!(
            lines.iter().any(|l| l.starts_with("event DEBUG")
                && l.contains("operation refused")
                && l.contains("cannot send")),
            "{lines:#?}"
        );
        assert!(
            lines.iter().any(|l| l.starts_with("event ERROR")
                && l.contains("a signal handler panicked")
                && l.contains("signal=\"message_sent\"")),
            "{lines:#?}"
        );
    }
}
