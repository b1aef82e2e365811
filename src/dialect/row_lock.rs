//! The row lock of the backends with `SELECT … FOR UPDATE` (PostgreSQL and MySQL), mounted
//! by those two dialects next to the shared text.

use diesel::prelude::*;

use super::execution::RunQueryDsl;
use super::queries::Dialect;
use super::{Conn, Hooks};
use crate::operations::{conversation_to_lock, LockedConversation};
use crate::UserId;

/// Locks the `(lo, hi)` row of a conversation, by its primary key, until the transaction
/// ends, and reads it (with whether `blocker` blocks `blocked`); `None` when it does not
/// exist yet.
pub(super) async fn lock_conversation(
    conn: &mut Conn,
    lo: UserId,
    hi: UserId,
    blocker: UserId,
    blocked: UserId,
) -> QueryResult<Option<LockedConversation>> {
    Hooks::statement(conversation_to_lock(lo, hi, blocker, blocked).for_update())
        .get_result(conn)
        .await
        .optional()
}
