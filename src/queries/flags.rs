//! Per-side flags (archive, mute) and blocks.

use diesel::prelude::*;

use super::execution::RunQueryDsl;
use super::send::insert_conversation_rows;
use super::transactions::outside;
use super::{Conn, Dialect, H};
use crate::operations::{conversation_key, Body, ConversationFlag};
use crate::schema::direct_message_blocks as blocks;
use crate::schema::direct_message_conversations as conv;
use crate::schema::UtcTimestamp;
use crate::{Error, Result, UserId};

pub(super) async fn is_blocked(conn: &mut Conn, user: UserId, other: UserId) -> QueryResult<bool> {
    outside(conn, |conn| {
        Body::new(async move {
            H::statement(diesel::select(diesel::dsl::exists(
                blocks::table.find((user, other)),
            )))
            .get_result(conn)
            .await
        })
    })
    .await
}

pub(super) async fn block(conn: &mut Conn, user: UserId, blocked: UserId) -> Result<()> {
    if user == blocked {
        return Err(Error::SelfBlock { user });
    }
    outside(conn, |conn| {
        Body::new(async move {
            H::statement(
                diesel::insert_into(blocks::table)
                    .values((
                        blocks::blocker_id.eq(user),
                        blocks::blocked_id.eq(blocked),
                        blocks::created_at.eq(UtcTimestamp(crate::timestamp::now())),
                    ))
                    .on_conflict_do_nothing(),
            )
            .execute(conn)
            .await
        })
    })
    .await?;
    Ok(())
}

pub(super) async fn unblock(conn: &mut Conn, user: UserId, blocked: UserId) -> Result<()> {
    outside(conn, |conn| {
        Body::new(async move {
            H::statement(diesel::delete(blocks::table.find((user, blocked))))
                .execute(conn)
                .await
        })
    })
    .await?;
    Ok(())
}

pub(super) async fn set_flag(
    conn: &mut Conn,
    user: UserId,
    partner: UserId,
    flag: ConversationFlag,
    on: bool,
) -> Result<()> {
    if user == partner {
        return Ok(());
    }
    let (lo, hi) = conversation_key(user, partner);
    H::write_transaction(conn, |conn| {
        Body::new(async move {
            // Before the first message there are no rows yet: make both, as a send
            // would, so the flag is there when the conversation is.
            if set_own_flag(conn, user, partner, flag, on).await? == 0 {
                insert_conversation_rows(conn, lo, hi).await?;
                set_own_flag(conn, user, partner, flag, on).await?;
            }
            Ok(())
        })
    })
    .await
}

/// Sets `flag` on `user`'s row of the conversation with `partner`; how many rows it
/// changed (0 before the conversation has rows).
pub(super) async fn set_own_flag(
    conn: &mut Conn,
    user: UserId,
    partner: UserId,
    flag: ConversationFlag,
    on: bool,
) -> QueryResult<usize> {
    let own = conv::table.find((user, partner));
    match flag {
        ConversationFlag::Archived => {
            H::statement(diesel::update(own).set(conv::archived.eq(on)))
                .execute(conn)
                .await
        }
        ConversationFlag::Muted => {
            H::statement(diesel::update(own).set(conv::muted.eq(on)))
                .execute(conn)
                .await
        }
    }
}
