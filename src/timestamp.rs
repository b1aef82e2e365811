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
    use diesel::sql_types::Timestamp;
    use diesel::sqlite::{Sqlite, SqliteValue};

    // The same text format Diesel uses for `Timestamp`, so SQLite's date functions work.
    impl ToSql<UtcDateTime, Sqlite> for DateTime<Utc> {
        fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
            out.set_value(self.naive_utc().format("%F %T%.6f").to_string());
            Ok(serialize::IsNull::No)
        }
    }
    impl FromSql<UtcDateTime, Sqlite> for DateTime<Utc> {
        fn from_sql(value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
            <chrono::NaiveDateTime as FromSql<Timestamp, Sqlite>>::from_sql(value)
                .map(|naive| naive.and_utc())
        }
    }
    delegate_to_datetime!(Sqlite);
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
