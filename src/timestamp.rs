//! How `DateTime<Utc>` travels through [`UtcDateTime`] on each backend, and the clock.

use chrono::{DateTime, SubsecRound, Utc};
use diesel::deserialize::{self, FromSql};
use diesel::serialize::{self, Output, ToSql};

use crate::schema::sql_types::UtcDateTime;
use crate::schema::UtcTimestamp;

/// The current time, cut to the microseconds every backend stores, so a returned value
/// equals the stored one.
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

macro_rules! delegate_to_datetime {
    ($backend:ty) => {
        impl ToSql<UtcDateTime, $backend> for UtcTimestamp {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, $backend>) -> serialize::Result {
                <DateTime<Utc> as ToSql<UtcDateTime, $backend>>::to_sql(&self.0, out)
            }
        }
        impl FromSql<UtcDateTime, $backend> for UtcTimestamp {
            fn from_sql(
                value: <$backend as diesel::backend::Backend>::RawValue<'_>,
            ) -> deserialize::Result<Self> {
                <DateTime<Utc> as FromSql<UtcDateTime, $backend>>::from_sql(value).map(UtcTimestamp)
            }
        }
    };
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use super::*;
    use chrono::{NaiveDate, NaiveDateTime};
    use diesel::sql_types::Timestamp;
    use diesel::sqlite::{Sqlite, SqliteType, SqliteValue};

    // The same text format Diesel uses for `Timestamp`, so SQLite's date functions work.
    impl ToSql<UtcDateTime, Sqlite> for DateTime<Utc> {
        fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
            out.set_value(self.naive_utc().format("%F %T%.6f").to_string());
            Ok(serialize::IsNull::No)
        }
    }
    impl FromSql<UtcDateTime, Sqlite> for DateTime<Utc> {
        fn from_sql(mut value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
            // The text the inbox writes, read field by field; any other form a host may
            // have stored goes through Diesel's parser, which tries format after format
            // with chrono's interpreter (several times the cost, for every timestamp of
            // every row loaded).
            if value.value_type() == Some(SqliteType::Text) {
                if let Some(naive) = parse_stored(value.read_text().as_bytes()) {
                    return Ok(naive.and_utc());
                }
            }
            <NaiveDateTime as FromSql<Timestamp, Sqlite>>::from_sql(value)
                .map(|naive| naive.and_utc())
        }
    }
    delegate_to_datetime!(Sqlite);

    /// `YYYY-MM-DD HH:MM:SS`, then optionally `.` and 1 to 9 digits of a second, or `None`.
    pub(super) fn parse_stored(text: &[u8]) -> Option<NaiveDateTime> {
        let (whole, fraction) = text.split_at_checked(19)?;
        let number = |at: usize, len: usize| -> Option<u32> {
            whole.get(at..at + len)?.iter().try_fold(0_u32, |n, &b| {
                b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0'))
            })
        };
        let separators = [(4, b'-'), (7, b'-'), (10, b' '), (13, b':'), (16, b':')];
        if separators.iter().any(|&(at, c)| whole[at] != c) {
            return None;
        }
        let nanos = match fraction {
            [] => 0,
            [b'.', digits @ ..] if (1..=9).contains(&digits.len()) => {
                let mut n = 0_u32;
                for &b in digits {
                    if !b.is_ascii_digit() {
                        return None;
                    }
                    n = n * 10 + u32::from(b - b'0');
                }
                n * 10_u32.pow(9 - digits.len() as u32)
            }
            _ => return None,
        };
        let date = NaiveDate::from_ymd_opt(
            i32::try_from(number(0, 4)?).ok()?,
            number(5, 2)?,
            number(8, 2)?,
        )?;
        date.and_hms_nano_opt(number(11, 2)?, number(14, 2)?, number(17, 2)?, nanos)
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;
    use diesel::pg::{Pg, PgValue};
    use diesel::sql_types::Timestamptz;

    impl ToSql<UtcDateTime, Pg> for DateTime<Utc> {
        fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
            <DateTime<Utc> as ToSql<Timestamptz, Pg>>::to_sql(self, out)
        }
    }
    impl FromSql<UtcDateTime, Pg> for DateTime<Utc> {
        fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
            <DateTime<Utc> as FromSql<Timestamptz, Pg>>::from_sql(value)
        }
    }
    delegate_to_datetime!(Pg);
}

#[cfg(feature = "mysql")]
mod mysql {
    use super::*;
    use diesel::mysql::{Mysql, MysqlValue};
    use diesel::sql_types::Datetime;

    impl ToSql<UtcDateTime, Mysql> for DateTime<Utc> {
        fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Mysql>) -> serialize::Result {
            let naive = self.naive_utc();
            <chrono::NaiveDateTime as ToSql<Datetime, Mysql>>::to_sql(&naive, &mut out.reborrow())
        }
    }
    impl FromSql<UtcDateTime, Mysql> for DateTime<Utc> {
        fn from_sql(value: MysqlValue<'_>) -> deserialize::Result<Self> {
            <chrono::NaiveDateTime as FromSql<Datetime, Mysql>>::from_sql(value)
                .map(|naive| naive.and_utc())
        }
    }
    delegate_to_datetime!(Mysql);
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use chrono::NaiveDateTime;
    use diesel::prelude::*;

    use super::sqlite::parse_stored;
    use crate::schema::UtcTimestamp;

    #[test]
    fn stored_text_parses_as_diesel_parses_it() {
        for text in [
            "2026-12-06 05:54:49",
            "2026-12-06 05:54:49.123456",
            "2026-12-06 05:54:49.1",
            "2026-12-06 05:54:49.000000001",
            "1970-01-01 00:00:00.000000",
            "0001-01-01 23:59:59.999999",
            "2024-02-29 12:00:00.5",
        ] {
            let expected =
                NaiveDateTime::parse_from_str(text, "%F %T%.f").expect("chrono parses it");
            assert_eq!(parse_stored(text.as_bytes()), Some(expected), "{text}");
        }
    }

    #[test]
    fn other_text_is_left_to_diesel() {
        for text in [
            "",
            "2026-12-06",
            "2026-12-06T05:54:49",
            "2026-12-06 05:54:49Z",
            "2026-12-06 05:54:49.",
            "2026-12-06 05:54:49.1234567890",
            "2026-12-06 05:54:49+01:00",
            "2026-13-06 05:54:49",
            "2023-02-29 05:54:49",
            "2026-12-06 24:00:00",
            "2026-12-06 23:59:60",
            "2026-12-06 05:5a:49",
            "+026-12-06 05:54:49",
            "2026-12-06 05:54:49.12a",
        ] {
            assert_eq!(parse_stored(text.as_bytes()), None, "{text}");
        }
    }

    /// Timestamps a host wrote in another form Diesel reads (ISO `T`, milliseconds, a Julian
    /// day number) still load.
    #[test]
    fn other_forms_still_load() {
        let mut conn = SqliteConnection::establish(":memory:").expect("in-memory database");
        let expected = "2026-12-06T04:54:49Z"
            .parse::<chrono::DateTime<chrono::Utc>>()
            .expect("a time");
        for value in [
            "'2026-12-06T04:54:49'",
            "'2026-12-06 04:54:49.000'",
            "julianday('2026-12-06 04:54:49')",
        ] {
            let loaded: UtcTimestamp = diesel::select(diesel::dsl::sql::<
                crate::schema::sql_types::UtcDateTime,
            >(value))
            .get_result(&mut conn)
            .expect("loads");
            let drift = (loaded.0 - expected).num_milliseconds().abs();
            assert!(drift < 1, "{value} loaded as {}", loaded.0);
        }
    }
}
