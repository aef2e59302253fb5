//! The job pipeline under real `ultra worker` and `ultra scheduler` processes, including the
//! failures apalis-redis 1.0 does not handle on its own.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, sea_query::Expr};
use serde_json::Value;
use ultra_entity::jobs::JobStatus;
use ultra_jobs::kinds::diagnostics::{Probe, ProbeOutcome};
use ultra_tests::{
    ADMIN_EMAIL, ADMIN_PASSWORD, Jobs, MERCHANT_EMAIL, MERCHANT_PASSWORD, OwnRedis, TestApp, TestDb,
    redis_url, start_scheduler, start_worker,
};

fn probe(sleep_ms: u64, outcome: ProbeOutcome) -> Probe {
    Probe { sleep_ms, outcome }
}

fn unique_prefix() -> String {
    format!("test:{}:", ulid::Ulid::new().to_string().to_lowercase())
}

#[tokio::test]
async fn a_job_completes_and_only_its_owner_sees_it() {
    let app = TestApp::spawn().await;
    let _worker =
        start_worker(&app.db, &redis_url(), &app.redis_prefix, &[("ULTRA_WORKER_HEARTBEAT_SECONDS", "10")])
            .await;
    let jobs = Jobs::connect(&app.db, &redis_url(), &app.redis_prefix).await;
    let merchant = ultra_domain::users::find_by_email(&jobs.db, MERCHANT_EMAIL).await.unwrap().unwrap();
    app.db.create_user("other@ultra.test", Some("other-password"), "user", &[]);

    // The worker has been idle; it still picks the job up at once, not at its next heartbeat.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let started = Instant::now();
    let id = jobs.enqueue_probe(&probe(0, ProbeOutcome::Succeed), Some(&merchant.id), None).await;
    let token = app.login(MERCHANT_EMAIL, MERCHANT_PASSWORD).await;
    let response = app
        .client
        .get(app.url(&format!("/api/v1/jobs/{id}")))
        .bearer_auth(&token)
        .header("Prefer", "wait=10")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["preference-applied"], "wait=10");
    let body: Value = response.json().await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(3), "picked up in {:?}", started.elapsed());
    assert_eq!(body["data"]["status"], "succeeded", "{body}");
    assert_eq!(body["data"]["kind"], "diagnostics.probe");
    assert_eq!(body["data"]["attempts"], 1);
    assert_eq!(body["data"]["statusUrl"], format!("/api/v1/jobs/{id}"));
    assert!(body["data"]["finishedAt"].is_string());
    assert_eq!(jobs.probe_effects().await.get(&id), Some(&1));

    let other = app.login("other@ultra.test", "other-password").await;
    let hidden =
        app.client.get(app.url(&format!("/api/v1/jobs/{id}"))).bearer_auth(&other).send().await.unwrap();
    assert_eq!(hidden.status(), StatusCode::NOT_FOUND);
    let admin = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let seen =
        app.client.get(app.url(&format!("/api/v1/jobs/{id}"))).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(seen.status(), StatusCode::OK);
    let anonymous = app.client.get(app.url(&format!("/api/v1/jobs/{id}"))).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let missing = app
        .client
        .get(app.url("/api/v1/jobs/01J000000000000000000000XX"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    // A wait that runs out answers with the job as it stands.
    let long = jobs.enqueue_probe(&probe(4000, ProbeOutcome::Succeed), Some(&merchant.id), None).await;
    let asked = Instant::now();
    let timed_out = app
        .client
        .get(app.url(&format!("/api/v1/jobs/{long}")))
        .bearer_auth(&token)
        .header("Prefer", "respond-async, wait=1")
        .send()
        .await
        .unwrap();
    assert!(asked.elapsed() >= Duration::from_secs(1) && asked.elapsed() < Duration::from_secs(3));
    assert_eq!(timed_out.headers()["preference-applied"], "wait=1");
    let body: Value = timed_out.json().await.unwrap();
    assert!(["queued", "running"].contains(&body["data"]["status"].as_str().unwrap()), "{body}");

    // Without Prefer the answer is immediate, whatever the state.
    let slow = jobs.enqueue_probe(&probe(3000, ProbeOutcome::Succeed), Some(&merchant.id), None).await;
    let now =
        app.client.get(app.url(&format!("/api/v1/jobs/{slow}"))).bearer_auth(&token).send().await.unwrap();
    assert!(now.headers().get("preference-applied").is_none());
    let body: Value = now.json().await.unwrap();
    assert!(["queued", "running"].contains(&body["data"]["status"].as_str().unwrap()), "{body}");
}

#[tokio::test]
async fn an_always_failing_job_ends_dead_with_its_error_and_growing_gaps() {
    let db = TestDb::new().await;
    let prefix = unique_prefix();
    let _worker = start_worker(&db, &redis_url(), &prefix, &[]).await;
    let jobs = Jobs::connect(&db, &redis_url(), &prefix).await;
    let id = jobs.enqueue_probe(&probe(0, ProbeOutcome::Fail), None, Some(4)).await;

    let job = jobs.finished(&id, Duration::from_secs(60)).await;
    assert_eq!(job.status, JobStatus::Dead);
    assert_eq!(job.attempts, 4);
    assert_eq!(job.last_error.as_deref(), Some("probe failure on attempt 4"));
    let log = job.attempt_log.unwrap();
    let starts: Vec<chrono::DateTime<chrono::Utc>> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["startedAt"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(starts.len(), 4, "every attempt is on the row: {log}");
    let gaps: Vec<f64> = starts.windows(2).map(|w| (w[1] - w[0]).as_seconds_f64()).collect();
    assert!(gaps[0] < gaps[1] && gaps[1] < gaps[2], "gaps grow: {gaps:?}");
    assert!(jobs.probe_effects().await.is_empty());
}

#[tokio::test]
async fn a_panicking_job_is_retried_then_dead_and_the_worker_survives() {
    let db = TestDb::new().await;
    let prefix = unique_prefix();
    let mut worker = start_worker(&db, &redis_url(), &prefix, &[]).await;
    let jobs = Jobs::connect(&db, &redis_url(), &prefix).await;
    let id = jobs.enqueue_probe(&probe(0, ProbeOutcome::Panic), None, Some(2)).await;

    let job = jobs.finished(&id, Duration::from_secs(30)).await;
    assert_eq!(job.status, JobStatus::Dead);
    assert_eq!(job.attempts, 2);
    assert!(job.last_error.unwrap().contains("probe panic on attempt 2"));
    assert!(worker.is_running(), "the worker process survives a panicking job");

    let next = jobs.enqueue_probe(&probe(0, ProbeOutcome::Succeed), None, None).await;
    assert_eq!(jobs.finished(&next, Duration::from_secs(10)).await.status, JobStatus::Succeeded);

    // The worker reports what it did.
    let metrics = reqwest::get(format!("{}/metrics", worker.base)).await.unwrap().text().await.unwrap();
    for expected in [
        r#"jobs_started_total{kind="diagnostics.probe"} 3"#,
        r#"jobs_retried_total{kind="diagnostics.probe"} 1"#,
        r#"jobs_dead_total{kind="diagnostics.probe"} 1"#,
        r#"jobs_succeeded_total{kind="diagnostics.probe"} 1"#,
        "job_duration_seconds",
        "job_queue_wait_seconds",
        r#"job_queue_depth{queue="default",state="due"}"#,
    ] {
        assert!(metrics.contains(expected), "{expected} missing from:\n{metrics}");
    }
}

#[tokio::test]
async fn a_killed_workers_long_job_completes_exactly_once_within_the_bound() {
    let db = TestDb::new().await;
    let prefix = unique_prefix();
    let workers = [
        start_worker(&db, &redis_url(), &prefix, &[]).await,
        start_worker(&db, &redis_url(), &prefix, &[]).await,
    ];
    let jobs = Jobs::connect(&db, &redis_url(), &prefix).await;
    let id = jobs.enqueue_probe(&probe(4000, ProbeOutcome::Succeed), None, None).await;

    // The job row names the worker running it: `<host>-<pid>`.
    let deadline = Instant::now() + Duration::from_secs(10);
    let holder = loop {
        let job = jobs.job(&id).await;
        if let Some(worker) = job.locked_by.filter(|_| job.status == JobStatus::Running) {
            break worker;
        }
        assert!(Instant::now() < deadline, "the job never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let pid: u32 = holder.rsplit('-').next().unwrap().parse().unwrap();
    let (victim, survivor): (Vec<_>, Vec<_>) = workers.into_iter().partition(|w| w.pid() == pid);
    let mut victim = victim.into_iter().next().expect("the holder is one of our workers");
    victim.signal("KILL");
    assert!(victim.exited_within(Duration::from_secs(5)).await);
    let killed_at = Instant::now();

    // Orphan window 1 s × 3 missed heartbeats, one more heartbeat to notice, then the 4 s job.
    let job = jobs.finished(&id, Duration::from_secs(20)).await;
    let took = killed_at.elapsed();
    assert_eq!(job.status, JobStatus::Succeeded);
    assert!(took < Duration::from_secs(12), "re-run within the bound, took {took:?}");
    assert_ne!(job.attempt_log.unwrap()[0]["worker"].as_str().unwrap(), holder, "the survivor ran it");
    assert_eq!(jobs.probe_effects().await.get(&id), Some(&1), "the effect is counted once");
    drop(survivor);
}

#[tokio::test]
async fn after_redis_forgets_everything_the_relay_re_enqueues_every_job() {
    let redis = OwnRedis::start().await;
    let db = TestDb::new().await;
    let prefix = unique_prefix();
    let jobs = Jobs::connect(&db, &redis.url, &prefix).await;
    let ids = jobs.enqueue_probes(&probe(0, ProbeOutcome::Succeed), 50, None, None).await;
    assert!(redis.cli(&["DBSIZE"]).trim().parse::<u64>().unwrap() > 0);
    redis.cli(&["FLUSHALL"]);

    let _worker = start_worker(&db, &redis.url, &prefix, &[]).await;
    let _scheduler = start_scheduler(&db, &redis.url, &prefix, &[]).await;
    for id in &ids {
        assert_eq!(jobs.finished(id, Duration::from_secs(30)).await.status, JobStatus::Succeeded);
    }
    let effects = jobs.probe_effects().await;
    assert!(ids.iter().all(|id| effects.get(id) == Some(&1)), "each job ran once");
}

/// A retry whose push Redis had already finished (a delivery skipped as stale and acked, a
/// retry recorded while its push was being acked) is left queued under that push: no worker
/// will run it, and only the relay can. The row is the truth, whatever Redis says.
#[tokio::test]
async fn a_queued_job_whose_push_redis_finished_is_pushed_again() {
    let db = TestDb::new().await;
    let prefix = unique_prefix();
    let jobs = Jobs::connect(&db, &redis_url(), &prefix).await;
    let worker = start_worker(&db, &redis_url(), &prefix, &[]).await;
    let id = jobs.enqueue_probe(&probe(0, ProbeOutcome::Succeed), None, None).await;
    assert_eq!(jobs.finished(&id, Duration::from_secs(15)).await.status, JobStatus::Succeeded);

    // The row goes back to queued, due, under the push Redis has recorded as done.
    ultra_entity::jobs::Entity::update_many()
        .col_expr(ultra_entity::jobs::Column::Status, Expr::value(JobStatus::Queued))
        .col_expr(
            ultra_entity::jobs::Column::FinishedAt,
            Expr::value(Option::<chrono::DateTime<chrono::Utc>>::None),
        )
        .col_expr(
            ultra_entity::jobs::Column::RunAt,
            Expr::value(chrono::Utc::now() - chrono::Duration::seconds(5)),
        )
        .filter(ultra_entity::jobs::Column::Id.eq(id.as_str()))
        .exec(&jobs.db)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(jobs.job(&id).await.status, JobStatus::Queued, "no worker runs a push Redis finished");

    let _scheduler = start_scheduler(&db, &redis_url(), &prefix, &[]).await;
    let job = jobs.finished(&id, Duration::from_secs(15)).await;
    assert_eq!(job.status, JobStatus::Succeeded, "{}", worker.log_text());
    assert_eq!(jobs.probe_effects().await.get(&id), Some(&2), "it ran again");
}

#[tokio::test]
async fn two_schedulers_fire_each_tick_once_and_a_standby_takes_over() {
    let db = TestDb::new().await;
    let prefix = unique_prefix();
    let conn = db.connect().await;
    ultra_domain::runtime_config::RuntimeConfig::set(
        &conn,
        "schedules",
        serde_json::json!({ "expire-tokens": "* * * * * *" }),
        None,
    )
    .await
    .unwrap();
    let _worker = start_worker(&db, &redis_url(), &prefix, &[]).await;
    let first = start_scheduler(&db, &redis_url(), &prefix, &[]).await;
    let second = start_scheduler(&db, &redis_url(), &prefix, &[]).await;
    tokio::time::sleep(Duration::from_secs(5)).await;

    let ticks = || async {
        let rows: Vec<String> = ultra_entity::jobs::Entity::find()
            .filter(ultra_entity::jobs::Column::Kind.eq("maintenance.expire_tokens"))
            .all(&conn)
            .await
            .unwrap()
            .into_iter()
            .filter_map(|job| job.unique_key)
            .collect();
        let mut seconds: Vec<i64> =
            rows.iter().map(|key| key.rsplit(':').next().unwrap().parse().unwrap()).collect();
        seconds.sort_unstable();
        seconds
    };
    let before = ticks().await;
    assert!(before.len() >= 3, "ticks fired: {before:?}");
    assert!(before.windows(2).all(|w| w[1] == w[0] + 1), "one job per tick, none missed: {before:?}");

    // Kill the leader: the standby takes over within the 2 s lease.
    let mut redis = ultra_domain::redis_conn::connect(&redis_url()).await.unwrap();
    let leader: String = redis::cmd("GET")
        .arg(format!("{prefix}jobs-scheduler-leader"))
        .query_async(&mut redis)
        .await
        .unwrap();
    let leader_pid: u32 = leader.split('-').next().unwrap().parse().unwrap();
    let (mut dead, _standby) = if first.pid() == leader_pid { (first, second) } else { (second, first) };
    dead.signal("KILL");
    assert!(dead.exited_within(Duration::from_secs(5)).await);
    let killed = chrono::Utc::now().timestamp();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = ticks().await;
    assert!(after.iter().any(|&t| t >= killed + 3), "ticks continue after the leader died: {after:?}");
    assert!(after.windows(2).all(|w| w[1] > w[0]), "never two jobs for one tick: {after:?}");
    let succeeded = ultra_entity::jobs::Entity::find()
        .filter(ultra_entity::jobs::Column::Kind.eq("maintenance.expire_tokens"))
        .filter(ultra_entity::jobs::Column::Status.eq(JobStatus::Succeeded))
        .count(&conn)
        .await
        .unwrap();
    assert!(succeeded >= before.len() as u64, "scheduled jobs run");
}

#[tokio::test]
async fn ten_thousand_jobs_from_concurrent_enqueuers_all_complete_once() {
    let db = TestDb::new().await;
    let prefix = unique_prefix();
    let _workers = [
        start_worker(&db, &redis_url(), &prefix, &[("ULTRA_WORKER_QUEUES", "default=32")]).await,
        start_worker(&db, &redis_url(), &prefix, &[("ULTRA_WORKER_QUEUES", "default=32")]).await,
    ];
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let jobs = Jobs::connect(&db, &redis_url(), &prefix).await;
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for _ in 0..10 {
                ids.extend(jobs.enqueue_probes(&probe(0, ProbeOutcome::Succeed), 10, None, None).await);
            }
            ids
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.extend(task.await.unwrap());
    }
    assert_eq!(ids.len(), 10_000);
    let jobs = Jobs::connect(&db, &redis_url(), &prefix).await;
    let deadline = Instant::now() + Duration::from_secs(300);
    while jobs.count(JobStatus::Succeeded).await < 10_000 {
        assert!(Instant::now() < deadline, "only {} of 10,000 done", jobs.count(JobStatus::Succeeded).await);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let effects = jobs.probe_effects().await;
    assert_eq!(effects.len(), 10_000);
    assert!(effects.values().all(|&n| n == 1), "no job ran its effect twice");
}

#[tokio::test]
async fn an_effect_that_fails_is_undone_alone_and_the_jobs_committed_with_it_keep_theirs() {
    let db = TestDb::new().await;
    let prefix = unique_prefix();
    let jobs = Jobs::connect(&db, &redis_url(), &prefix).await;
    // A backlog interleaving the two, so that a worker finishing them together groups them.
    let (mut succeeding, mut failing) = (Vec::new(), Vec::new());
    for _ in 0..20 {
        succeeding.extend(jobs.enqueue_probes(&probe(0, ProbeOutcome::Succeed), 45, None, None).await);
        failing.extend(jobs.enqueue_probes(&probe(0, ProbeOutcome::FailAfterWrite), 5, None, None).await);
    }
    let worker = start_worker(&db, &redis_url(), &prefix, &[("ULTRA_WORKER_QUEUES", "default=64")]).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    while jobs.count(JobStatus::Succeeded).await + jobs.count(JobStatus::Failed).await < 1000 {
        assert!(
            Instant::now() < deadline,
            "only {} of 900 succeeded",
            jobs.count(JobStatus::Succeeded).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(jobs.count(JobStatus::Succeeded).await, 900);
    for id in &failing {
        let job = jobs.job(id).await;
        assert_eq!(job.status, JobStatus::Failed);
        assert_eq!(job.last_error.as_deref(), Some("probe failure after its write"));
    }
    let effects = jobs.probe_effects().await;
    assert!(succeeding.iter().all(|id| effects.get(id) == Some(&1)), "every success kept its write once");
    assert!(failing.iter().all(|id| !effects.contains_key(id)), "no failed write survived");
    assert_eq!(effects.len(), 900);

    let (groups, grouped) = (
        worker.metric("job_completion_group_size_count", &[]).await,
        worker.metric("job_completion_group_size_sum", &[]).await,
    );
    assert!(grouped > groups, "completions were committed together ({grouped} in {groups} groups)");
    assert!(worker.metric("job_completion_groups_rerun_total", &[]).await >= 1.0, "a group ran again");

    // Alone in its group, too, a failed effect leaves nothing and completes nothing.
    let lone = jobs.enqueue_probe(&probe(0, ProbeOutcome::FailAfterWrite), None, None).await;
    assert_eq!(jobs.finished(&lone, Duration::from_secs(15)).await.status, JobStatus::Failed);
    assert!(!jobs.probe_effects().await.contains_key(&lone));
}

/// An effect that fails inside a completion group is retried, and its retry runs: the failed
/// attempt goes back to the queue under a new push, which a worker then takes.
#[tokio::test]
async fn an_effect_that_fails_inside_a_group_is_retried_and_its_retry_runs() {
    let db = TestDb::new().await;
    let prefix = unique_prefix();
    let jobs = Jobs::connect(&db, &redis_url(), &prefix).await;
    let mut failing = Vec::new();
    for _ in 0..4 {
        jobs.enqueue_probes(&probe(0, ProbeOutcome::Succeed), 45, None, None).await;
        failing.extend(jobs.enqueue_probes(&probe(0, ProbeOutcome::FailAfterWriteOnce), 5, None, None).await);
    }
    let worker = start_worker(&db, &redis_url(), &prefix, &[("ULTRA_WORKER_QUEUES", "default=64")]).await;
    for id in &failing {
        let job = jobs.finished(id, Duration::from_secs(60)).await;
        assert_eq!(job.status, JobStatus::Succeeded, "{}", worker.log_text());
        assert_eq!(job.attempts, 2, "failed once inside its group, then ran again");
    }
    assert_eq!(jobs.count(JobStatus::Succeeded).await, 200);
    let effects = jobs.probe_effects().await;
    assert!(failing.iter().all(|id| effects.get(id) == Some(&1)), "only the retry's write survived");
    assert!(worker.metric("job_completion_groups_rerun_total", &[]).await >= 1.0, "a group ran again");
}

#[tokio::test]
async fn a_backlog_of_fifty_thousand_drains_without_a_worker_exiting() {
    let db = TestDb::new().await;
    let prefix = unique_prefix();
    let jobs = Jobs::connect(&db, &redis_url(), &prefix).await;
    for _ in 0..50 {
        jobs.enqueue_probes(&probe(0, ProbeOutcome::Succeed), 1000, None, None).await;
    }
    let env = [("ULTRA_WORKER_QUEUES", "default=32")];
    let mut workers = [
        start_worker(&db, &redis_url(), &prefix, &env).await,
        start_worker(&db, &redis_url(), &prefix, &env).await,
    ];
    let deadline = Instant::now() + Duration::from_secs(900);
    while jobs.count(JobStatus::Succeeded).await < 50_000 {
        assert!(Instant::now() < deadline, "only {} of 50,000 done", jobs.count(JobStatus::Succeeded).await);
        for worker in &mut workers {
            assert!(worker.is_running(), "a worker exited: {}", worker.log_text());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    for worker in &mut workers {
        assert!(worker.is_running());
        assert!(
            !worker.log_text().contains("queue consumer"),
            "the consumer never failed: {}",
            worker.log_text()
        );
    }
    assert_eq!(jobs.probe_effects().await.len(), 50_000);
}

#[tokio::test]
async fn a_worker_survives_redis_answering_slowly() {
    let redis = OwnRedis::start().await;
    let db = TestDb::new().await;
    let prefix = unique_prefix();
    let mut worker = start_worker(&db, &redis.url, &prefix, &[]).await;
    let jobs = Jobs::connect(&db, &redis.url, &prefix).await;
    // Longer than the Redis client's 500 ms default response timeout, and than the heartbeat.
    redis.cli(&["DEBUG", "SLEEP", "1.5"]);
    assert!(worker.is_running(), "{}", worker.log_text());
    let id = jobs.enqueue_probe(&probe(0, ProbeOutcome::Succeed), None, None).await;
    assert_eq!(jobs.finished(&id, Duration::from_secs(15)).await.status, JobStatus::Succeeded);
    assert!(worker.is_running());
}

#[tokio::test]
async fn a_worker_restarted_at_once_is_not_refused_and_finishes_in_flight_work_on_sigterm() {
    let db = TestDb::new().await;
    let prefix = unique_prefix();
    let jobs = Jobs::connect(&db, &redis_url(), &prefix).await;
    let mut first = start_worker(&db, &redis_url(), &prefix, &[]).await;
    let id = jobs.enqueue_probe(&probe(1500, ProbeOutcome::Succeed), None, None).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while jobs.job(&id).await.status != JobStatus::Running {
        assert!(Instant::now() < deadline, "the job never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    first.signal("TERM");
    assert!(first.exited_within(Duration::from_secs(10)).await, "SIGTERM stops the worker");
    assert_eq!(jobs.job(&id).await.status, JobStatus::Succeeded, "the job in flight was finished first");

    let _second = start_worker(&db, &redis_url(), &prefix, &[]).await;
    let next = jobs.enqueue_probe(&probe(0, ProbeOutcome::Succeed), None, None).await;
    assert_eq!(jobs.finished(&next, Duration::from_secs(10)).await.status, JobStatus::Succeeded);
}

#[tokio::test]
async fn a_duplicated_delivery_applies_the_effect_once() {
    let db = TestDb::new().await;
    let prefix = unique_prefix();
    let jobs = Jobs::connect(&db, &redis_url(), &prefix).await;
    let id = jobs.enqueue_probe(&probe(1000, ProbeOutcome::Succeed), None, None).await;
    // Deliver the same push a second time, as apalis does when it wrongly presumes a worker
    // dead while its heartbeat is stalled.
    let push_id = jobs.job(&id).await.push_id.unwrap();
    let active = jobs.queue.apalis_config("default").active_jobs_list();
    let mut redis = ultra_domain::redis_conn::connect(&redis_url()).await.unwrap();
    let _: i64 = redis::cmd("RPUSH").arg(&active).arg(&push_id).query_async(&mut redis).await.unwrap();

    let _workers = [
        start_worker(&db, &redis_url(), &prefix, &[]).await,
        start_worker(&db, &redis_url(), &prefix, &[]).await,
    ];
    assert_eq!(jobs.finished(&id, Duration::from_secs(15)).await.status, JobStatus::Succeeded);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(jobs.probe_effects().await.get(&id), Some(&1));
    assert_eq!(jobs.job(&id).await.attempts, 1);
}

#[tokio::test]
async fn the_maintenance_schedules_purge_and_expire() {
    use sea_orm::{ActiveModelTrait, Set};
    use ultra_entity::{idempotency_keys, tokens};

    let db = TestDb::new().await;
    let prefix = unique_prefix();
    let conn = db.connect().await;
    let user_id = db.create_user("maint@ultra.test", Some("password-123"), "user", &[]);
    let long_ago = chrono::Utc::now() - chrono::Duration::days(2);
    let key = idempotency_keys::ActiveModel {
        scope: Set(user_id.clone()),
        key: Set("old-key".into()),
        endpoint: Set("POST /api/v1/admin/users".into()),
        request_hash: Set("0".repeat(64)),
        state: Set(idempotency_keys::IdempotencyState::Completed),
        locked_at: Set(long_ago),
        expires_at: Set(long_ago),
        created_at: Set(long_ago),
        ..Default::default()
    }
    .insert(&conn)
    .await
    .unwrap();
    let token = tokens::ActiveModel {
        id: Set("tok_old".into()),
        jti: Set("old-jti".into()),
        user_id: Set(user_id),
        name: Set("login".into()),
        status: Set(tokens::TokenStatus::Active),
        expires_at: Set(long_ago),
        custom_claims: Set(None),
        created_by: Set(None),
        created_at: Set(long_ago),
        revoked_at: Set(None),
    }
    .insert(&conn)
    .await
    .unwrap();
    let jobs = Jobs::connect(&db, &redis_url(), &prefix).await;
    let finished = jobs.enqueue_probe(&probe(0, ProbeOutcome::Succeed), None, None).await;
    let _worker = start_worker(&db, &redis_url(), &prefix, &[]).await;
    jobs.finished(&finished, Duration::from_secs(10)).await;

    let every_second = serde_json::json!({
        "purge-idempotency-keys": "* * * * * *",
        "expire-tokens": "* * * * * *",
        "purge-finished-jobs": "* * * * * *",
    });
    ultra_domain::runtime_config::RuntimeConfig::set(&conn, "schedules", every_second, None).await.unwrap();
    ultra_domain::runtime_config::RuntimeConfig::set(&conn, "jobRetentionDays", serde_json::json!(0), None)
        .await
        .unwrap();
    let _scheduler = start_scheduler(&db, &redis_url(), &prefix, &[]).await;

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let key_gone = idempotency_keys::Entity::find_by_id(key.id).one(&conn).await.unwrap().is_none();
        let token_expired =
            tokens::Entity::find_by_id(token.id.clone()).one(&conn).await.unwrap().unwrap().status
                == tokens::TokenStatus::Expired;
        let job_purged =
            ultra_entity::jobs::Entity::find_by_id(finished.clone()).one(&conn).await.unwrap().is_none();
        if key_gone && token_expired && job_purged {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "key gone {key_gone}, token expired {token_expired}, job purged {job_purged}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
