//! Which database errors are worth another attempt, how long to wait before it, and when
//! to give up: a [`Retry`] policy per backend, applied by the one retry loop
//! (`again` in `src/queries/transactions.rs`).
//!
//! PostgreSQL and MySQL abort a transaction that lost a serialization race or a deadlock,
//! and MariaDB Galera aborts one that lost certification against another node at COMMIT.
//! Running it again can succeed. Errors are recognized by their code where the driver
//! keeps it (Diesel maps PostgreSQL's SQLSTATE 40001 and MySQL's error 1213 of a prepared
//! statement to [`DatabaseErrorKind::SerializationFailure`]); PostgreSQL's deadlock
//! (40P01) reaches Diesel without its code, so it is recognized by its message, in every
//! language PostgreSQL ships.

use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

use diesel::result::{DatabaseErrorKind, Error as DieselError};

use crate::Error;

/// How many times the statement that ends a failed transaction is sent before the
/// connection is given up as broken (a `KILL QUERY` can cut off a ROLLBACK too).
pub(crate) const END_ATTEMPTS: usize = 10;

/// How many times a transaction that lost a race is run before its error is returned.
pub(crate) const MAX_ATTEMPTS: u32 = 20;

/// The messages of transient errors that Diesel reports without a code: PostgreSQL's
/// "deadlock detected" in each of its translations (`lc_messages`), and the texts MySQL
/// and MariaDB give deadlocks and Galera conflicts on statements that are not prepared.
const TRANSIENT_MESSAGES: &[&str] = &[
    "deadlock detected",
    "Verklemmung (Deadlock) entdeckt",
    "se ha detectado un deadlock",
    "interblocage (deadlock) détecté",
    "rilevato deadlock",
    "デッドロックを検出しました",
    "ნაპოვნია ურთიერთბლოკირება",
    "deadlock 발생했음",
    "обнаружена взаимоблокировка",
    "deadlock upptäckt",
    "виявлено взаємне блокування",
    "检测到死锁",
    "發現死結",
    "Deadlock found when trying to get lock",
    "WSREP detected deadlock/conflict",
];

/// An error a [`Retry`] looks at: the database's own, if it is one.
pub(crate) trait Failure {
    /// The database error, if this is one.
    fn database(&self) -> Option<&DieselError>;
}

impl Failure for DieselError {
    fn database(&self) -> Option<&DieselError> {
        Some(self)
    }
}

impl Failure for Error {
    fn database(&self) -> Option<&DieselError> {
        match self {
            Error::Database(e) => Some(e),
            _ => None,
        }
    }
}

/// Whether the database aborted the transaction only because of concurrent ones, so
/// running it again can succeed.
#[cfg_attr(not(any(feature = "mysql", test)), allow(dead_code))]
pub(crate) fn is_transient(error: &Error) -> bool {
    error.database().is_some_and(transient)
}

/// See [`is_transient`].
fn transient(error: &DieselError) -> bool {
    match error {
        DieselError::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => true,
        DieselError::DatabaseError(DatabaseErrorKind::Unknown, info) => {
            let message = info.message();
            TRANSIENT_MESSAGES.iter().any(|m| message.contains(m))
        }
        _ => false,
    }
}

/// How long the inbox waits out a busy SQLite database (another connection's write lock,
/// or a writer committing) before it gives up with [`Error::Database`], whatever the
/// connection's own busy timeout.
pub(crate) const BUSY_WAIT: Duration = Duration::from_secs(30);

/// Whether SQLite refused a lock that another connection holds: `SQLITE_BUSY` ("database
/// is locked") or, with a shared cache, `SQLITE_LOCKED` ("database table is locked").
/// The statement that got it changed nothing.
pub(crate) fn is_busy(error: &DieselError) -> bool {
    match error {
        DieselError::DatabaseError(_, info) => {
            let message = info.message();
            message.contains("database is locked") || message.contains("database table is locked")
        }
        _ => false,
    }
}

/// When a failed attempt is made again: which errors qualify, and for how long.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Retry {
    /// The database errors worth another attempt.
    pub(crate) retries: fn(&DieselError) -> bool,
    /// When to stop.
    pub(crate) limit: Limit,
}

/// When a [`Retry`] gives up.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Limit {
    /// After this many attempts in all.
    Attempts(u32),
    /// Once this long has passed since the first attempt began.
    Within(Duration),
}

