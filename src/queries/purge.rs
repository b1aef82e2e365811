//! Purging every row that mentions a user.

use diesel::prelude::*;

use super::execution::RunQueryDsl;
use super::{Conn, Dialect, H};
use crate::operations::{key, Body};
use crate::schema::direct_message_blocks as blocks;
use crate::schema::direct_message_conversations as conv;
use crate::schema::direct_messages as dm;
use crate::{Result, UserId};

pub(super) async fn purge(conn: &mut Conn, user: UserId) -> Result<u64> {
    H::write_transaction(conn, |conn| {
        Body::new(async move {
            let messages = H::statement(diesel::delete(
                dm::table.filter(dm::user_lo.eq(key(user)).or(dm::user_hi.eq(key(user)))),
            ))
            .execute(conn)
            .await?;
            H::statement(diesel::delete(
                conv::table.filter(
                    conv::owner_id
                        .eq(key(user))
                        .or(conv::partner_id.eq(key(user))),
                ),
            ))
            .execute(conn)
            .await?;
            H::statement(diesel::delete(
                blocks::table.filter(
                    blocks::blocker_id
                        .eq(key(user))
                        .or(blocks::blocked_id.eq(key(user))),
                ),
            ))
            .execute(conn)
            .await?;
            Ok(u64::try_from(messages).unwrap_or(u64::MAX))
        })
    })
    .await
}
