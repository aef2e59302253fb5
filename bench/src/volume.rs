//! Volume: the same operations on a fresh database and on one holding a year of a large
//! merchant's data (payments spread over 365 days, their events, webhook deliveries and audit
//! rows; job rows and idempotency keys as their retention keeps them), written by the database
//! itself with `INSERT … SELECT`. Every figure is compared with the fresh one of the same run.

use std::time::{Duration, Instant};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{Days, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use serde_json::{Value, json};
use ultra_entity::jobs::JobStatus;
use ultra_jobs::{
    NewJob, enqueue_now,
    kinds::maintenance::{PurgeFinishedJobs, PurgeIdempotencyKeys},
    wait::until_finished,
};
use ultra_tests::{Jobs, MERCHANT_EMAIL, redis_url, user_id};

use crate::{
    load::{Summary, closed_loop},
    report::Report,
    world::World,
};

/// Clients and time of each read measure; writes use the same.
const CLIENTS: usize = 4;
const SECONDS: u64 = 5;

/// What a measure did: the operation, and its latencies on the fresh database.
struct Measure {
    name: String,
    fresh: Summary,
}

pub async fn run(report: &mut Report, payments: u64) {
    assert!(
        std::env::var("ULTRA_TEST_DB").as_deref() != Ok("sqlite"),
        "the volume benchmark loads PostgreSQL"
    );
    let world = World::start(&[("webhooks", json!({ "allowPrivateUrls": true }))]).await;
    world.put(&world.merchant, "/api/v1/merchant/providers/mvola", json!({ "mode": "simulation" })).await;
    let endpoint = world
        .post(
            &world.merchant,
            "/api/v1/webhooks/endpoints",
            json!({ "url": "http://127.0.0.1:9/hooks", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                    "events": ["payment.completed"] }),
        )
        .await["data"]["id"]
        .as_str()
        .expect("an endpoint id")
        .to_owned();
    let _worker = world.worker(&[]).await;
    let db = world.db.connect().await;
    let merchant = user_id(&db, MERCHANT_EMAIL).await;

    let fresh = measure_all(&world, None).await;

    let loading = Instant::now();
    load(&db, &merchant, &endpoint, payments).await;
    world.analyze().await;
    report.note(format!(
        "Volume: {payments} payments with their events, deliveries and audit rows, and a retention's \
         jobs and idempotency keys, written in {:.0} s.",
        loading.elapsed().as_secs_f64()
    ));
    let loaded = measure_all(&world, Some(payments)).await;

    let mut rows = Vec::new();
    for (before, after) in fresh.iter().zip(&loaded) {
        let ratio = after.fresh.ms(0.99) / before.fresh.ms(0.99).max(1e-3);
        rows.push(format!(
            "| {} | {:.1} | {:.1} | {:.1} | {:.1} | {ratio:.2} |",
            before.name,
            before.fresh.ms(0.5),
            before.fresh.ms(0.99),
            after.fresh.ms(0.5),
            after.fresh.ms(0.99),
        ));
    }
    report.note(format!(
        "### Volume ({payments} payments)\n\n\
         | operation | fresh p50 ms | fresh p99 ms | loaded p50 ms | loaded p99 ms | p99 loaded / fresh |\n\
         | --- | --- | --- | --- | --- | --- |\n{}",
        rows.join("\n")
    ));
}

/// Every measured operation, in a fixed order so that the fresh and loaded runs line up.
/// `loaded` is the number of bulk payments, whose ids are known, for the deep cursor.
async fn measure_all(world: &World, loaded: Option<u64>) -> Vec<Measure> {
    let mut measures = Vec::new();
    let made = post_payments(world).await;
    let some_id = made.1.clone();
    measures.push(Measure { name: "POST /payments (simulation)".to_owned(), fresh: made.0 });
    let today = Utc::now().date_naive();
    let month_ago = today - Days::new(29);
    let year_ago = today - Days::new(365);
    let deep_cursor = URL_SAFE_NO_PAD.encode(match loaded {
        Some(count) => bulk_id(count / 2),
        None => some_id.clone(),
    });
    let reads = [
        ("GET /payments/{id}", format!("/api/v1/payments/{some_id}")),
        ("list payments, page 1 with its total", "/api/v1/payments?per_page=20".to_owned()),
        (
            "list payments, page 500 (the deepest at 20 a page)",
            "/api/v1/payments?per_page=20&page=500".to_owned(),
        ),
        ("list payments, cursor, first page", "/api/v1/payments?pagination=cursor&limit=20".to_owned()),
        (
            "list payments, cursor, mid-year page",
            format!("/api/v1/payments?pagination=cursor&limit=20&cursor={deep_cursor}"),
        ),
        ("analytics overview, 30 days", format!("/api/v1/analytics/overview?from={month_ago}&to={today}")),
        ("analytics overview, a year", format!("/api/v1/analytics/overview?from={year_ago}&to={today}")),
        ("analytics daily, 30 days", format!("/api/v1/analytics/daily?from={month_ago}&to={today}")),
        ("analytics daily, a year", format!("/api/v1/analytics/daily?from={year_ago}&to={today}")),
        ("webhook DLQ, page 1", "/api/v1/webhooks/dlq?per_page=20".to_owned()),
    ];
    for (name, path) in reads {
        measures.push(Measure { name: name.to_owned(), fresh: get(world, &path).await });
    }
    measures.push(Measure {
        name: "scheduled job retention".to_owned(),
        fresh: scheduled(world, &PurgeFinishedJobs).await,
    });
    measures.push(Measure {
        name: "scheduled idempotency-key purge".to_owned(),
        fresh: scheduled(world, &PurgeIdempotencyKeys).await,
    });
    measures
}

/// Simulation payments from a closed loop; the summary and the id of one of them.
async fn post_payments(world: &World) -> (Summary, String) {
    let (client, url, token) = (world.client.clone(), world.url("/api/v1/payments"), world.merchant.clone());
    let summary = closed_loop(CLIENTS, Duration::from_secs(SECONDS), u64::MAX, move |_| {
        let request = client
            .post(&url)
            .bearer_auth(&token)
            .json(&json!({ "provider": "mvola", "amount": "10000", "customerPhone": "0340000000" }));
        async move { request.send().await.is_ok_and(|response| response.status() == 202) }
    })
    .await;
    assert_eq!(summary.errors, 0, "every payment was accepted");
    let listed: Value = world
        .client
        .get(world.url("/api/v1/payments?pagination=cursor&limit=1"))
        .bearer_auth(&world.merchant)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("a list");
    (summary, listed["data"][0]["id"].as_str().expect("a payment").to_owned())
}

async fn get(world: &World, path: &str) -> Summary {
    let (client, url, token) = (world.client.clone(), world.url(path), world.merchant.clone());
    let summary = closed_loop(CLIENTS, Duration::from_secs(SECONDS), u64::MAX, move |_| {
        let request = client.get(&url).bearer_auth(&token);
        async move { request.send().await.is_ok_and(|response| response.status() == 200) }
    })
    .await;
    assert_eq!(summary.errors, 0, "GET {path} answered 200 every time");
    summary
}

/// A maintenance job as the scheduler enqueues it, run by the worker, timed from its enqueue
/// until the worker announces it finished. Run three times: the first run finds a day's
/// expired rows, as the daily schedule does, the others none.
async fn scheduled<J: ultra_jobs::Job>(world: &World, job: &J) -> Summary {
    let jobs = Jobs::connect(&world.db, &redis_url(), &world.prefix).await;
    let redis = redis::Client::open(redis_url()).expect("a Redis URL");
    let mut latencies = crate::load::histogram();
    for _ in 0..3 {
        let began = Instant::now();
        let id = enqueue_now(&jobs.db, &jobs.queue, NewJob::new(job)).await.expect("enqueue").id;
        let row = until_finished(&jobs.db, &redis, &jobs.queue, &id, Duration::from_secs(600))
            .await
            .expect("wait for the job")
            .expect("the job");
        assert_eq!(row.status, JobStatus::Succeeded, "{} failed: {row:?}", J::KIND);
        latencies.saturating_record(began.elapsed().as_micros() as u64);
    }
    Summary { requests: latencies.len(), errors: 0, seconds: 0.0, histogram: latencies }
}

/// The id of the `n`th bulk payment: sorted before every id the API makes, by age.
fn bulk_id(n: u64) -> String {
    format!("pay_00{n:014}")
}

/// Writes the year: `payments` payments spread evenly over the last 365 days (90% completed,
/// 7% failed, 3% expired, across the three providers), an event, a webhook delivery (1% dead
/// letters) and an audit row per completed payment, a collection job per payment of the last
/// 31 days (what a 30-day job retention keeps, and a day for the purge to find; each id a ULID
/// of its creation time, as the API makes them), and a day of idempotency keys, half expired.
async fn load(db: &DatabaseConnection, merchant: &str, endpoint: &str, payments: u64) {
    let count = i64::try_from(payments).expect("a count that fits");
    // Each statement binds, in order, the parameters it names: 1 the count, 2 the merchant, 3 the
    // endpoint.
    let statements: [(&str, &[u8]); 6] = [
        (
            "INSERT INTO payments (id, merchant_id, provider, mode, amount_minor, currency, status, customer_phone, \
         description, reference, provider_transaction_id, refunded_minor, expires_at, completed_at, failure_reason, \
         created_at, updated_at) \
         SELECT 'pay_00' || lpad(n::text, 14, '0'), $2, (ARRAY['mvola', 'airtel', 'orange'])[n % 3 + 1], 'live', \
         100 * (n % 1000 + 1), 'MGA', \
         CASE WHEN n % 100 < 90 THEN 'completed' WHEN n % 100 < 97 THEN 'failed' ELSE 'expired' END, '0340000000', \
         'Order #' || n, 'ULTBULK' || lpad(n::text, 14, '0'), 'MP' || n, 0, at + interval '15 minutes', \
         CASE WHEN n % 100 < 90 THEN at + interval '5 seconds' END, \
         CASE WHEN n % 100 >= 90 THEN 'declined' END, at, at \
         FROM (SELECT n, now() - interval '365 days' * (($1 - n)::float8 / $1) AS at \
               FROM generate_series(1, $1) AS n) AS s",
            &[1, 2],
        ),
        (
            "INSERT INTO events (id, merchant_id, event_type, resource_type, resource_id, sequence, payload, created_at) \
         SELECT 'evt_00' || substr(id, 7), merchant_id, 'payment.completed', 'payment', id, 1, \
         json_build_object('id', id, 'amount', (amount_minor / 100)::text, 'currency', currency, 'status', status), \
         completed_at FROM payments WHERE merchant_id = $1 AND id LIKE 'pay_00%' AND status = 'completed'",
            &[2],
        ),
        (
            "INSERT INTO webhook_deliveries (id, endpoint_id, merchant_id, event_id, event_type, status, trigger, attempts, \
         last_status_code, last_attempt_at, delivered_at, dead_lettered_at, created_at, updated_at) \
         SELECT 'whd_00' || substr(id, 7), $2, merchant_id, id, event_type, \
         CASE WHEN right(id, 2) = '00' THEN 'dead_lettered' ELSE 'succeeded' END, 'event', \
         CASE WHEN right(id, 2) = '00' THEN 8 ELSE 1 END, CASE WHEN right(id, 2) = '00' THEN 500 ELSE 200 END, \
         created_at, CASE WHEN right(id, 2) <> '00' THEN created_at END, \
         CASE WHEN right(id, 2) = '00' THEN created_at + interval '1 day' END, created_at, created_at \
         FROM events WHERE merchant_id = $1 AND id LIKE 'evt_00%'",
            &[2, 3],
        ),
        (
            "INSERT INTO audit_logs (id, action, entity_type, entity_id, details, created_at) \
         SELECT 'aud_00' || substr(id, 7), 'payment.completed', 'payment', id, \
         json_build_object('status', 'completed'), completed_at \
         FROM payments WHERE merchant_id = $1 AND id LIKE 'pay_00%' AND status = 'completed'",
            &[2],
        ),
        (
            "INSERT INTO jobs (id, kind, queue, payload, status, run_at, attempts, max_attempts, owner_id, created_at, \
         updated_at, started_at, finished_at, result, resource_type, resource_id) \
         SELECT (SELECT string_agg(substr('0123456789ABCDEFGHJKMNPQRSTVWXYZ', \
         (((extract(epoch FROM created_at) * 1000)::bigint >> (5 * (9 - i))) & 31)::int + 1, 1), '' ORDER BY i) \
         FROM generate_series(0, 9) AS i) || upper(substr(md5(id), 1, 16)), \
         'payments.collect', 'default', json_build_object('paymentId', id), \
         'succeeded', created_at, 1, 5, merchant_id, created_at, created_at, created_at, \
         created_at + interval '1 second', '{}'::json, 'payment', id \
         FROM payments WHERE merchant_id = $1 AND id LIKE 'pay_00%' AND created_at > now() - interval '31 days'",
            &[2],
        ),
        (
            "INSERT INTO idempotency_keys (scope, key, endpoint, request_hash, state, response_status, locked_at, \
         expires_at, created_at) \
         SELECT $2, 'bulk-' || n, 'POST /api/v1/payments', md5(n::text), 'completed', 202, at, \
         at + interval '24 hours', at \
         FROM (SELECT n, now() - interval '48 hours' * (($1 / 365 - n)::float8 / ($1 / 365)) AS at \
               FROM generate_series(1, $1 / 365) AS n) AS s",
            &[1, 2],
        ),
    ];
    for (sql, names) in statements {
        let all: [sea_orm::Value; 3] = [count.into(), merchant.into(), endpoint.into()];
        let values: Vec<sea_orm::Value> = names.iter().map(|n| all[usize::from(*n) - 1].clone()).collect();
        db.execute_raw(Statement::from_sql_and_values(DbBackend::Postgres, sql, values))
            .await
            .unwrap_or_else(|err| panic!("load the year: {err}\n{sql}"));
    }
}