impl Retry {
    /// Serialization failures, deadlocks and Galera conflicts, up to [`MAX_ATTEMPTS`].
    #[cfg_attr(not(any(feature = "postgres", feature = "mysql")), allow(dead_code))]
    pub(crate) const TRANSIENT: Self = Self {
        retries: transient,
        limit: Limit::Attempts(MAX_ATTEMPTS),
    };

    /// A busy SQLite database, for up to [`BUSY_WAIT`].
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) const BUSY: Self = Self::busy_for(BUSY_WAIT);

    /// A busy SQLite database, for up to `wait`.
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) const fn busy_for(wait: Duration) -> Self {
        Self {
            retries: is_busy,
            limit: Limit::Within(wait),
        }
    }

    /// The attempts of one call under this policy, the first beginning now.
    pub(crate) fn start(self) -> Attempts {
        Attempts {
            policy: self,
            attempt: 1,
            started: Instant::now(),
        }
    }
}

/// The attempts made so far under a [`Retry`].
#[derive(Debug)]
pub(crate) struct Attempts {
    policy: Retry,
    attempt: u32,
    started: Instant,
}

impl Attempts {
    /// After the current attempt failed with `error`: how long to wait before the next
    /// one, or `None` when `error` is final (not retried, or the policy's limit is
    /// reached).
    pub(crate) fn again(&mut self, error: &(impl Failure + std::fmt::Display)) -> Option<Duration> {
        if !error.database().is_some_and(self.policy.retries) {
            return None;
        }
        let wait = backoff(self.attempt);
        let more = match self.policy.limit {
            Limit::Attempts(n) => self.attempt < n,
            Limit::Within(limit) => self.started.elapsed() + wait <= limit,
        };
        if !more {
            return None;
        }
        crate::trace::retry(self.attempt, error, wait);
        self.attempt += 1;
        Some(wait)
    }
}

