//! SQLite under diesel-async: `SyncConnectionWrapper<SqliteConnection>` runs each operation
//! whole, the blocking flavour's text on the wrapped connection, on one of tokio's blocking
//! threads: one hop per operation rather than one per statement, and the same
//! `BEGIN IMMEDIATE` transactions and busy-timeout waits as the blocking inbox.

use diesel::SqliteConnection;
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;

use crate::execution::blocking::run;
use crate::operations::{
    ConversationFlag, ConversationPage, Marked, MessageRead, Operations, Sent,
};
use crate::{
    ConversationQuery, ConversationSummary, ConversationsQuery, Error, Message, MessageId, Result,
    UserId,
};

/// The async connection of SQLite.
type Conn = SyncConnectionWrapper<SqliteConnection>;

crate::connection::async_inbox_connection!(Conn);

/// Runs `operation` on the wrapped connection on a blocking thread. The operation runs to
/// its end there even if the caller's future is dropped meanwhile: it commits or rolls
/// back as a whole.
async fn on_blocking_thread<T: Send + 'static>(
    conn: &mut Conn,
    operation: impl FnOnce(&mut SqliteConnection) -> Result<T> + Send + 'static,
) -> Result<T> {
    conn.spawn_blocking(move |conn| Ok(operation(conn)))
        .await
        .unwrap_or_else(|e| Err(Error::from(e)))
}

impl Operations for Conn {
    async fn migrate(&mut self) -> Result<()> {
        on_blocking_thread(self, |conn| run(conn.migrate())).await
    }

    async fn is_blocked(&mut self, user: UserId, other: UserId) -> diesel::QueryResult<bool> {
        self.spawn_blocking(move |conn| run(conn.is_blocked(user, other)))
            .await
    }

    async fn send(&mut self, sender: UserId, recipient: UserId, content: &str) -> Result<Sent> {
        let content = content.to_owned();
        on_blocking_thread(
            self,
            move |conn| run(conn.send(sender, recipient, &content)),
        )
        .await
    }

    async fn read(&mut self, id: MessageId, reader: Option<UserId>) -> Result<MessageRead> {
        on_blocking_thread(self, move |conn| run(conn.read(id, reader))).await
    }

    async fn unread_messages(&mut self, user: UserId) -> diesel::QueryResult<Vec<Message>> {
        self.spawn_blocking(move |conn| run(conn.unread_messages(user)))
            .await
    }

    async fn unread_count(&mut self, user: UserId) -> diesel::QueryResult<i64> {
        self.spawn_blocking(move |conn| run(conn.unread_count(user)))
            .await
    }

    async fn partners(&mut self, user: UserId) -> diesel::QueryResult<Vec<UserId>> {
        self.spawn_blocking(move |conn| run(conn.partners(user)))
            .await
    }

    async fn conversation(
        &mut self,
        user: UserId,
        partner: UserId,
        query: ConversationQuery,
    ) -> Result<ConversationPage> {
        on_blocking_thread(self, move |conn| {
            run(conn.conversation(user, partner, query))
        })
        .await
    }

    async fn conversations(
        &mut self,
        user: UserId,
        query: ConversationsQuery,
    ) -> diesel::QueryResult<Vec<ConversationSummary>> {
        self.spawn_blocking(move |conn| run(conn.conversations(user, query)))
            .await
    }

    async fn mark_conversation_read(&mut self, user: UserId, partner: UserId) -> Result<Marked> {
        on_blocking_thread(self, move |conn| {
            run(conn.mark_conversation_read(user, partner))
        })
        .await
    }

    async fn delete(&mut self, user: UserId, id: MessageId) -> Result<()> {
        on_blocking_thread(self, move |conn| run(conn.delete(user, id))).await
    }

    async fn block(&mut self, user: UserId, blocked: UserId) -> Result<()> {
        on_blocking_thread(self, move |conn| run(conn.block(user, blocked))).await
    }

    async fn unblock(&mut self, user: UserId, blocked: UserId) -> Result<()> {
        on_blocking_thread(self, move |conn| run(conn.unblock(user, blocked))).await
    }

    async fn edit_target(
        &mut self,
        editor: UserId,
        id: MessageId,
        window: Option<chrono::Duration>,
    ) -> Result<Message> {
        on_blocking_thread(self, move |conn| run(conn.edit_target(editor, id, window))).await
    }

    async fn edit(&mut self, editor: UserId, id: MessageId, content: &str) -> Result<Sent> {
        let content = content.to_owned();
        on_blocking_thread(self, move |conn| run(conn.edit(editor, id, &content))).await
    }

    async fn unsend(
        &mut self,
        sender: UserId,
        id: MessageId,
        window: Option<chrono::Duration>,
    ) -> Result<Sent> {
        on_blocking_thread(self, move |conn| run(conn.unsend(sender, id, window))).await
    }

    async fn set_flag(
        &mut self,
        user: UserId,
        partner: UserId,
        flag: ConversationFlag,
        on: bool,
    ) -> Result<()> {
        on_blocking_thread(
            self,
            move |conn| run(conn.set_flag(user, partner, flag, on)),
        )
        .await
    }

    async fn search(
        &mut self,
        user: UserId,
        terms: crate::search::Terms,
        before: Option<MessageId>,
        limit: Option<u32>,
    ) -> Result<Vec<Message>> {
        on_blocking_thread(self, move |conn| {
            run(conn.search(user, terms, before, limit))
        })
        .await
    }

    async fn purge(&mut self, user: UserId) -> Result<u64> {
        on_blocking_thread(self, move |conn| run(conn.purge(user))).await
    }

    /// Nothing: a SQLite database has no pooler in front of it.
    fn transaction_pooling(&mut self) -> bool {
        false
    }
}
