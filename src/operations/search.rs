//! The statements of a backend's search index, as the shared search text runs them.

use crate::MessageId;

/// The statements of one backend's search index, with `?` for each value (see [`Raw`]).
/// A side's row is found by its key, which the dialect binds (`search_key`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SearchSql {
    /// Both sides' rows of a new message: each side's key, then its terms.
    pub(crate) insert: &'static str,
    /// A side's row, given new terms, then its key.
    pub(crate) update: &'static str,
    /// A side's row, by its key.
    pub(crate) delete: &'static str,
    /// The ids of the rows matching the bound query, newest first, below the bound key,
    /// at most the bound count.
    pub(crate) select: &'static str,
    /// The bound owner's latest rows (id and terms) below the bound key, at most the bound
    /// count; where the index can read them in order (not SQLite's FTS5).
    pub(crate) recent: Option<&'static str>,
}

/// How many of a user's latest index rows a search for a page reads before it asks the
/// full-text index: a common word finds its page among them, where the full-text index
/// would hand over every match of the user's (thousands) to be sorted.
pub(crate) const RECENT_WINDOW: i64 = 200;

/// One index row as a search's first look reads it.
#[derive(Debug, diesel::QueryableByName)]
pub(crate) struct SearchRow {
    /// The message.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub(crate) id: MessageId,
    /// Its terms, separated by spaces.
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub(crate) terms: String,
}

/// One message id found by a search statement.
#[derive(Debug, diesel::QueryableByName)]
pub(crate) struct SearchHit {
    /// The message.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub(crate) id: MessageId,
}
