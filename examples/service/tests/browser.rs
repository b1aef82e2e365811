//! The chat page in a real headless Chromium, driven over the DevTools protocol: two users
//! in two pages; one sends, the other sees it arrive and the badge change, reads it, and
//! the first sees "seen".
//!
//! Needs Chromium (`apt-get install chromium`; `CHROMIUM` names another binary). Without
//! one the test is skipped with a notice, except under `CI=true`, where it fails.

use std::process::Stdio;
use std::time::{Duration, Instant};

use directmessages_service::{app, AppState, Db};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_tungstenite::tungstenite::Message as Frame;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A connection to the browser's DevTools endpoint.
struct DevTools {
    socket: Socket,
    next_id: u64,
}

impl DevTools {
    /// Sends `method` (to the page of `session`, if any) and waits for its result.
    async fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        match self.try_call(session, method, params).await {
            Ok(result) => result,
            Err(error) => panic!("{method}: {error}"),
        }
    }

    /// [`call`](Self::call), with the browser's error as an `Err`.
    async fn try_call(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<Value, Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut command = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            command["sessionId"] = json!(session);
        }
        self.socket
            .send(Frame::text(command.to_string()))
            .await
            .expect("send to the browser");
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(30), self.socket.next())
                .await
                .expect("the browser answers")
                .expect("the browser is connected")
                .expect("a frame");
            let Frame::Text(text) = frame else { continue };
            let reply: Value = serde_json::from_str(&text).expect("JSON from the browser");
            if reply["id"] == json!(id) {
                return match reply.get("error") {
                    Some(error) => Err(error.clone()),
                    None => Ok(reply["result"].clone()),
                };
            }
        }
    }

    /// Opens `url` in a new page; the page's session.
    async fn open(&mut self, url: &str) -> String {
        let target = self
            .call(None, "Target.createTarget", json!({"url": url}))
            .await;
        let attached = self
            .call(
                None,
                "Target.attachToTarget",
                json!({"targetId": target["targetId"], "flatten": true}),
            )
            .await;
        attached["sessionId"]
            .as_str()
            .expect("a session")
            .to_owned()
    }

    /// The value of `expression` in the page (promises awaited).
    async fn eval(&mut self, session: &str, expression: &str) -> Value {
        let result = self
            .call(
                Some(session),
                "Runtime.evaluate",
                json!({"expression": expression, "awaitPromise": true, "returnByValue": true}),
            )
            .await;
        assert!(
            result.get("exceptionDetails").is_none(),
            "{expression}: {result}"
        );
        result["result"]["value"].clone()
    }

    /// The value of `expression` in the page, or `None` while it throws or the page is
    /// still loading.
    async fn try_eval(&mut self, session: &str, expression: &str) -> Option<Value> {
        let params = json!({"expression": expression, "awaitPromise": true, "returnByValue": true});
        let result = self
            .try_call(Some(session), "Runtime.evaluate", params)
            .await
            .ok()?;
        if result.get("exceptionDetails").is_some() {
            return None;
        }
        Some(result["result"]["value"].clone())
    }

    /// Waits until `condition` is true in the page (a page still loading, or a condition
    /// that throws, is not there yet).
    async fn wait_for(&mut self, session: &str, what: &str, condition: &str) {
        let start = Instant::now();
        loop {
            if self.try_eval(session, condition).await == Some(json!(true)) {
                return;
            }
            if start.elapsed() > Duration::from_secs(15) {
                let page = self
                    .try_eval(session, "document.body ? document.body.innerText : ''")
                    .await;
                panic!("waited 15 s for {what}; the page shows:\n{page:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn chromium() -> Option<String> {
    let candidates = std::env::var("CHROMIUM")
        .map(|c| vec![c])
        .unwrap_or_else(|_| {
            ["chromium", "chromium-browser", "google-chrome"]
                .map(str::to_owned)
                .to_vec()
        });
    candidates.into_iter().find(|c| {
        std::process::Command::new(c)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_users_chat_live_in_two_pages() {
    let Some(chromium) = chromium() else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("CI=true but no Chromium: apt-get install chromium");
        }
        eprintln!("note: browser test skipped: no chromium (apt-get install chromium)");
        return;
    };
    let dir = std::env::temp_dir().join(format!("dm-service-browser-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("chat.db");
    let state = AppState::new(Db::connect(&db.to_string_lossy()).await.unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app(state)).await });

    let mut browser = tokio::process::Command::new(&chromium)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--remote-debugging-port=0",
            &format!("--user-data-dir={}", dir.join("profile").display()),
            "about:blank",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start chromium");
    let mut lines = BufReader::new(browser.stderr.take().expect("stderr")).lines();
    let endpoint = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.expect("chromium's output") {
            if let Some(url) = line.strip_prefix("DevTools listening on ") {
                return url.trim().to_owned();
            }
        }
        panic!("chromium exited without a DevTools endpoint");
    })
    .await
    .expect("chromium starts within 30 s");
    // Keep draining its output so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let (socket, _) = tokio_tungstenite::connect_async(endpoint.as_str())
        .await
        .expect("DevTools websocket");
    let mut devtools = DevTools { socket, next_id: 0 };

    let alice = devtools.open(&format!("http://{addr}/?user=1")).await;
    let bob = devtools.open(&format!("http://{addr}/?user=2")).await;
    for page in [&alice, &bob] {
        devtools
            .wait_for(
                page,
                "the live stream",
                "typeof stream !== 'undefined' && stream !== null && stream.readyState === 1",
            )
            .await;
    }

    // Alice opens the conversation with Bob and sends.
    devtools
        .eval(
            &alice,
            "document.getElementById('partner-input').value = '2';
             document.getElementById('open').click(); true",
        )
        .await;
    devtools
        .wait_for(&alice, "the conversation to open", "partner === 2")
        .await;
    devtools
        .eval(
            &alice,
            "document.getElementById('text').value = 'Lunch at noon?';
             document.getElementById('send').click(); true",
        )
        .await;

    // Bob's page, untouched, shows it: the badge and the inbox row.
    devtools
        .wait_for(
            &bob,
            "the unread badge",
            "document.getElementById('badge').textContent === '1'",
        )
        .await;
    devtools
        .wait_for(
            &bob,
            "the inbox row",
            "(document.querySelector('#inbox li[data-partner=\"1\"] .count') || {}).textContent === '1'
             && document.querySelector('#inbox li[data-partner=\"1\"] .preview').textContent === 'Lunch at noon?'",
        )
        .await;
    // Alice sees her message, not yet seen.
    devtools
        .wait_for(
            &alice,
            "the sent message",
            "[...document.querySelectorAll('.message.mine')].some(m => m.textContent === 'Lunch at noon?')",
        )
        .await;
    assert_eq!(
        devtools
            .eval(&alice, "document.querySelectorAll('.seen').length")
            .await,
        json!(0)
    );

    // Bob opens it: read.
    devtools
        .eval(
            &bob,
            "document.querySelector('#inbox li[data-partner=\"1\"]').click(); true",
        )
        .await;
    devtools
        .wait_for(
            &bob,
            "the message in the conversation",
            "[...document.querySelectorAll('.message')].some(m => m.textContent === 'Lunch at noon?')",
        )
        .await;
    devtools
        .wait_for(
            &bob,
            "the badge to clear",
            "document.getElementById('badge').textContent === '0'",
        )
        .await;

    // Alice's page learns it was read.
    devtools
        .wait_for(
            &alice,
            "\"seen\"",
            "(document.querySelector('.message.mine .seen') || {}).textContent === 'seen'",
        )
        .await;

    let _ = browser.kill().await;
    server.abort();
    let _ = std::fs::remove_dir_all(&dir);
}