/// How long to wait before attempt `attempt + 1`: exponential from 1 ms, capped at
/// 100 ms, with full jitter so that the transactions that collided spread out.
pub(crate) fn backoff(attempt: u32) -> Duration {
    let ceiling_us = 1_000u64.saturating_mul(1 << attempt.min(16)).min(100_000);
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    Duration::from_micros(ceiling_us / 2 + random % (ceiling_us / 2 + 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::result::DatabaseErrorInformation;

    #[derive(Debug)]
    struct Info(&'static str);
    impl DatabaseErrorInformation for Info {
        fn message(&self) -> &str {
            self.0
        }
        fn details(&self) -> Option<&str> {
            None
        }
        fn hint(&self) -> Option<&str> {
            None
        }
        fn table_name(&self) -> Option<&str> {
            None
        }
        fn column_name(&self) -> Option<&str> {
            None
        }
        fn constraint_name(&self) -> Option<&str> {
            None
        }
        fn statement_position(&self) -> Option<i32> {
            None
        }
    }

    fn db_error(kind: DatabaseErrorKind, message: &'static str) -> Error {
        Error::Database(DieselError::DatabaseError(kind, Box::new(Info(message))))
    }

    fn serialization_failure() -> Error {
        db_error(
            DatabaseErrorKind::SerializationFailure,
            "could not serialize access",
        )
    }

    #[test]
    fn serialization_failures_and_deadlocks_are_transient_other_errors_are_not() {
        assert!(is_transient(&serialization_failure()));
        assert!(is_transient(&db_error(
            DatabaseErrorKind::Unknown,
            "deadlock detected"
        )));
        assert!(is_transient(&db_error(
            DatabaseErrorKind::Unknown,
            "Verklemmung (Deadlock) entdeckt"
        )));
        assert!(is_transient(&db_error(
            DatabaseErrorKind::Unknown,
            "Deadlock found when trying to get lock; try restarting transaction"
        )));
        assert!(is_transient(&db_error(
            DatabaseErrorKind::Unknown,
            "WSREP detected deadlock/conflict and aborted the transaction. Try restarting the transaction"
        )));
        assert!(!is_transient(&db_error(
            DatabaseErrorKind::Unknown,
            "canceling statement due to statement timeout"
        )));
        assert!(!is_transient(&db_error(
            DatabaseErrorKind::UniqueViolation,
            "duplicate key"
        )));
        assert!(!is_transient(&Error::EmptyMessage));
        assert!(!is_transient(&Error::Database(DieselError::NotFound)));
    }
}

/// The translations PostgreSQL installs on this machine must all be recognized.
#[cfg(test)]
mod translation_tests {
    use super::TRANSIENT_MESSAGES;

    /// The translation of `original` in a gettext `.mo` catalogue, if it has one.
    fn translation<'a>(mo: &'a [u8], original: &str) -> Option<&'a str> {
        let word = |at: usize| -> Option<u32> {
            let bytes: [u8; 4] = mo.get(at..at + 4)?.try_into().ok()?;
            Some(u32::from_le_bytes(bytes))
        };
        if word(0)? != 0x9504_12de {
            return None;
        }
        let (count, originals, translations) = (word(8)?, word(12)?, word(16)?);
        let string = |table: u32, i: u32| -> Option<&'a str> {
            let entry = (table + 8 * i) as usize;
            let (length, offset) = (word(entry)? as usize, word(entry + 4)? as usize);
            std::str::from_utf8(mo.get(offset..offset + length)?).ok()
        };
        (0..count)
            .find(|&i| string(originals, i) == Some(original))
            .and_then(|i| string(translations, i))
    }

    #[test]
    fn every_translation_of_a_postgresql_deadlock_installed_here_is_recognized() {
        let mut checked = 0;
        for lang in std::fs::read_dir("/usr/share/locale")
            .into_iter()
            .flatten()
            .flatten()
        {
            let dir = lang.path().join("LC_MESSAGES");
            for file in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let name = file.file_name().to_string_lossy().into_owned();
                if !(name.starts_with("postgres-") && name.ends_with(".mo")) {
                    continue;
                }
                let mo = std::fs::read(file.path()).expect("readable catalogue");
                if let Some(text) = translation(&mo, "deadlock detected") {
                    assert!(
                        TRANSIENT_MESSAGES.contains(&text),
                        "{}: {text:?} is not recognized as a deadlock",
                        file.path().display()
                    );
                    checked += 1;
                }
            }
        }
        if checked == 0 {
            assert!(
                !std::env::var("CI").is_ok_and(|v| v == "true"),
                "CI=true but no PostgreSQL message catalogue is installed"
            );
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "note: no PostgreSQL message catalogue installed; translations not checked"
            );
        }
    }
}

#[cfg(test)]
mod backoff_tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_is_jittered() {
        for attempt in 1..=MAX_ATTEMPTS {
            let ceiling = Duration::from_micros((1_000u64 << attempt).min(100_000));
            let wait = backoff(attempt);
            assert!(
                wait <= ceiling && wait >= ceiling / 2,
                "{attempt}: {wait:?}"
            );
        }
        let waits: std::collections::BTreeSet<Duration> = (0..50).map(|_| backoff(6)).collect();
        assert!(waits.len() > 10, "waits are spread out: {waits:?}");
    }

    #[test]
    fn attempts_stop_at_their_count_their_time_or_a_final_error() {
        let conflict = DieselError::DatabaseError(
            DatabaseErrorKind::SerializationFailure,
            Box::new(String::from("could not serialize access")),
        );
        let busy = DieselError::DatabaseError(
            DatabaseErrorKind::Unknown,
            Box::new(String::from("database is locked")),
        );
        let mut by_count = Retry::TRANSIENT.start();
        let retried = std::iter::from_fn(|| by_count.again(&conflict)).count();
        assert_eq!(
            retried as u32,
            MAX_ATTEMPTS - 1,
            "attempts in all: MAX_ATTEMPTS"
        );

        assert!(
            Retry::TRANSIENT.start().again(&busy).is_none(),
            "busy is SQLite's"
        );
        assert!(Retry::BUSY.start().again(&conflict).is_none());
        assert!(Retry::BUSY.start().again(&DieselError::NotFound).is_none());

        let limit = Duration::from_millis(50);
        let mut by_time = Retry::busy_for(limit).start();
        let mut waited = Duration::ZERO;
        while let Some(wait) = by_time.again(&busy) {
            std::thread::sleep(wait);
            waited += wait;
        }
        assert!(waited <= limit, "{waited:?}");
        assert!(waited >= limit / 4, "{waited:?}");
    }
}
