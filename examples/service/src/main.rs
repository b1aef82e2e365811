//! `cargo run -p directmessages-service`: the chat service on http://127.0.0.1:3000, over
//! the SQLite file `chat.db` (or `DATABASE_URL`: a file path, or with `--features
//! postgres` a `postgres://` URL). `ADDR` changes where it listens. `DATABASE_POOLER=transaction`
//! when the URL leads to a pooler in transaction mode without prepared statements
//! (PgBouncer before 1.21).

use directmessages_service::{app, AppState, Db, Pooler};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| "chat.db".to_owned());
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let pooler = match std::env::var("DATABASE_POOLER").as_deref() {
        Ok("transaction") => Pooler::Transaction,
        Ok("") | Ok("none") | Err(_) => Pooler::None,
        Ok(other) => {
            return Err(format!("DATABASE_POOLER: {other:?} is not `transaction` or `none`").into())
        }
    };
    let db = Db::connect_with(&url, pooler).await?;
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!(
        "chat on http://{} (database: {url})",
        listener.local_addr()?
    );
    axum::serve(listener, app(AppState::new(db)))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
