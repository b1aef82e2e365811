//! PostgreSQL's send to an existing conversation in one statement: data-modifying CTEs
//! lock the conversation, check the block, insert and update both sides' rows.

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Bool, Nullable, Text};
use diesel::QueryResult;

use crate::schema::sql_types::UtcDateTime;
use crate::schema::UtcTimestamp;
use crate::UserId;

/// The send of `content` from `sender` to `recipient` stamped no earlier than `now`, as
/// one statement; it yields one row `(blocked, id, sent_at, muted)` when the conversation
/// row exists (the last three `NULL` when the recipient blocks the sender; `muted`: the
/// recipient muted the conversation), none when not.
///
/// The steps and their order are those of the general send (`src/queries/send.rs`): the
/// `(lo, hi)` row is locked before the insert takes an id, and `sent_at` is the later of
/// `now` and the conversation's latest, read under that lock. A static query id keeps it
/// in Diesel's statement cache, prepared once per connection.
#[derive(Debug, Clone)]
pub(crate) struct SendToConversation<'a> {
    sender: UserId,
    recipient: UserId,
    lo: UserId,
    hi: UserId,
    content: &'a str,
    now: UtcTimestamp,
    /// The search terms of the sender's side, then the recipient's.
    terms: [String; 2],
}

impl<'a> SendToConversation<'a> {
    /// The statement for this send.
    pub(crate) fn new(
        sender: UserId,
        recipient: UserId,
        content: &'a str,
        now: UtcTimestamp,
    ) -> Self {
        let (lo, hi) = crate::operations::conversation_key(sender, recipient);
        Self {
            sender,
            recipient,
            lo,
            hi,
            content,
            now,
            terms: [
                crate::search::document(sender, recipient, content),
                crate::search::document(recipient, sender, content),
            ],
        }
    }
}

impl Query for SendToConversation<'_> {
    type SqlType = (
        Bool,
        Nullable<BigInt>,
        Nullable<UtcDateTime>,
        Nullable<Bool>,
    );
}

impl QueryId for SendToConversation<'_> {
    type QueryId = SendToConversation<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl QueryFragment<Pg> for SendToConversation<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(
            "WITH c AS (SELECT last_sent_at, EXISTS (SELECT 1 FROM direct_message_blocks \
             WHERE blocker_id = ",
        );
        out.push_bind_param::<BigInt, _>(&self.recipient)?;
        out.push_sql(" AND blocked_id = ");
        out.push_bind_param::<BigInt, _>(&self.sender)?;
        out.push_sql(") AS blocked FROM direct_message_conversations WHERE owner_id = ");
        out.push_bind_param::<BigInt, _>(&self.lo)?;
        out.push_sql(" AND partner_id = ");
        out.push_bind_param::<BigInt, _>(&self.hi)?;
        out.push_sql(
            " FOR UPDATE), m AS (INSERT INTO direct_messages \
             (sender_id, recipient_id, content, sent_at) SELECT ",
        );
        out.push_bind_param::<BigInt, _>(&self.sender)?;
        out.push_sql(", ");
        out.push_bind_param::<BigInt, _>(&self.recipient)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(self.content)?;
        out.push_sql(", GREATEST(");
        out.push_bind_param::<UtcDateTime, _>(&self.now)?;
        out.push_sql(
            ", c.last_sent_at) FROM c WHERE NOT c.blocked RETURNING id, sent_at), \
             s AS (INSERT INTO direct_message_search (message_id, owner_id, terms) \
             SELECT m.id, v.owner_id, array_to_tsvector(string_to_array(v.terms, ' ')) \
             FROM m, (VALUES (",
        );
        out.push_bind_param::<BigInt, _>(&self.sender)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&self.terms[0])?;
        out.push_sql("), (");
        out.push_bind_param::<BigInt, _>(&self.recipient)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&self.terms[1])?;
        out.push_sql(
            ")) AS v (owner_id, terms)), \
             u AS (UPDATE direct_message_conversations SET last_message_id = m.id, \
             last_sent_at = m.sent_at, archived = false, unread_count = unread_count \
             + CASE WHEN owner_id = ",
        );
        out.push_bind_param::<BigInt, _>(&self.recipient)?;
        out.push_sql(" THEN 1 ELSE 0 END FROM m WHERE owner_id IN (");
        out.push_bind_param::<BigInt, _>(&self.sender)?;
        out.push_sql(", ");
        out.push_bind_param::<BigInt, _>(&self.recipient)?;
        out.push_sql(") AND partner_id IN (");
        out.push_bind_param::<BigInt, _>(&self.sender)?;
        out.push_sql(", ");
        out.push_bind_param::<BigInt, _>(&self.recipient)?;
        out.push_sql(
            ") RETURNING owner_id, muted) SELECT c.blocked, m.id, m.sent_at, \
             (SELECT u.muted FROM u WHERE u.owner_id = ",
        );
        out.push_bind_param::<BigInt, _>(&self.recipient)?;
        out.push_sql(") FROM c LEFT JOIN m ON true");
        Ok(())
    }
}

impl<C> diesel::RunQueryDsl<C> for SendToConversation<'_> {}
