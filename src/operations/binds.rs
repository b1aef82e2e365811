//! How statements bind their values and stay prepared: the `LIMIT` and indexed-column
//! forms each backend's planner needs ([`BindSyntax`], [`Limited`], [`Key`]), statements
//! kept in the prepared-statement cache ([`Cached`]), and statements of fixed text with
//! `?` placeholders ([`Raw`]).

use std::marker::PhantomData;

use diesel::prelude::*;

/// How a backend writes what a statement binds where the planner could read it: a
/// `LIMIT` count ([`Limited`]) and a value compared with an indexed column ([`Key`]).
pub(crate) trait BindSyntax: diesel::backend::Backend {
    /// What comes before a `LIMIT`'s parameter.
    const LIMIT_BEFORE: &'static str = " LIMIT ";
    /// What comes after it.
    const LIMIT_AFTER: &'static str = "";
    /// What comes after a [`Key`]'s parameter.
    const KEY_AFTER: &'static str = "";
}

/// `query`, then `LIMIT n` when there is an `n`, in the form [`BindSyntax`] gives.
///
/// SQLite (since 3.47) plans a `LIMIT ?` for the value bound to it, which marks the
/// prepared statement to be compiled again after every new binding: each page cost a
/// fresh parse and plan, several times the cost of the query itself. Bound as `? + 0`,
/// the count is an expression the planner does not read, and the cached statement is
/// reused as it is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limited<Q> {
    query: Q,
    limit: Option<i64>,
}

impl<Q> Limited<Q> {
    /// `query` with at most `limit` rows, or all of them.
    pub(crate) fn new(query: Q, limit: Option<u32>) -> Self {
        Self {
            query,
            limit: limit.map(i64::from),
        }
    }
}

impl<Q: diesel::query_builder::Query> diesel::query_builder::Query for Limited<Q> {
    type SqlType = Q::SqlType;
}

// With and without a limit the text differs: never one cache entry for both by type.
impl<Q> diesel::query_builder::QueryId for Limited<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q, DB> diesel::query_builder::QueryFragment<DB> for Limited<Q>
where
    DB: BindSyntax + diesel::sql_types::HasSqlType<diesel::sql_types::BigInt>,
    Q: diesel::query_builder::QueryFragment<DB>,
    i64: diesel::serialize::ToSql<diesel::sql_types::BigInt, DB>,
{
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, DB>,
    ) -> QueryResult<()> {
        self.query.walk_ast(out.reborrow())?;
        if let Some(limit) = &self.limit {
            out.push_sql(DB::LIMIT_BEFORE);
            out.push_bind_param::<diesel::sql_types::BigInt, _>(limit)?;
            out.push_sql(DB::LIMIT_AFTER);
        }
        Ok(())
    }
}

impl<Q, C> diesel::RunQueryDsl<C> for Limited<Q> {}

/// A value a statement compares with an indexed column, bound in the form [`BindSyntax`]
/// gives: on SQLite `? + 0`.
///
/// Once a host runs `ANALYZE` (or a `PRAGMA optimize` that runs it), SQLite built with
/// STAT4, as the bundled library is, reads the value bound against an indexed column while
/// it plans, and marks the prepared statement to be compiled again after every new
/// binding: every call paid a parse and a plan, half of the inbox screen's time. An
/// expression around the parameter is not read, so the statement Diesel keeps prepared
/// is reused as it is; the plan is the one the table's statistics give for any value.
/// `tests/query_plans.rs` counts the recompilations.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Key<ST, T> {
    value: T,
    sql_type: PhantomData<ST>,
}

/// `value` as a [`Key`] of SQL type `ST`, inferred from the column it is compared with.
pub(crate) fn key<ST, T>(value: T) -> Key<ST, T> {
    Key {
        value,
        sql_type: PhantomData,
    }
}

impl<ST, T> diesel::Expression for Key<ST, T>
where
    ST: diesel::sql_types::SqlType + diesel::expression::TypedExpressionType,
{
    type SqlType = ST;
}

impl<ST, T, QS> diesel::AppearsOnTable<QS> for Key<ST, T> where Self: diesel::Expression {}

impl<ST, T, QS> diesel::SelectableExpression<QS> for Key<ST, T> where Self: diesel::Expression {}

impl<ST, T, GB> diesel::expression::ValidGrouping<GB> for Key<ST, T> {
    type IsAggregate = diesel::expression::is_aggregate::Never;
}

// The text does not depend on the value: one cache entry per statement shape, as a plain
// bound value has.
impl<ST: 'static, T> diesel::query_builder::QueryId for Key<ST, T> {
    type QueryId = Key<ST, ()>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<ST, T, DB> diesel::query_builder::QueryFragment<DB> for Key<ST, T>
where
    DB: BindSyntax + diesel::sql_types::HasSqlType<ST>,
    T: diesel::serialize::ToSql<ST, DB>,
{
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, DB>,
    ) -> QueryResult<()> {
        out.push_bind_param::<ST, T>(&self.value)?;
        out.push_sql(DB::KEY_AFTER);
        Ok(())
    }
}

