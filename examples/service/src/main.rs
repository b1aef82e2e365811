//! `cargo run -p directmessages-service`: the chat service on http://127.0.0.1:3000, over
//! the SQLite file `chat.db` (or `DATABASE_URL`: a file path, or with `--features
//! postgres` a `postgres://` URL). `ADDR` changes where it listens.

use directmessages_service::{app, AppState, Db};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| "chat.db".to_owned());
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let db = Db::connect(&url).await?;
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
