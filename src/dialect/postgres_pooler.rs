//! PostgreSQL behind a pooler in transaction mode: async connections that can be opened
//! and kept in a pool there (diesel-async's own set-up and health check prepare
//! statements outside a transaction, which such a pooler cannot keep on one server).

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use diesel::connection::CacheSize;
use diesel::ConnectionError;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};

/// `AsyncPgConnection`s for a pooler in transaction mode that keeps no prepared statements
/// (PgBouncer before 1.21, or later without `max_prepared_statements`), to go with
/// [`InboxBuilder::transaction_pooling`](crate::InboxBuilder::transaction_pooling).
///
/// diesel-async names every statement it prepares and executes it in a second exchange
/// with the server. Outside a transaction, the pooler may send that second exchange to
/// another server connection (`prepared statement "s3" does not exist`), or meet a name
/// another client left there (`… already exists`). Its `establish` runs two such
/// statements (`SET TIME ZONE`, `SET CLIENT_ENCODING`), and a pool's default health check
/// one more. [`establish`](Self::establish) runs the set-up inside a transaction and turns
/// the statement cache off; [`manager_config`](Self::manager_config) uses it, and checks a
/// pooled connection with a simple-protocol `SELECT 1`, for deadpool, bb8 and mobc.
///
/// ```no_run
/// # async fn doc() -> Result<(), Box<dyn std::error::Error>> {
/// use diesel_async::pooled_connection::deadpool::Pool;
/// use directmessages::{Inbox, TransactionPooler};
///
/// // PgBouncer in transaction mode on port 6432.
/// let manager = TransactionPooler::manager("postgres://app@127.0.0.1:6432/app");
/// let pool = Pool::builder(manager).max_size(16).build()?;
/// let inbox = Inbox::builder().transaction_pooling(true).build_async();
/// let mut conn = pool.get().await?;
/// directmessages::run_migrations_async(&mut conn).await?;
/// inbox.send_message(&mut conn, 1, 2, "through the pooler").await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct TransactionPooler;

impl TransactionPooler {
    /// Opens a connection whose set-up statements run inside a transaction (so the pooler
    /// keeps them on one server connection), with its statement cache off.
    pub async fn establish(url: &str) -> Result<AsyncPgConnection, ConnectionError> {
        let failed = |e: tokio_postgres::Error| ConnectionError::BadConnection(e.to_string());
        let (client, mut connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .map_err(failed)?;
        // The client's requests go through `connection`, which diesel-async drives only
        // once it has it: drive it here until the `BEGIN` is answered.
        {
            let mut begin = std::pin::pin!(client.batch_execute("BEGIN"));
            std::future::poll_fn(|cx| {
                if let Poll::Ready(result) = begin.as_mut().poll(cx) {
                    return Poll::Ready(result.map_err(failed));
                }
                match Pin::new(&mut connection).poll(cx) {
                    Poll::Ready(Ok(())) => Poll::Ready(Err(ConnectionError::BadConnection(
                        "the server closed the connection".to_owned(),
                    ))),
                    Poll::Ready(Err(e)) => Poll::Ready(Err(failed(e))),
                    Poll::Pending => Poll::Pending,
                }
            })
            .await?;
        }
        let mut conn =
            AsyncPgConnection::try_from_client_and_connection(client, connection).await?;
        conn.batch_execute("COMMIT")
            .await
            .map_err(ConnectionError::CouldntSetupConfiguration)?;
        conn.set_prepared_statement_cache_size(CacheSize::Disabled);
        Ok(conn)
    }

    /// A configuration for diesel-async's connection manager: connections opened by
    /// [`establish`](Self::establish), and checked before reuse by a `SELECT 1` sent as
    /// one simple query.
    pub fn manager_config() -> ManagerConfig<AsyncPgConnection> {
        let mut config = ManagerConfig::default();
        config.custom_setup = Box::new(|url| Box::pin(Self::establish(url)));
        config.recycling_method = RecyclingMethod::CustomFunction(Box::new(|conn| {
            Box::pin(async move { conn.batch_execute("SELECT 1").await })
        }));
        config
    }

    /// The connection manager of deadpool, bb8 and mobc pools for `url`, with
    /// [`manager_config`](Self::manager_config).
    pub fn manager(url: impl Into<String>) -> AsyncDieselConnectionManager<AsyncPgConnection> {
        AsyncDieselConnectionManager::new_with_config(url, Self::manager_config())
    }
}
