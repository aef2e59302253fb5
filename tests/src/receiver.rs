//! A webhook receiver on 127.0.0.1: a poem server that records every request it is sent, as
//! it arrived, and answers by a script, so tests see deliveries the way a merchant's server does.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use poem::{
    EndpointExt, Request, Response, Route, Server,
    http::StatusCode,
    listener::{Acceptor, Listener, TcpListener},
    post,
    web::Data,
};
use serde_json::Value;
use tokio::task::JoinHandle;

/// How the receiver answers. Scripts that count requests count every request the receiver
/// has had, whatever it was about.
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// 200 at once.
    Succeed,
    /// 500 to the first `n` requests, then 200.
    FailFirst(usize),
    /// 500, always.
    Fail,
    /// 200 after this long.
    Slow(Duration),
    /// 503 with `Retry-After: seconds` to the first `times` requests, then 200.
    Busy { times: usize, seconds: u64 },
    /// 307 to this URL, always.
    Redirect(String),
}

/// One request as the receiver got it.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: String,
    pub path: String,
    /// Names in lower case, in the order sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// When the whole request had arrived, before any scripted delay.
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The `webhook-id` header, which every delivery carries.
    pub fn webhook_id(&self) -> &str {
        self.header("webhook-id").unwrap_or_else(|| panic!("no webhook-id header: {:?}", self.headers))
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|err| panic!("body is not JSON ({err}): {}", String::from_utf8_lossy(&self.body)))
    }
}

struct State {
    behaviour: Behaviour,
    received: Vec<Received>,
    /// Requests received and not yet answered, now and at most.
    in_flight: usize,
    peak_in_flight: usize,
}

pub struct Receiver {
    url: String,
    state: Arc<Mutex<State>>,
    server: JoinHandle<()>,
}

impl Receiver {
    pub async fn start(behaviour: Behaviour) -> Self {
        let acceptor = TcpListener::bind("127.0.0.1:0").into_acceptor().await.expect("bind the receiver");
        let addr = acceptor.local_addr()[0].as_socket_addr().copied().expect("a TCP address");
        let url = format!("http://{addr}/hooks");
        let state =
            Arc::new(Mutex::new(State { behaviour, received: Vec::new(), in_flight: 0, peak_in_flight: 0 }));
        let app = Route::new().at("/hooks", post(receive)).data(state.clone());
        let server = tokio::spawn(async move {
            let _ = Server::new_with_acceptor(acceptor).run(app).await;
        });
        Self { url, state, server }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Changes how the following requests are answered.
    pub fn set_behaviour(&self, behaviour: Behaviour) {
        self.state.lock().expect("receiver state").behaviour = behaviour;
    }

    pub fn requests(&self) -> Vec<Received> {
        self.state.lock().expect("receiver state").received.clone()
    }

    pub fn count(&self) -> usize {
        self.state.lock().expect("receiver state").received.len()
    }

    /// The most requests the receiver has had waiting for their answers at once.
    pub fn peak_in_flight(&self) -> usize {
        self.state.lock().expect("receiver state").peak_in_flight
    }

    /// Waits until at least `n` requests have arrived and returns them all.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let received = self.requests();
            if received.len() >= n {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "{} received {} requests in {timeout:?}, expected {n}",
                self.url,
                received.len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Records the request, then answers as the current behaviour says.
#[poem::handler]
async fn receive(request: &Request, body: Vec<u8>, state: Data<&Arc<Mutex<State>>>) -> Response {
    let received = Received {
        method: request.method().to_string(),
        path: request.uri().path().to_owned(),
        headers: request
            .headers()
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), value.to_str().unwrap_or_default().to_owned()))
            .collect(),
        body,
        at: Instant::now(),
    };
    let (behaviour, nth) = {
        let mut state = state.lock().expect("receiver state");
        state.received.push(received);
        state.in_flight += 1;
        state.peak_in_flight = state.peak_in_flight.max(state.in_flight);
        (state.behaviour.clone(), state.received.len())
    };
    let response = match behaviour {
        Behaviour::Succeed => ok(),
        Behaviour::FailFirst(n) if nth <= n => failure(nth),
        Behaviour::FailFirst(_) => ok(),
        Behaviour::Fail => failure(nth),
        Behaviour::Slow(delay) => {
            tokio::time::sleep(delay).await;
            ok()
        }
        Behaviour::Busy { times, seconds } if nth <= times => Response::builder()
            .status(StatusCode::SERVICE_UNAVAILABLE)
            .header("retry-after", seconds.to_string())
            .body("busy"),
        Behaviour::Busy { .. } => ok(),
        Behaviour::Redirect(location) => Response::builder()
            .status(StatusCode::TEMPORARY_REDIRECT)
            .header("location", location)
            .body("moved"),
    };
    state.lock().expect("receiver state").in_flight -= 1;
    response
}

fn ok() -> Response {
    Response::builder().status(StatusCode::OK).body("ok")
}

fn failure(nth: usize) -> Response {
    Response::builder().status(StatusCode::INTERNAL_SERVER_ERROR).body(format!("receiver failure {nth}"))
}
