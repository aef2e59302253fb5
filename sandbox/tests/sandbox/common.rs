use std::{
    collections::VecDeque,
    net::TcpListener as StdListener,
    sync::{Arc, Mutex},
    time::Duration,
};

use poem::{
    Body, EndpointExt, Request, Response, Route, Server, handler,
    http::{HeaderMap, Method, StatusCode},
    listener::TcpListener,
    web::Data,
};
use serde_json::Value;
use tokio::sync::mpsc;
use ultra_sandbox::SandboxConfig;

/// Long enough for anything the sandbox does under the test configuration.
const PATIENCE: Duration = Duration::from_secs(15);

pub fn config() -> SandboxConfig {
    SandboxConfig {
        settle_delay: Duration::from_millis(200),
        stall: Duration::from_secs(1),
        ..SandboxConfig::default()
    }
}

pub struct Sandbox {
    pub base: String,
    pub http: reqwest::Client,
}

impl Sandbox {
    pub async fn start(config: SandboxConfig) -> Self {
        let addr = format!("127.0.0.1:{}", free_port());
        let served = addr.clone();
        tokio::spawn(async move { ultra_sandbox::serve(&served, config, std::future::pending()).await });
        let sandbox = Self { base: format!("http://{addr}"), http: reqwest::Client::new() };
        wait_until_up(&sandbox.http, &format!("{}/healthz", sandbox.base)).await;
        sandbox
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The sandbox's record of the collection named `reference`.
    pub async fn recorded(&self, reference: &str) -> Option<Value> {
        let url = self.url(&format!("/_sandbox/transactions?reference={reference}"));
        let answer = self.http.get(url).send().await.unwrap();
        let list: Vec<Value> = answer.json().await.unwrap();
        list.into_iter().next()
    }

    /// Polls `check` until it yields a value, failing the test after a generous deadline.
    pub async fn eventually<T, F: Future<Output = Option<T>>>(&self, mut check: impl FnMut() -> F) -> T {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if let Some(found) = check().await {
                return found;
            }
            assert!(tokio::time::Instant::now() < deadline, "condition never held");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A callback as the merchant received it.
#[derive(Debug)]
pub struct Received {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Value,
}

/// The merchant's callback endpoint: records every request and answers with the scripted
/// statuses, then 200.
pub struct Inbox {
    pub base: String,
    script: Arc<Script>,
    received: mpsc::UnboundedReceiver<Received>,
}

struct Script {
    sender: mpsc::UnboundedSender<Received>,
    statuses: Mutex<VecDeque<StatusCode>>,
}

#[handler]
async fn record(req: &Request, body: Body, Data(script): Data<&Arc<Script>>) -> Response {
    let body = serde_json::from_slice(&body.into_vec().await.unwrap_or_default()).unwrap_or(Value::Null);
    let received = Received {
        method: req.method().clone(),
        path: req.uri().path().to_owned(),
        headers: req.headers().clone(),
        body,
    };
    let _ = script.sender.send(received);
    let status = script.statuses.lock().unwrap().pop_front().unwrap_or(StatusCode::OK);
    Response::builder().status(status).finish()
}

impl Inbox {
    pub async fn start() -> Self {
        let (sender, received) = mpsc::unbounded_channel();
        let script = Arc::new(Script { sender, statuses: Mutex::default() });
        let addr = format!("127.0.0.1:{}", free_port());
        let app = Route::new().at("/*path", record).data(Arc::clone(&script));
        let listener = TcpListener::bind(addr.clone());
        tokio::spawn(async move { Server::new(listener).run(app).await });
        let mut inbox = Self { base: format!("http://{addr}"), script, received };
        wait_until_up(&reqwest::Client::new(), &inbox.url("/ping")).await;
        while inbox.received.try_recv().is_ok() {}
        inbox
    }

    /// Answers the next callbacks with `statuses`, in order, before going back to 200.
    pub fn answer_next_with(&self, statuses: &[StatusCode]) {
        self.script.statuses.lock().unwrap().extend(statuses);
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn next(&mut self) -> Received {
        tokio::time::timeout(PATIENCE, self.received.recv())
            .await
            .expect("no callback arrived")
            .expect("the inbox stopped")
    }

    /// Nothing arrived within `grace`. A late callback could slip past this, but a passing
    /// test never depends on timing.
    pub async fn stays_empty(&mut self, grace: Duration) {
        if let Ok(Some(received)) = tokio::time::timeout(grace, self.received.recv()).await {
            panic!("unexpected callback: {received:?}");
        }
    }
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn wait_until_up(http: &reqwest::Client, url: &str) {
    for _ in 0..200 {
        if http.get(url).send().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{url} never came up");
}
