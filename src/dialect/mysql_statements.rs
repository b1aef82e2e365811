//! MySQL's statement forms that do not depend on the connection type, compiled once: the
//! server functions the dialect calls, and [`Fresh`], how every statement is prepared.

use diesel::mysql::Mysql as Backend;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Integer, Text};
use diesel::QueryResult;

diesel::define_sql_function! {
    /// The id the last INSERT on this connection generated.
    fn last_insert_id() -> diesel::sql_types::Unsigned<diesel::sql_types::BigInt>;
}

diesel::define_sql_function! {
    /// Takes a named lock of the server for this session: 1, or 0 after `timeout` seconds.
    fn get_lock(name: Text, timeout: Integer) -> Nullable<Integer>;
}

diesel::define_sql_function! {
    /// Releases a lock taken with `get_lock`.
    fn release_lock(name: Text) -> Nullable<Integer>;
}

/// A statement the connection must not keep in its prepared-statement cache.
///
/// When a statement is interrupted (`max_statement_time`, `KILL QUERY`, a deadlock
/// detected after the server began its result set), the MySQL/MariaDB C client leaves that
/// prepared statement in a state where its next execution waits for a reply that never
/// comes: a cached statement would hang the connection for good. A statement prepared
/// afresh and closed after use is unaffected.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fresh<Q>(pub(crate) Q);

impl<Q: Query> Query for Fresh<Q> {
    type SqlType = Q::SqlType;
}

impl<Q> QueryId for Fresh<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: QueryFragment<Backend>> QueryFragment<Backend> for Fresh<Q> {
    fn walk_ast<'b>(&'b self, mut pass: AstPass<'_, 'b, Backend>) -> QueryResult<()> {
        pass.unsafe_to_cache_prepared();
        self.0.walk_ast(pass)
    }
}

impl<Q, C> diesel::RunQueryDsl<C> for Fresh<Q> {}
