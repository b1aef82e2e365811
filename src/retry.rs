//! Which database errors are transient, and the retry of a transaction that hit one.
//!
//! PostgreSQL and MySQL abort a transaction that lost a serialization race or a deadlock,
//! and MariaDB Galera aborts one that lost certification against another node at COMMIT.
//! Running it again can succeed. Errors are recognized by their code where the driver
//! keeps it (Diesel maps PostgreSQL's SQLSTATE 40001 and MySQL's error 1213 of a prepared
//! statement to [`DatabaseErrorKind::SerializationFailure`]); PostgreSQL's deadlock
//! (40P01) reaches Diesel without its code, so it is recognized by its message, in every
//! language PostgreSQL ships.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::result::{DatabaseErrorKind, Error as DieselError, QueryResult};
use diesel::Connection;

use crate::{Error, Result};

/// How many times the statement that ends a failed transaction is sent before the
/// connection is given up as broken (a `KILL QUERY` can cut off a ROLLBACK too).
const END_ATTEMPTS: usize = 10;

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

/// Whether the database aborted the transaction only because of concurrent ones, so
/// running it again can succeed.
pub(crate) fn is_transient(error: &Error) -> bool {
    match error {
        Error::Database(DieselError::DatabaseError(DatabaseErrorKind::SerializationFailure, _)) => {
            true
        }
        Error::Database(DieselError::DatabaseError(DatabaseErrorKind::Unknown, info)) => {
            let message = info.message();
            TRANSIENT_MESSAGES.iter().any(|m| message.contains(m))
        }
        _ => false,
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

/// How a backend runs the outermost attempt of a write transaction: by default Diesel's
/// `BEGIN` … `COMMIT`; MySQL brings its own (see `dialect/mysql.rs`).
pub(crate) trait OutermostTransaction:
    Connection<TransactionManager = AnsiTransactionManager>
{
    /// Runs `f` in a new top-level transaction.
    fn outermost<T>(&mut self, f: &mut impl FnMut(&mut Self) -> Result<T>) -> Result<T> {
        let result = self.transaction(f);
        if result.is_err() {
            restore_after_failed_rollback(self);
        }
        result
    }
}

/// A transaction that is retried, after a short random wait, on transient errors when it
/// is the outermost one. Inside the caller's transaction it is a savepoint and never
/// retried: the database may have aborted the caller's whole transaction, which only the
/// caller can run again.
#[cfg_attr(not(any(feature = "postgres", feature = "mysql")), allow(dead_code))]
pub(crate) fn retrying_transaction<C, T>(
    conn: &mut C,
    mut f: impl FnMut(&mut C) -> Result<T>,
) -> Result<T>
where
    C: OutermostTransaction,
{
    if is_nested(conn)? {
        return conn.transaction(f);
    }
    let mut attempt = 1;
    loop {
        match conn.outermost(&mut f) {
            Err(e) if attempt < MAX_ATTEMPTS && is_transient(&e) => {
                std::thread::sleep(backoff(attempt));
                attempt += 1;
            }
            result => return result,
        }
    }
}

/// After a failed top-level transaction of ours whose ROLLBACK failed too (on MySQL, a
/// `KILL QUERY` or `max_statement_time` can cut off the ROLLBACK itself), Diesel marks the
/// connection's transaction manager broken and refuses every later transaction: a pool
/// would lose the connection for good. The transaction was ours, begun at depth 0, so
/// roll it back again, and once the server confirms, the connection is as it was before.
fn restore_after_failed_rollback<C>(conn: &mut C)
where
    C: Connection<TransactionManager = AnsiTransactionManager>,
{
    let status = AnsiTransactionManager::transaction_manager_status_mut(conn);
    if status.transaction_depth().is_ok() {
        return;
    }
    end_transaction(conn, |conn, _| conn.batch_execute("ROLLBACK").is_ok());
}

/// Ends a top-level transaction of ours for good: `end(conn, n)` sends attempt `n` of the
/// statements that end it and says whether the server confirmed; it is sent again, up to
/// [`END_ATTEMPTS`] times, since a `KILL QUERY` can cut those statements off too. Diesel's
/// view of the connection is then reset to "no transaction", or left broken if the server
/// never confirmed, so that a pool discards the connection rather than let the next
/// transaction commit what this one left behind.
pub(crate) fn end_transaction<C>(conn: &mut C, mut end: impl FnMut(&mut C, usize) -> bool)
where
    C: Connection<TransactionManager = AnsiTransactionManager>,
{
    let ended = (0..END_ATTEMPTS).any(|attempt| end(conn, attempt));
    let status = AnsiTransactionManager::transaction_manager_status_mut(conn);
    if ended {
        *status = Default::default();
    } else {
        status.set_in_error();
    }
}

/// Whether `conn` is already inside a transaction.
pub(crate) fn is_nested<C>(conn: &mut C) -> QueryResult<bool>
where
    C: Connection<TransactionManager = AnsiTransactionManager>,
{
    Ok(AnsiTransactionManager::transaction_manager_status_mut(conn)
        .transaction_depth()?
        .is_some())
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use diesel::connection::SimpleConnection;
    use diesel::result::DatabaseErrorInformation;
    use diesel::{RunQueryDsl, SqliteConnection};

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

    impl OutermostTransaction for SqliteConnection {}

    fn conn() -> SqliteConnection {
        let mut conn = SqliteConnection::establish(":memory:").unwrap();
        conn.batch_execute("CREATE TABLE t (x INTEGER NOT NULL)")
            .unwrap();
        conn
    }

    fn rows(conn: &mut SqliteConnection) -> i64 {
        diesel::sql_query("SELECT 1 FROM t")
            .execute(conn)
            .map(|n| n as i64)
            .unwrap()
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

    #[test]
    fn a_transient_failure_is_rolled_back_and_run_again() {
        let mut conn = conn();
        let mut attempts = 0;
        let result = retrying_transaction(&mut conn, |c| {
            attempts += 1;
            c.batch_execute("INSERT INTO t VALUES (1)")?;
            if attempts < 3 {
                return Err(serialization_failure());
            }
            Ok(attempts)
        });
        assert_eq!(result.unwrap(), 3);
        assert_eq!(
            rows(&mut conn),
            1,
            "the failed attempts left nothing behind"
        );
    }

    #[test]
    fn a_failure_that_persists_is_returned_after_the_last_attempt() {
        let mut conn = conn();
        let mut attempts = 0;
        let result: Result<()> = retrying_transaction(&mut conn, |_| {
            attempts += 1;
            Err(serialization_failure())
        });
        assert!(is_transient(&result.unwrap_err()));
        assert_eq!(attempts, MAX_ATTEMPTS);
    }

    #[test]
    fn inside_the_callers_transaction_nothing_is_retried() {
        let mut conn = conn();
        let mut attempts = 0;
        let outer: Result<()> = conn.transaction(|c| {
            let inner: Result<()> = retrying_transaction(c, |_| {
                attempts += 1;
                Err(serialization_failure())
            });
            assert!(inner.is_err());
            Ok(())
        });
        outer.unwrap();
        assert_eq!(attempts, 1);
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
}
