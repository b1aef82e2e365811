//! Search: a page of a user's messages whose index rows hold the terms.

use diesel::prelude::*;

use super::execution::RunQueryDsl;
use super::transactions::outside;
use super::{Conn, Dialect, H};
use crate::operations::{visible_in_own_conversation, Bind, Body, Raw, MARK_CHUNK};
use crate::schema::direct_messages as dm;
use crate::{Message, MessageId, Result, UserId};

pub(super) async fn search(
    conn: &mut Conn,
    user: UserId,
    terms: crate::search::Terms,
    before: Option<MessageId>,
    limit: Option<u32>,
) -> Result<Vec<Message>> {
    // No cursor and no limit are bound as the widest values: one statement text.
    let before = before.unwrap_or(MessageId::MAX);
    let limit = limit.map_or(i64::MAX, i64::from);
    // Read-only: run again whole when the database was busy.
    let terms = &terms;
    let mut found = outside(conn, |conn| {
        Body::new(async move {
            let ids = match recent_matches(conn, user, terms, before, limit).await? {
                Some(ids) => ids,
                None => {
                    let binds = vec![
                        Bind::Text(H::search_match(terms)),
                        Bind::Int(H::search_below(before)),
                        Bind::Int(limit),
                    ];
                    let hits: Vec<crate::operations::SearchHit> =
                        H::statement(Raw::new(H::SEARCH.select, binds))
                            .load(conn)
                            .await?;
                    hits.into_iter().map(|hit| hit.id).collect()
                }
            };
            let mut found = Vec::with_capacity(ids.len());
            for ids in ids.chunks(MARK_CHUNK) {
                // Visibility again: a delete between the two statements hides it already.
                found.extend(
                    H::statement(
                        dm::table
                            .filter(dm::id.eq_any(ids.to_vec()))
                            .filter(visible_in_own_conversation(user))
                            .select(Message::as_select()),
                    )
                    .load::<Message>(conn)
                    .await?,
                );
            }
            QueryResult::Ok(found)
        })
    })
    .await?;
    found.sort_unstable_by_key(|m| std::cmp::Reverse(m.id));
    Ok(found)
}

/// A page of search results from `user`'s latest index rows alone, when they hold it: a
/// full page, or every row `user` has below `before`. `None` when the full-text index
/// must answer (a page bigger than a quarter of the window, a backend whose index cannot
/// read a user's rows in order, or too few matches among them).
pub(super) async fn recent_matches(
    conn: &mut Conn,
    user: UserId,
    terms: &crate::search::Terms,
    before: MessageId,
    limit: i64,
) -> QueryResult<Option<Vec<MessageId>>> {
    use crate::operations::{SearchRow, RECENT_WINDOW};
    let Some(sql) = H::SEARCH.recent else {
        return Ok(None);
    };
    if limit > RECENT_WINDOW / 4 {
        return Ok(None);
    }
    let binds = vec![
        Bind::Int(user),
        Bind::Int(H::search_below(before)),
        Bind::Int(RECENT_WINDOW),
    ];
    let rows: Vec<SearchRow> = H::statement(Raw::new(sql, binds)).load(conn).await?;
    let page: Vec<MessageId> = rows
        .iter()
        .filter(|row| terms.matches(&row.terms))
        .map(|row| row.id)
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
        .collect();
    let seen_all = (rows.len() as i64) < RECENT_WINDOW;
    Ok((page.len() as i64 == limit || seen_all).then_some(page))
}