/// A statement whose text is the same on every call, kept in the connection's
/// prepared-statement cache (keyed by that text) where Diesel would prepare it afresh:
/// Diesel never caches an UPDATE, an INSERT of a struct, or a statement with an SQL
/// literal, so each call paid a parse and a plan (on SQLite a new compilation, on
/// PostgreSQL a server-side plan). Only for statements whose text does not depend on the
/// values bound: an `IN` list's length, on SQLite and MySQL, would make every length a
/// cache entry of its own. (MySQL's `Fresh` still prepares each statement afresh.)
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))] // MySQL's `Fresh`
pub(crate) struct Cached<Q>(pub(crate) Q);

impl<Q: diesel::query_builder::Query> diesel::query_builder::Query for Cached<Q> {
    type SqlType = Q::SqlType;
}

// Keyed by text, never by type: see `Limited`.
impl<Q> diesel::query_builder::QueryId for Cached<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q, DB> diesel::query_builder::QueryFragment<DB> for Cached<Q>
where
    DB: diesel::backend::Backend,
    Q: diesel::query_builder::QueryFragment<DB>,
{
    fn walk_ast<'b>(&'b self, out: diesel::query_builder::AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.0.walk_ast(out)
    }

    fn is_safe_to_cache_prepared(&self, _: &DB) -> QueryResult<bool> {
        Ok(true)
    }
}

impl<Q, C> diesel::RunQueryDsl<C> for Cached<Q> {}

/// A value bound to a [`Raw`] statement.
#[derive(Debug, Clone)]
pub(crate) enum Bind {
    /// A `BIGINT`.
    Int(i64),
    /// A text.
    Text(String),
}

/// A statement of fixed text with `?` for each value, in the order of `binds`: what
/// `diesel::sql_query` does, but kept prepared (see [`Cached`]). A `sql_query` tells
/// Diesel never to cache it, and on the path of a statement that is only executed Diesel
/// asks the statement itself, whatever a wrapper says. Each `?` becomes the backend's
/// own placeholder (`$1`, … on PostgreSQL). A statement whose binds and `?`s differ in
/// number fails with `QueryBuilderError` before it reaches the database.
#[derive(Debug, Clone)]
pub(crate) struct Raw {
    sql: &'static str,
    binds: Vec<Bind>,
}

impl Raw {
    /// `sql`, with `binds` for its `?`s.
    pub(crate) fn new(sql: &'static str, binds: Vec<Bind>) -> Self {
        Self { sql, binds }
    }
}

impl Raw {
    /// The error of a statement whose `?`s and binds differ in number: never sent.
    fn mismatch(&self) -> diesel::result::Error {
        diesel::result::Error::QueryBuilderError(
            format!(
                "{} values bound to {} placeholders: {}",
                self.binds.len(),
                self.sql.matches('?').count(),
                self.sql
            )
            .into(),
        )
    }
}

impl diesel::query_builder::Query for Raw {
    type SqlType = diesel::sql_types::Untyped;
}

// Keyed by text, never by type: see `Limited`.
impl diesel::query_builder::QueryId for Raw {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<DB> diesel::query_builder::QueryFragment<DB> for Raw
where
    DB: diesel::backend::Backend
        + diesel::sql_types::HasSqlType<diesel::sql_types::BigInt>
        + diesel::sql_types::HasSqlType<diesel::sql_types::Text>,
    i64: diesel::serialize::ToSql<diesel::sql_types::BigInt, DB>,
    String: diesel::serialize::ToSql<diesel::sql_types::Text, DB>,
{
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, DB>,
    ) -> QueryResult<()> {
        let mut parts = self.sql.split('?');
        out.push_sql(parts.next().unwrap_or_default());
        let mut binds = self.binds.iter();
        for part in parts {
            match binds.next() {
                Some(Bind::Int(value)) => {
                    out.push_bind_param::<diesel::sql_types::BigInt, _>(value)?
                }
                Some(Bind::Text(value)) => {
                    out.push_bind_param::<diesel::sql_types::Text, _>(value)?
                }
                None => return Err(self.mismatch()),
            }
            out.push_sql(part);
        }
        if binds.next().is_some() {
            return Err(self.mismatch());
        }
        Ok(())
    }
}

impl<C> diesel::RunQueryDsl<C> for Raw {}

#[cfg(all(test, feature = "sqlite"))]
mod raw_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use diesel::Connection;

    #[derive(Debug, diesel::QueryableByName, PartialEq)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
        #[diesel(sql_type = diesel::sql_types::Text)]
        s: String,
    }

    fn load(raw: Raw) -> QueryResult<Vec<Row>> {
        let mut conn = diesel::SqliteConnection::establish(":memory:").unwrap();
        diesel::RunQueryDsl::load(raw, &mut conn)
    }

    #[test]
    fn binds_fill_the_placeholders_in_order() {
        let raw = Raw::new(
            "SELECT ? + 1 AS n, ? AS s",
            vec![Bind::Int(41), Bind::Text("x".into())],
        );
        assert_eq!(
            load(raw).unwrap(),
            [Row {
                n: 42,
                s: "x".into()
            }]
        );
    }

    #[test]
    fn too_few_or_too_many_binds_fail_before_the_database() {
        for binds in [
            vec![Bind::Int(1)],
            vec![Bind::Int(1), Bind::Int(2), Bind::Int(3)],
        ] {
            match load(Raw::new("SELECT ? AS n, ? AS s", binds)) {
                Err(diesel::result::Error::QueryBuilderError(e)) => {
                    assert!(e.to_string().contains("placeholders"), "{e}")
                }
                other => panic!("expected a query builder error, got {other:?}"),
            }
        }
    }
}
