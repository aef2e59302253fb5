//! Webhook delivery end to end: events recorded by the platform reach real HTTP receivers
//! through `ultra scheduler` and `ultra worker`, signed, retried, dead-lettered, replayed, kept
//! apart per endpoint and resent after a worker dies.

use std::{
    collections::{BTreeSet, HashMap},
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use reqwest::{Method, StatusCode};
use sea_orm::DatabaseConnection;
use serde_json::{Value, json};
use sha2::Sha256;
use ultra_domain::{
    events::{self, NewEvent},
    runtime_config::RuntimeConfig,
};
use ultra_tests::{
    MERCHANT_EMAIL, MERCHANT_PASSWORD, OwnRedis, Process, TestApp,
    receiver::{Behaviour, Received, Receiver},
    redis_url, start_scheduler, start_worker,
};

/// A Standard Webhooks secret: `whsec_` and the base64 of the key bytes.
const WHSEC_SECRET: &str = "whsec_dWx0cmEtd2ViaG9vay10ZXN0LWtleS0zMmJ5dGVzIQ==";
const PLAIN_SECRET: &str = "a plain passphrase of 32 chars!!";

/// An API, a worker and a scheduler that looks for due deliveries every 100 ms, with the
/// merchant's and the admin's tokens.
struct World {
    app: TestApp,
    db: DatabaseConnection,
    worker: Process,
    _scheduler: Process,
    merchant: String,
    admin: String,
}

impl World {
    async fn start(webhooks: Value) -> Self {
        Self::start_on(webhooks, &redis_url()).await
    }

    /// Runs the worker and the scheduler on the Redis at `redis`.
    async fn start_on(webhooks: Value, redis: &str) -> Self {
        let app = TestApp::spawn().await;
        let db = app.db.connect().await;
        RuntimeConfig::set(&db, "webhooks", webhooks, None).await.unwrap();
        let configured = Instant::now();
        let worker = start_worker(&app.db, redis, &app.redis_prefix, &[]).await;
        let scheduler = start_scheduler(
            &app.db,
            redis,
            &app.redis_prefix,
            &[("ULTRA_WEBHOOK_DISPATCH_INTERVAL_MS", "100")],
        )
        .await;
        let merchant = app.login(MERCHANT_EMAIL, MERCHANT_PASSWORD).await;
        let admin = app.admin_token().await;
        // The API caches runtime config for two seconds.
        tokio::time::sleep(Duration::from_millis(2100).saturating_sub(configured.elapsed())).await;
        Self { app, db, worker, _scheduler: scheduler, merchant, admin }
    }

    async fn merchant_id(&self) -> String {
        ultra_domain::users::find_by_email(&self.db, MERCHANT_EMAIL).await.unwrap().unwrap().id
    }

    async fn create_endpoint(&self, url: &str, secret: &str, events: &[&str], active: bool) -> String {
        let body = json!({ "url": url, "secret": secret, "events": events, "isActive": active });
        let (status, body) =
            call(&self.app, Method::POST, "/webhooks/endpoints", &self.merchant, Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["data"]["id"].as_str().unwrap().to_owned()
    }

    /// Records events the way the platform does, one transaction each, and returns their ids.
    async fn record(&self, event_type: &str, count: usize) -> Vec<String> {
        let merchant_id = self.merchant_id().await;
        let mut ids = Vec::with_capacity(count);
        for _ in 0..count {
            let txn = ultra_domain::db::begin_write(&self.db).await.unwrap();
            ids.push(record_event(&txn, &merchant_id, event_type).await);
            txn.commit().await.unwrap();
        }
        ids
    }

    async fn get(&self, token: &str, path: &str) -> Value {
        let (status, body) = call(&self.app, Method::GET, path, token, None).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
    }

    /// The ids a delivery listing shows, in its order.
    async fn listed(&self, token: &str, path: &str) -> Vec<String> {
        let body = self.get(token, path).await;
        body["data"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap().to_owned()).collect()
    }

    async fn delivery(&self, id: &str) -> Value {
        self.get(&self.merchant, &format!("/webhooks/deliveries/{id}")).await["data"].clone()
    }

    /// Waits until the delivery is no longer pending.
    async fn settled(&self, id: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let delivery = self.delivery(id).await;
            if delivery["status"] != "pending" {
                return delivery;
            }
            assert!(
                Instant::now() < deadline,
                "delivery still pending after {timeout:?}: {delivery}\nworker log:\n{}",
                self.worker.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the listing at `path` shows `n` deliveries, and returns their ids.
    async fn listed_until(&self, path: &str, n: usize, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let ids = self.listed(&self.merchant, path).await;
            if ids.len() == n {
                return ids;
            }
            assert!(
                Instant::now() < deadline,
                "{path} lists {} deliveries after {timeout:?}, expected {n}\nworker log:\n{}",
                ids.len(),
                self.worker.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn record_event(db: &impl sea_orm::ConnectionTrait, merchant_id: &str, event_type: &str) -> String {
    let payment = format!("pay_{}", ulid::Ulid::new().to_string().to_lowercase());
    let event = events::record(
        db,
        NewEvent {
            merchant_id,
            event_type,
            resource_type: "payment",
            resource_id: &payment,
            payload: json!({ "id": payment, "amount": "1000", "currency": "MGA" }),
        },
    )
    .await
    .unwrap();
    event.id
}

/// `method /api/v1{path}` with a bearer token; the status and the JSON body.
async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = app.client.request(method, app.url(&format!("/api/v1{path}"))).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

/// The `webhook-signature` a receiver expects, computed here from the specification rather
/// than by Ultra's code: `v1,` and the base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`.
fn expected_signature(key: &[u8], id: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// The key a Standard Webhooks receiver derives from the secret it was given.
fn signing_key(secret: &str) -> Vec<u8> {
    match secret.strip_prefix("whsec_") {
        Some(encoded) => STANDARD.decode(encoded).unwrap(),
        None => secret.as_bytes().to_vec(),
    }
}

/// Checks a request the way a merchant's receiver would before trusting it.
fn assert_signed(request: &Received, secret: &str) {
    let id = request.webhook_id();
    let timestamp = request.header("webhook-timestamp").expect("a webhook-timestamp header");
    let sent_at: i64 = timestamp.parse().expect("the timestamp is Unix seconds");
    let skew = (chrono::Utc::now().timestamp() - sent_at).abs();
    assert!(skew <= 300, "timestamp {timestamp} is {skew} s from now");
    let signatures = request.header("webhook-signature").expect("a webhook-signature header");
    let expected = expected_signature(&signing_key(secret), id, timestamp, &request.body);
    assert!(
        signatures.split(' ').any(|s| s == expected),
        "signature {signatures} does not verify with {secret}; expected {expected}"
    );
    assert_eq!(request.header("content-type"), Some("application/json"));
}

fn gaps(requests: &[Received]) -> Vec<Duration> {
    requests.windows(2).map(|pair| pair[1].at - pair[0].at).collect()
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Webhooks do not wait for a new scheduler leader: every scheduler dispatches, so killing the
/// leader, with a 10 s lease, leaves deliveries flowing through the standby at once.
#[tokio::test]
async fn webhooks_keep_flowing_through_a_standby_when_the_leader_dies() {
    let world = World::start(json!({ "allowPrivateUrls": true })).await;
    let receiver = Receiver::start(Behaviour::Succeed).await;
    world.create_endpoint(receiver.url(), WHSEC_SECRET, &["payment.completed"], true).await;
    // Two schedulers with the default 10 s lease replace the harness's, whose lease is 2 s.
    let env = [("ULTRA_WEBHOOK_DISPATCH_INTERVAL_MS", "100"), ("ULTRA_SCHEDULER_LEASE_SECONDS", "10")];
    let schedulers = [
        start_scheduler(&world.app.db, &redis_url(), &world.app.redis_prefix, &env).await,
        start_scheduler(&world.app.db, &redis_url(), &world.app.redis_prefix, &env).await,
    ];
    world._scheduler.signal("KILL");
    let redis = ultra_domain::redis_conn::connect(&redis_url()).await.unwrap();
    let lease_key = format!("{}jobs-scheduler-leader", world.app.redis_prefix);
    let leader = || {
        let mut redis = redis.clone();
        let lease_key = lease_key.clone();
        async move { redis::cmd("GET").arg(&lease_key).query_async::<Option<String>>(&mut redis).await.unwrap() }
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let holder = loop {
        let holder = leader().await;
        if let Some(index) = holder
            .as_deref()
            .and_then(|id| schedulers.iter().position(|s| id.starts_with(&format!("{}-", s.pid()))))
        {
            break (index, holder.unwrap());
        }
        assert!(Instant::now() < deadline, "no new leader: {holder:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    world.record("payment.completed", 1).await;
    receiver.wait_for(1, Duration::from_secs(10)).await;

    schedulers[holder.0].signal("KILL");
    let killed = Instant::now();
    world.record("payment.completed", 1).await;
    receiver.wait_for(2, Duration::from_secs(5)).await;
    let took = killed.elapsed();
    assert!(took < Duration::from_secs(3), "delivered {took:?} after the leader died, not after its lease");
    assert_eq!(
        leader().await.as_deref(),
        Some(holder.1.as_str()),
        "the dead leader's lease had not lapsed yet"
    );
}

#[tokio::test]
async fn a_completed_payment_is_delivered_once_to_each_subscribed_endpoint_signed() {
    let world = World::start(json!({ "allowPrivateUrls": true })).await;
    let standard = Receiver::start(Behaviour::Succeed).await;
    let plain = Receiver::start(Behaviour::Succeed).await;
    let failures_only = Receiver::start(Behaviour::Succeed).await;
    let inactive = Receiver::start(Behaviour::Succeed).await;
    let standard_id = world
        .create_endpoint(standard.url(), WHSEC_SECRET, &["payment.completed", "payment.failed"], true)
        .await;
    let plain_id = world.create_endpoint(plain.url(), PLAIN_SECRET, &["payment.completed"], true).await;
    world.create_endpoint(failures_only.url(), PLAIN_SECRET, &["payment.failed"], true).await;
    world.create_endpoint(inactive.url(), PLAIN_SECRET, &["payment.completed"], false).await;

    let (status, _) = call(
        &world.app,
        Method::PUT,
        "/admin/providers/mvola",
        &world.admin,
        Some(json!({ "mode": "simulation" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let response = world
        .app
        .client
        .post(world.app.url("/api/v1/payments"))
        .bearer_auth(&world.merchant)
        .header("Prefer", "wait=5")
        .json(&json!({ "provider": "mvola", "amount": "1000", "customerPhone": "0340000000" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let payment: Value = response.json().await.unwrap();
    assert_eq!(payment["data"]["status"], "completed", "{payment}");
    let payment_id = payment["data"]["id"].as_str().unwrap();

    standard.wait_for(1, Duration::from_secs(15)).await;
    plain.wait_for(1, Duration::from_secs(15)).await;
    // Long enough for a duplicate or a stray delivery to show up.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut event_ids = BTreeSet::new();
    for (receiver, secret) in [(&standard, WHSEC_SECRET), (&plain, PLAIN_SECRET)] {
        let received = receiver.requests();
        assert_eq!(received.len(), 1, "{} got {received:?}", receiver.url());
        let request = &received[0];
        assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", "/hooks"));
        assert_signed(request, secret);
        let body = request.json();
        assert_eq!(body["id"], request.webhook_id(), "{body}");
        assert_eq!(body["type"], "payment.completed", "{body}");
        assert!(body["timestamp"].is_string(), "{body}");
        assert_eq!(body["resource"]["type"], "payment", "{body}");
        assert_eq!(body["resource"]["id"], payment_id, "{body}");
        assert!(body["resource"]["sequence"].as_i64().is_some_and(|s| s >= 1), "{body}");
        assert_eq!(body["data"]["id"], payment_id, "{body}");
        assert_eq!(body["data"]["status"], "completed", "{body}");
        event_ids.insert(request.webhook_id().to_owned());
    }
    assert_eq!(event_ids.len(), 1, "both endpoints got the one event: {event_ids:?}");
    // The whsec_ secret signs with the key it encodes, not with its own characters.
    let request = &standard.requests()[0];
    let as_text = expected_signature(
        WHSEC_SECRET.as_bytes(),
        request.webhook_id(),
        request.header("webhook-timestamp").unwrap(),
        &request.body,
    );
    assert_ne!(request.header("webhook-signature"), Some(as_text.as_str()));
    assert!(failures_only.requests().is_empty(), "not subscribed to payment.completed");
    assert!(inactive.requests().is_empty(), "an inactive endpoint gets nothing");

    let listing = world.get(&world.merchant, "/webhooks/deliveries?page=1&per_page=50").await;
    assert_eq!(listing["meta"]["total"], 2, "one delivery per subscribed active endpoint: {listing}");
    for (endpoint_id, receiver) in [(&standard_id, &standard), (&plain_id, &plain)] {
        let ids =
            world.listed(&world.merchant, &format!("/webhooks/deliveries?endpointId={endpoint_id}")).await;
        assert_eq!(ids.len(), 1);
        let delivery = world.settled(&ids[0], Duration::from_secs(10)).await;
        assert_eq!(delivery["status"], "succeeded", "{delivery}");
        assert_eq!(delivery["success"], true);
        assert_eq!(delivery["dlq"], false);
        assert_eq!(delivery["trigger"], "event");
        assert_eq!(delivery["attempts"], 1);
        assert_eq!(delivery["event"], "payment.completed");
        assert_eq!(delivery["eventId"], receiver.requests()[0].webhook_id());
        assert_eq!(delivery["lastStatusCode"], 200);
        assert!(delivery["deliveredAt"].is_string(), "{delivery}");
        let log = delivery["attemptLog"].as_array().unwrap();
        assert_eq!(log.len(), 1, "{delivery}");
        assert_eq!(log[0]["attempt"], 1);
        assert_eq!(log[0]["statusCode"], 200);
        assert_eq!(log[0]["responseBody"], "ok");
    }
}

#[tokio::test]
async fn failed_deliveries_are_retried_with_growing_gaps_then_dead_lettered() {
    let world = World::start(json!({ "allowPrivateUrls": true, "backoffBaseSeconds": 2,
                                     "backoffMaxSeconds": 30, "maxAttempts": 6 }))
    .await;
    let flaky = Receiver::start(Behaviour::FailFirst(3)).await;
    let busy = Receiver::start(Behaviour::Busy { times: 1, seconds: 3 }).await;
    let down = Receiver::start(Behaviour::Fail).await;
    let flaky_id = world.create_endpoint(flaky.url(), PLAIN_SECRET, &["payment.completed"], true).await;
    let busy_id = world.create_endpoint(busy.url(), PLAIN_SECRET, &["payment.completed"], true).await;
    let down_id = world.create_endpoint(down.url(), PLAIN_SECRET, &["payment.failed"], true).await;

    let event = world.record("payment.completed", 1).await.remove(0);
    let received = flaky.wait_for(4, Duration::from_secs(30)).await;
    for request in &received {
        assert_eq!(request.webhook_id(), event, "every attempt carries the event id");
        assert_eq!(request.body, received[0].body, "every attempt sends the same body");
        assert_signed(request, PLAIN_SECRET);
    }
    let gaps = gaps(&received);
    println!("gaps between attempts: {:?}", gaps.iter().map(|g| secs(*g)).collect::<Vec<_>>());
    // Backoff of 2 s, 4 s, 8 s, each less up to a quarter of jitter.
    assert!(gaps[0] >= Duration::from_millis(1500), "{gaps:?}");
    assert!(gaps[1] > gaps[0] && gaps[2] > gaps[1], "gaps grow: {gaps:?}");
    assert!(gaps[2] >= Duration::from_secs(6), "{gaps:?}");
    assert!(gaps[2] < Duration::from_secs(10), "{gaps:?}");

    let ids = world.listed(&world.merchant, &format!("/webhooks/deliveries?endpointId={flaky_id}")).await;
    let delivery = world.settled(&ids[0], Duration::from_secs(10)).await;
    assert_eq!(delivery["status"], "succeeded", "{delivery}");
    assert_eq!(delivery["attempts"], 4);
    let log = delivery["attemptLog"].as_array().unwrap();
    let codes: Vec<_> = log.iter().map(|a| a["statusCode"].clone()).collect();
    assert_eq!(codes, [500, 500, 500, 200], "{delivery}");
    assert_eq!(log.iter().map(|a| a["attempt"].clone()).collect::<Vec<_>>(), [1, 2, 3, 4]);
    assert_eq!(log[0]["responseBody"], "receiver failure 1");
    assert!(log[0]["error"].as_str().is_some_and(|e| e.contains("500")), "{delivery}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(flaky.count(), 4, "nothing more once delivered");

    // A 503 with Retry-After is retried when the receiver asked, not at the 2 s backoff.
    let received = busy.wait_for(2, Duration::from_secs(15)).await;
    let wait = received[1].at - received[0].at;
    println!("retry after Retry-After: 3: {:.2} s", secs(wait));
    assert!(wait >= Duration::from_secs(3) && wait < Duration::from_secs(6), "{wait:?}");
    let ids = world.listed(&world.merchant, &format!("/webhooks/deliveries?endpointId={busy_id}")).await;
    let delivery = world.settled(&ids[0], Duration::from_secs(10)).await;
    assert_eq!(delivery["status"], "succeeded", "{delivery}");
    assert_eq!(delivery["attemptLog"][0]["statusCode"], 503, "{delivery}");

    // With three attempts allowed, an endpoint that always fails is dead-lettered after three.
    let settings = json!({ "allowPrivateUrls": true, "backoffBaseSeconds": 1, "backoffMaxSeconds": 30,
                           "maxAttempts": 3 });
    RuntimeConfig::set(&world.db, "webhooks", settings, None).await.unwrap();
    let event = world.record("payment.failed", 1).await.remove(0);
    let received = down.wait_for(3, Duration::from_secs(15)).await;
    assert!(received.iter().all(|r| r.webhook_id() == event), "{received:?}");
    let ids = world.listed(&world.merchant, &format!("/webhooks/deliveries?endpointId={down_id}")).await;
    let dead = world.settled(&ids[0], Duration::from_secs(10)).await;
    assert_eq!(dead["status"], "dead_lettered", "{dead}");
    assert_eq!(dead["dlq"], true);
    assert_eq!(dead["success"], false);
    assert_eq!(dead["attempts"], 3);
    assert_eq!(dead["lastStatusCode"], 500);
    assert!(dead["deadLetteredAt"].is_string() && dead["nextAttemptAt"].is_null(), "{dead}");
    assert_eq!(dead["attemptLog"].as_array().unwrap().len(), 3);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(down.count(), 3, "a dead-lettered delivery is not attempted again");

    let dead_id = dead["id"].as_str().unwrap();
    assert_eq!(world.listed(&world.merchant, "/webhooks/dlq").await, [dead_id]);
    assert_eq!(world.listed(&world.merchant, "/webhooks/deliveries?dlq=true").await, [dead_id]);
    assert_eq!(world.listed(&world.merchant, "/webhooks/deliveries?success=false").await, [dead_id]);
    let healthy = world.listed(&world.merchant, "/webhooks/deliveries?dlq=false").await;
    assert_eq!(healthy.len(), 2, "{healthy:?}");
    assert!(!healthy.iter().any(|id| id == dead_id));
    assert_eq!(world.listed(&world.merchant, "/webhooks/deliveries?success=true").await.len(), 2);
}

#[tokio::test]
async fn dead_letters_are_replayed_one_by_one_in_bulk_and_retried() {
    let world = World::start(json!({ "allowPrivateUrls": true, "maxAttempts": 1 })).await;
    let receiver = Receiver::start(Behaviour::Fail).await;
    world.create_endpoint(receiver.url(), WHSEC_SECRET, &["payment.completed"], true).await;
    let events = world.record("payment.completed", 3).await;
    let dead = world.listed_until("/webhooks/dlq", 3, Duration::from_secs(20)).await;
    assert_eq!(receiver.count(), 3);
    let mut event_of = HashMap::new();
    for id in &dead {
        let delivery = world.delivery(id).await;
        assert_eq!(delivery["status"], "dead_lettered", "{delivery}");
        assert_eq!(delivery["attempts"], 1);
        event_of.insert(id.clone(), delivery["eventId"].as_str().unwrap().to_owned());
    }
    assert_eq!(event_of.values().cloned().collect::<BTreeSet<_>>(), events.iter().cloned().collect());
    receiver.set_behaviour(Behaviour::Succeed);

    let first = &dead[0];
    let (status, body) =
        call(&world.app, Method::POST, &format!("/webhooks/dlq/{first}/replay"), &world.merchant, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "replay is for admins: {body}");
    let bulk = json!({ "ids": [first] });
    let (status, body) =
        call(&world.app, Method::POST, "/webhooks/dlq/bulk-replay", &world.merchant, Some(bulk)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "bulk replay is for admins: {body}");

    let (status, body) =
        call(&world.app, Method::POST, &format!("/webhooks/dlq/{first}/replay"), &world.admin, None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (original, replay) = (&body["data"]["original"], &body["data"]["delivery"]);
    assert_eq!(original["id"], *first);
    assert!(original["replayedAt"].is_string(), "{body}");
    assert_eq!(original["replayedBy"], replay["id"]);
    assert_eq!(replay["trigger"], "replay");
    assert_eq!(replay["sourceDeliveryId"], *first);
    assert_eq!(replay["status"], "pending");
    let replay_id = replay["id"].as_str().unwrap().to_owned();
    let delivered = world.settled(&replay_id, Duration::from_secs(10)).await;
    assert_eq!(delivered["status"], "succeeded", "{delivered}");
    let received = receiver.wait_for(4, Duration::from_secs(5)).await;
    assert_eq!(received[3].webhook_id(), event_of[first], "a replay is the same event");
    assert_eq!(received[3].body, received.iter().find(|r| r.webhook_id() == event_of[first]).unwrap().body);
    assert_signed(&received[3], WHSEC_SECRET);

    let (status, body) =
        call(&world.app, Method::POST, &format!("/webhooks/dlq/{first}/replay"), &world.admin, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) =
        call(&world.app, Method::POST, &format!("/webhooks/dlq/{replay_id}/replay"), &world.admin, None)
            .await;
    assert_eq!(status, StatusCode::CONFLICT, "only dead letters are replayed: {body}");
    let remaining: Vec<String> = dead[1..].to_vec();
    assert_eq!(
        world.listed(&world.admin, "/webhooks/dlq").await.into_iter().collect::<BTreeSet<_>>(),
        remaining.iter().cloned().collect()
    );

    let dry = json!({ "ids": dead, "dryRun": true });
    let (status, body) =
        call(&world.app, Method::POST, "/webhooks/dlq/bulk-replay", &world.admin, Some(dry)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["dryRun"], true);
    assert_eq!((body["data"]["replayed"].clone(), body["data"]["skipped"].clone()), (json!(2), json!(1)));
    for result in body["data"]["results"].as_array().unwrap() {
        if result["id"] == *first {
            assert_eq!(result["outcome"], "skipped", "{result}");
            assert_eq!(result["code"], "already_replayed", "{result}");
            assert!(result["reason"].is_string(), "{result}");
        } else {
            assert_eq!(result["outcome"], "would_replay", "{result}");
            assert!(result["deliveryId"].is_null(), "{result}");
        }
    }
    assert_eq!(body["data"]["results"].as_array().unwrap().len(), 3);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        world.listed(&world.admin, "/webhooks/dlq").await.into_iter().collect::<BTreeSet<_>>(),
        remaining.iter().cloned().collect(),
        "a dry run replays nothing"
    );
    assert_eq!(receiver.count(), 4, "a dry run sends nothing");
    assert_eq!(world.get(&world.merchant, "/webhooks/deliveries").await["meta"]["total"], 4);

    let real = json!({ "ids": remaining });
    let (status, body) =
        call(&world.app, Method::POST, "/webhooks/dlq/bulk-replay", &world.admin, Some(real)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["dryRun"], false);
    assert_eq!(body["data"]["replayed"], 2);
    for result in body["data"]["results"].as_array().unwrap() {
        assert_eq!(result["outcome"], "replayed", "{result}");
        let new_id = result["deliveryId"].as_str().expect("the new delivery");
        let delivered = world.settled(new_id, Duration::from_secs(10)).await;
        assert_eq!(delivered["status"], "succeeded", "{delivered}");
        assert_eq!(delivered["trigger"], "replay");
        assert_eq!(delivered["sourceDeliveryId"], result["id"]);
    }
    let received = receiver.wait_for(6, Duration::from_secs(5)).await;
    let replayed_events: BTreeSet<_> = received[4..].iter().map(|r| r.webhook_id().to_owned()).collect();
    assert_eq!(replayed_events, remaining.iter().map(|id| event_of[id].clone()).collect());
    assert!(world.listed(&world.admin, "/webhooks/dlq").await.is_empty());

    for ids in [json!([]), json!((0..101).map(|i| format!("whd_{i}")).collect::<Vec<_>>())] {
        let body = json!({ "ids": ids });
        let (status, body) =
            call(&world.app, Method::POST, "/webhooks/dlq/bulk-replay", &world.admin, Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    }

    // The owner sends a delivered webhook again; while that is under way it cannot be retried.
    receiver.set_behaviour(Behaviour::Slow(Duration::from_secs(2)));
    let path = format!("/webhooks/deliveries/{replay_id}/retry");
    let (status, body) = call(&world.app, Method::POST, &path, &world.merchant, None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let retry = &body["data"];
    assert_eq!(retry["trigger"], "retry");
    assert_eq!(retry["sourceDeliveryId"], replay_id);
    assert_eq!(retry["status"], "pending");
    let retry_id = retry["id"].as_str().unwrap();
    let path = format!("/webhooks/deliveries/{retry_id}/retry");
    let (status, body) = call(&world.app, Method::POST, &path, &world.merchant, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let delivered = world.settled(retry_id, Duration::from_secs(15)).await;
    assert_eq!(delivered["status"], "succeeded", "{delivered}");
    let received = receiver.wait_for(7, Duration::from_secs(1)).await;
    assert_eq!(received[6].webhook_id(), event_of[first]);
}

#[tokio::test]
async fn a_slow_endpoint_with_a_backlog_does_not_delay_another() {
    let world =
        World::start(json!({ "allowPrivateUrls": true, "endpointConcurrency": 4, "timeoutMs": 10000 })).await;
    let slow = Receiver::start(Behaviour::Slow(Duration::from_secs(2))).await;
    let healthy = Receiver::start(Behaviour::Succeed).await;
    world.create_endpoint(slow.url(), PLAIN_SECRET, &["payment.completed"], true).await;
    world.create_endpoint(healthy.url(), PLAIN_SECRET, &["payment.failed"], true).await;
    let merchant_id = world.merchant_id().await;

    let txn = ultra_domain::db::begin_write(&world.db).await.unwrap();
    for _ in 0..1000 {
        record_event(&txn, &merchant_id, "payment.completed").await;
    }
    txn.commit().await.unwrap();
    slow.wait_for(1, Duration::from_secs(15)).await;

    let mut latencies = Vec::new();
    for _ in 0..10 {
        let txn = ultra_domain::db::begin_write(&world.db).await.unwrap();
        let event = record_event(&txn, &merchant_id, "payment.failed").await;
        txn.commit().await.unwrap();
        let committed = Instant::now();
        let deadline = committed + Duration::from_secs(10);
        let arrived = loop {
            if let Some(request) = healthy.requests().into_iter().find(|r| r.webhook_id() == event) {
                break request.at;
            }
            assert!(Instant::now() < deadline, "{event} never reached the healthy endpoint");
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        latencies.push(arrived.saturating_duration_since(committed));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let slowest = latencies.iter().max().unwrap();
    println!(
        "healthy endpoint: commit to arrival at most {:.3} s ({:?}); slow endpoint received {} of 1000, \
         at most {} at once",
        secs(*slowest),
        latencies.iter().map(|l| secs(*l)).collect::<Vec<_>>(),
        slow.count(),
        slow.peak_in_flight()
    );
    assert!(*slowest < Duration::from_secs(2), "{latencies:?}");
    assert!(slow.count() < 1000 / 2, "the backlog was still there: {}", slow.count());
    assert_eq!(healthy.count(), 10);
    assert_eq!(slow.peak_in_flight(), 4, "the slow endpoint gets endpointConcurrency requests at once");
}

#[tokio::test]
async fn deliveries_a_killed_worker_was_sending_are_sent_again() {
    let mut world =
        World::start(json!({ "allowPrivateUrls": true, "timeoutMs": 3000, "endpointConcurrency": 4 })).await;
    let receiver = Receiver::start(Behaviour::Slow(Duration::from_millis(300))).await;
    let endpoint_id = world.create_endpoint(receiver.url(), WHSEC_SECRET, &["payment.completed"], true).await;
    let merchant_id = world.merchant_id().await;
    let txn = ultra_domain::db::begin_write(&world.db).await.unwrap();
    let mut events = BTreeSet::new();
    for _ in 0..40 {
        events.insert(record_event(&txn, &merchant_id, "payment.completed").await);
    }
    txn.commit().await.unwrap();

    receiver.wait_for(4, Duration::from_secs(15)).await;
    world.worker.signal("KILL");
    let killed = Instant::now();
    assert!(world.worker.exited_within(Duration::from_secs(5)).await);
    let before_kill = receiver.requests();
    assert!(before_kill.len() < events.len(), "the worker died with deliveries left");
    world.worker = start_worker(&world.app.db, &redis_url(), &world.app.redis_prefix, &[]).await;

    // Every delivery ends delivered, those the dead worker had claimed once their claim lapses.
    let succeeded = format!("/webhooks/deliveries?endpointId={endpoint_id}&success=true&page=1&per_page=1");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done = world.get(&world.merchant, &succeeded).await["meta"]["total"].as_u64().unwrap();
        if done == 40 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{done} of 40 deliveries succeeded after the kill; the receiver has {} of the events\nworker log:\n{}",
            receiver.requests().iter().map(Received::webhook_id).collect::<BTreeSet<_>>().len(),
            world.worker.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(world.get(&world.merchant, "/webhooks/deliveries").await["meta"]["total"], 40);

    let received = receiver.requests();
    println!(
        "{} requests for {} events; the last {:.1} s after the kill",
        received.len(),
        events.len(),
        secs(received.last().unwrap().at - killed)
    );
    let ids: BTreeSet<String> = received.iter().map(|r| r.webhook_id().to_owned()).collect();
    assert_eq!(ids, events, "exactly the recorded events, under their own ids");
    let mut bodies: HashMap<&str, &[u8]> = HashMap::new();
    for request in &received {
        assert_signed(request, WHSEC_SECRET);
        let first = bodies.entry(request.webhook_id()).or_insert(&request.body);
        assert_eq!(*first, request.body.as_slice(), "copies of {} differ", request.webhook_id());
    }
    // Those still waiting for their answer when the worker died were never recorded as
    // delivered, so they were sent again.
    let unanswered: Vec<&Received> =
        before_kill.iter().filter(|r| killed - r.at < Duration::from_millis(250)).collect();
    assert!(!unanswered.is_empty());
    for request in unanswered {
        let copies = received.iter().filter(|r| r.webhook_id() == request.webhook_id()).count();
        assert!(copies >= 2, "{} was in flight at the kill and sent {copies} time(s)", request.webhook_id());
    }
}

#[tokio::test]
async fn endpoints_are_validated_and_private_to_their_merchant() {
    let app = TestApp::spawn().await;
    let merchant = app.login(MERCHANT_EMAIL, MERCHANT_PASSWORD).await;
    let admin = app.admin_token().await;
    let other_id =
        app.db.create_user("other@ultra.test", Some("other-password-1"), "user", &["--tier", "starter"]);
    let other = app.login("other@ultra.test", "other-password-1").await;
    // A public address written as an IP: nothing to resolve, and nothing is delivered here.
    let url = "https://8.8.8.8/ultra-hooks";
    let valid = json!({ "url": url, "secret": PLAIN_SECRET, "events": ["payment.completed"] });

    let local = format!("http://127.0.0.1:{}/hooks", ultra_tests::free_port());
    let https_local = format!("https://127.0.0.1:{}/hooks", ultra_tests::free_port());
    // Loopback written as an IPv4-compatible IPv6 address, and as 6to4.
    let compatible = format!("http://[::127.0.0.1]:{}/hooks", ultra_tests::free_port());
    let six_to_four = format!("http://[2002:7f00:1::1]:{}/hooks", ultra_tests::free_port());
    let cases = [
        ("secret", json!({ "secret": "fifteen chars!!" })),
        ("url", json!({ "url": compatible })),
        ("url", json!({ "url": six_to_four })),
        ("events", json!({ "events": [] })),
        ("events", json!({ "events": ["payment.exploded"] })),
        ("url", json!({ "url": "not a url" })),
        ("url", json!({ "url": local })),
        ("url", json!({ "url": https_local })),
    ];
    for (field, change) in cases {
        let mut body = valid.clone();
        body.as_object_mut().unwrap().extend(change.as_object().unwrap().clone());
        let (status, response) =
            call(&app, Method::POST, "/webhooks/endpoints", &merchant, Some(body.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {response}");
        assert_eq!(response["success"], false);
        assert!(
            response["meta"]["field"] == field || response["error"].as_str().unwrap().contains(field),
            "{body} → {response} should name {field}"
        );
    }

    let (status, created) =
        call(&app, Method::POST, "/webhooks/endpoints", &other, Some(valid.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let theirs = created["data"]["id"].as_str().unwrap();
    assert_eq!(created["data"]["userId"], other_id);
    assert_eq!(created["data"]["isActive"], true);
    assert_eq!(created["data"]["events"], json!(["payment.completed"]));
    assert!(created["data"].get("secret").is_none(), "the secret is never returned: {created}");
    assert!(!created.to_string().contains(PLAIN_SECRET));
    let (status, mine) = call(&app, Method::POST, "/webhooks/endpoints", &merchant, Some(valid)).await;
    assert_eq!(status, StatusCode::CREATED, "{mine}");
    let mine = mine["data"]["id"].as_str().unwrap();

    let path = format!("/webhooks/endpoints/{theirs}");
    let patch = Some(json!({ "isActive": false }));
    assert_eq!(call(&app, Method::PATCH, &path, &merchant, patch).await.0, StatusCode::NOT_FOUND);
    assert_eq!(call(&app, Method::DELETE, &path, &merchant, None).await.0, StatusCode::NOT_FOUND);
    let (status, listed) = call(&app, Method::GET, "/webhooks/endpoints", &merchant, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        listed["data"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap()).collect::<Vec<_>>(),
        [mine]
    );
    let (status, body) =
        call(&app, Method::GET, &format!("/webhooks/endpoints?userId={other_id}"), &merchant, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, listed) =
        call(&app, Method::GET, &format!("/webhooks/endpoints?userId={other_id}"), &admin, None).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(
        listed["data"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap()).collect::<Vec<_>>(),
        [theirs]
    );

    let path = format!("/webhooks/endpoints/{mine}");
    let (status, body) = call(&app, Method::PATCH, &path, &merchant, Some(json!({}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "an empty change: {body}");
    let (status, body) =
        call(&app, Method::PATCH, &path, &merchant, Some(json!({ "isActive": false }))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["isActive"], false);
    assert_eq!(call(&app, Method::DELETE, &path, &merchant, None).await.0, StatusCode::OK);
    let (_, listed) = call(&app, Method::GET, "/webhooks/endpoints", &merchant, None).await;
    assert!(listed["data"].as_array().unwrap().is_empty(), "{listed}");
}

/// Deliveries and their schedule are rows, not Redis entries: flushing Redis while a retry
/// waits and a backlog is being sent loses nothing, and the retry keeps its time.
#[tokio::test]
async fn a_redis_flush_loses_no_delivery_and_retries_keep_their_time() {
    let redis = OwnRedis::start().await;
    let world = World::start_on(
        json!({ "allowPrivateUrls": true, "backoffBaseSeconds": 4, "maxAttempts": 5, "endpointConcurrency": 2,
                "timeoutMs": 3000 }),
        &redis.url,
    )
    .await;
    let flaky = Receiver::start(Behaviour::FailFirst(1)).await;
    let steady = Receiver::start(Behaviour::Slow(Duration::from_millis(200))).await;
    world.create_endpoint(flaky.url(), PLAIN_SECRET, &["payment.failed"], true).await;
    world.create_endpoint(steady.url(), PLAIN_SECRET, &["payment.completed"], true).await;

    let failed = world.record("payment.failed", 1).await;
    flaky.wait_for(1, Duration::from_secs(10)).await;
    let events: BTreeSet<String> = world.record("payment.completed", 20).await.into_iter().collect();
    steady.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(redis.cli(&["FLUSHALL"]).trim(), "OK");

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let delivered: BTreeSet<String> =
            steady.requests().iter().map(|r| r.webhook_id().to_owned()).collect();
        if delivered == events {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of 20 events delivered after the flush\nworker log:\n{}",
            delivered.len(),
            world.worker.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let retried = flaky.wait_for(2, Duration::from_secs(20)).await;
    assert!(retried.iter().all(|r| r.webhook_id() == failed[0]));
    let gap = retried[1].at - retried[0].at;
    println!("retry {:.2} s after the first attempt, across the flush", secs(gap));
    assert!(gap >= Duration::from_secs(3), "the retry waited its backoff (4 s less jitter): {gap:?}");
    // Sends the flush interrupted are recorded once their claim lapses (timeout + 10 s).
    world.listed_until("/webhooks/deliveries?success=true&per_page=100", 21, Duration::from_secs(40)).await;
}

/// An endpoint that fails without a success for the configured window is turned off, says
/// why, and its waiting deliveries move to the dead-letter queue, where they can be replayed
/// once its owner turns it back on.
#[tokio::test]
async fn an_endpoint_failing_for_the_window_is_disabled_and_says_why() {
    let world =
        World::start(json!({ "allowPrivateUrls": true, "backoffBaseSeconds": 1, "backoffMaxSeconds": 1,
                                     "maxAttempts": 50, "disableAfterSeconds": 3 }))
        .await;
    let receiver = Receiver::start(Behaviour::Fail).await;
    let endpoint_id = world.create_endpoint(receiver.url(), PLAIN_SECRET, &["payment.completed"], true).await;
    world.record("payment.completed", 1).await;

    let path = format!("/webhooks/endpoints/{endpoint_id}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let endpoint = loop {
        let listed = world.get(&world.merchant, "/webhooks/endpoints").await;
        let endpoint = listed["data"][0].clone();
        if endpoint["isActive"] == false {
            break endpoint;
        }
        assert!(Instant::now() < deadline, "still active: {endpoint}\n{}", world.worker.log_text());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let reason = endpoint["disabledReason"].as_str().unwrap_or_default();
    assert!(reason.contains("without a success") && reason.contains("500"), "{endpoint}");
    assert!(endpoint["disabledAt"].is_string() && endpoint["failingSince"].is_string(), "{endpoint}");

    let dead = world.listed_until("/webhooks/dlq", 1, Duration::from_secs(10)).await;
    let delivery = world.delivery(&dead[0]).await;
    assert_eq!(delivery["status"], "dead_lettered", "{delivery}");
    assert!(delivery["attempts"].as_i64().unwrap() >= 3, "{delivery}");
    let attempts = receiver.count();
    world.record("payment.completed", 1).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.count(), attempts, "a disabled endpoint gets nothing");
    assert_eq!(world.listed(&world.merchant, "/webhooks/deliveries").await.len(), 1, "nor new deliveries");

    receiver.set_behaviour(Behaviour::Succeed);
    let (status, body) =
        call(&world.app, Method::PATCH, &path, &world.merchant, Some(json!({ "isActive": true }))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["isActive"], true);
    assert!(body["data"]["disabledReason"].is_null() && body["data"]["failingSince"].is_null(), "{body}");
    let replay = format!("/webhooks/dlq/{}/replay", dead[0]);
    let (status, body) = call(&world.app, Method::POST, &replay, &world.admin, None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let replayed =
        world.settled(body["data"]["delivery"]["id"].as_str().unwrap(), Duration::from_secs(10)).await;
    assert_eq!(replayed["status"], "succeeded", "{replayed}");
}

/// The address check runs where the connection is made, on the addresses a name resolves to
/// then and on IP literals, so an endpoint saved while private addresses were allowed (or a
/// name that later resolves to one) reaches nothing internal; redirects are not followed.
#[tokio::test]
async fn deliveries_never_reach_private_addresses_or_follow_redirects() {
    let world = World::start(json!({ "allowPrivateUrls": true, "maxAttempts": 1 })).await;
    let internal = Receiver::start(Behaviour::Succeed).await;
    let port = internal.url().trim_start_matches("http://127.0.0.1:").trim_end_matches("/hooks").to_owned();
    world.create_endpoint(internal.url(), PLAIN_SECRET, &["payment.completed"], true).await;
    let by_name = format!("http://localhost:{port}/hooks");
    world.create_endpoint(&by_name, PLAIN_SECRET, &["payment.completed"], true).await;
    let redirecting = Receiver::start(Behaviour::Redirect(internal.url().to_owned())).await;
    let redirect_id = world.create_endpoint(redirecting.url(), PLAIN_SECRET, &["payment.failed"], true).await;

    world.record("payment.failed", 1).await;
    let dlq = format!("/webhooks/dlq?endpointId={redirect_id}");
    let redirected = world.listed_until(&dlq, 1, Duration::from_secs(10)).await;
    let delivery = world.delivery(&redirected[0]).await;
    assert_eq!(delivery["lastStatusCode"], 307, "{delivery}");
    assert!(delivery["lastError"].as_str().unwrap().contains("redirects are not followed"), "{delivery}");
    assert_eq!(redirecting.count(), 1);
    assert_eq!(internal.count(), 0, "the redirect was not followed");

    RuntimeConfig::set(&world.db, "webhooks", json!({ "maxAttempts": 1 }), None).await.unwrap();
    world.record("payment.completed", 1).await;
    let blocked =
        world.listed_until("/webhooks/dlq?event=payment.completed", 2, Duration::from_secs(10)).await;
    for id in blocked {
        let delivery = world.delivery(&id).await;
        let error = delivery["lastError"].as_str().unwrap_or_default();
        assert!(error.contains("private or reserved"), "{delivery}");
        assert!(delivery["lastStatusCode"].is_null(), "{delivery}");
    }
    assert_eq!(internal.count(), 0, "nothing reached the internal receiver");
}
