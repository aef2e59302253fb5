//! Test harness: every test gets a fresh database (PostgreSQL, or SQLite with
//! `ULTRA_TEST_DB=sqlite`), its own Redis key prefix, and real `ultra` processes on free ports.

pub mod receiver;
pub mod sellapay;

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::OnceLock,
    time::{Duration, Instant, SystemTime},
};

use chrono::Utc;
use sea_orm::{
    ColumnTrait, ConnectionTrait, Database, DatabaseConnection, DbBackend, EntityTrait, PaginatorTrait,
    QueryFilter, Statement,
};
use serde_json::{Value, json};
use ultra_entity::{
    audit_logs,
    jobs::{self, JobStatus},
    ledger_accounts,
};
use ultra_jobs::kinds::diagnostics::{PROBE_AUDIT_ACTION, Probe};

pub const JWT_SECRET: &str = "test-secret-that-is-at-least-32-bytes-long";
/// 32 bytes, base64: the key test processes seal stored secrets with.
pub const ENCRYPTION_KEY: &str = "dWx0cmEtdGVzdC1lbmNyeXB0aW9uLWtleS0zMmJ5dGU=";
pub const ADMIN_EMAIL: &str = "root@ultra.test";
pub const ADMIN_PASSWORD: &str = "admin-password-1";
pub const MERCHANT_EMAIL: &str = "shop@ultra.test";
pub const MERCHANT_PASSWORD: &str = "merchant-password-1";

pub fn redis_url() -> String {
    std::env::var("ULTRA_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// The `ultra` binary under test: `ULTRA_BIN`, or `ultra` next to the test executable's
/// `deps/` folder. `cargo test` does not rebuild another package's binary, so a binary older
/// than any source file is refused rather than silently tested.
pub fn ultra_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("ULTRA_BIN") {
            return bin.into();
        }
        let exe = std::env::current_exe().expect("test executable path");
        let profile_dir = exe.parent().and_then(|deps| deps.parent()).expect("target/<profile>/deps");
        let bin = profile_dir.join("ultra");
        let built = std::fs::metadata(&bin)
            .and_then(|m| m.modified())
            .unwrap_or_else(|_| panic!("{} is missing: run `cargo build --workspace` first", bin.display()));
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root");
        for crate_dir in BINARY_SOURCES {
            if let Some((_, newer)) =
                newest_source(&workspace.join(crate_dir)).filter(|(modified, _)| *modified > built)
            {
                panic!(
                    "{} is older than {}: run `cargo build --workspace` first",
                    bin.display(),
                    newer.display()
                );
            }
        }
        bin
    })
    .clone()
}

/// The folders whose Rust sources are linked into the `ultra` binary (not the crates' own tests).
const BINARY_SOURCES: [&str; 11] = [
    "src",
    "api/src",
    "domain/src",
    "entity/src",
    "jobs/src",
    "migration/src",
    "outbound/src",
    "providers/src",
    "sandbox/src",
    "scheduler/src",
    "worker/src",
];

fn newest_source(dir: &Path) -> Option<(SystemTime, PathBuf)> {
    let mut newest: Option<(SystemTime, PathBuf)> = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let candidate = if path.is_dir() {
            newest_source(&path)
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            entry.metadata().and_then(|m| m.modified()).ok().map(|t| (t, path))
        } else {
            None
        };
        if let Some(candidate) = candidate
            && newest.as_ref().is_none_or(|current| candidate.0 > current.0)
        {
            newest = Some(candidate);
        }
    }
    newest
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind a free port").local_addr().expect("addr").port()
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}", ulid::Ulid::new().to_string().to_lowercase())
}

/// A fresh, empty database, migrated by `ultra migrate`.
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub async fn new() -> Self {
        let db = if std::env::var("ULTRA_TEST_DB").as_deref() == Ok("sqlite") {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}?mode=rwc", dir.path().join("ultra.db").display());
            Self { url, _dir: Some(dir) }
        } else {
            let admin_url = std::env::var("ULTRA_TEST_PG_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
            let name = unique("ultra_test_");
            let admin = Database::connect(&admin_url).await.expect("connect to PostgreSQL");
            admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.expect("create database");
            let (address, query) =
                admin_url.split_once('?').map_or((admin_url.as_str(), None), |(a, q)| (a, Some(q)));
            let base = address.rsplit_once('/').map(|(base, _)| base).expect("database URL has a path");
            let url = match query {
                Some(query) => format!("{base}/{name}?{query}"),
                None => format!("{base}/{name}"),
            };
            Self { url, _dir: None }
        };
        let out = db.ultra(&["migrate"]);
        assert!(out.status.success(), "ultra migrate failed: {}", String::from_utf8_lossy(&out.stderr));
        db
    }

    /// A fresh database with the admin and the merchant every test logs in as.
    pub async fn seeded() -> Self {
        let db = Self::new().await;
        db.create_user(
            ADMIN_EMAIL,
            Some(ADMIN_PASSWORD),
            "admin",
            &["--super-admin", "--tier", "enterprise"],
        );
        db.create_user(MERCHANT_EMAIL, Some(MERCHANT_PASSWORD), "user", &["--tier", "pro-plus"]);
        db
    }

    pub async fn connect(&self) -> DatabaseConnection {
        ultra_domain::db::connect(&self.url, 30).await.expect("connect to the test database")
    }

    /// Runs the `ultra` CLI against this database.
    pub fn ultra(&self, args: &[&str]) -> Output {
        Command::new(ultra_bin())
            .args(args)
            .env("DATABASE_URL", &self.url)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run ultra")
    }

    pub fn create_user(&self, email: &str, password: Option<&str>, role: &str, extra: &[&str]) -> String {
        let mut args = vec!["users", "create", "--email", email, "--name", "Test User", "--role", role];
        if let Some(password) = password {
            args.extend(["--password", password]);
        }
        args.extend(extra);
        let out = self.ultra(&args);
        assert!(out.status.success(), "ultra users create failed: {}", String::from_utf8_lossy(&out.stderr));
        let stdout = String::from_utf8_lossy(&out.stdout);
        stdout.split_whitespace().nth(2).expect("created user <id> <email>").to_owned()
    }
}

/// A running `ultra` process, killed when dropped.
pub struct Process {
    /// Base URL of its HTTP server, if it serves one.
    pub base: String,
    /// Base URL of its operator endpoints (`/metrics`), if it serves them.
    pub operator: String,
    pub log: PathBuf,
    pub child: Child,
}

impl Process {
    /// How many reads of one of its caches (`sessions`, `provider_configs`) an API process
    /// answered from the cache, from its operator `/metrics`.
    pub async fn cache_hits(&self, cache: &str) -> u64 {
        self.metric("cache_reads_total", &[("cache", cache), ("outcome", "hit")]).await as u64
    }

    /// The sum of the series of `name` on the process's operator `/metrics` that carry all of
    /// `labels`.
    pub async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let metrics = reqwest::get(format!("{}/metrics", self.operator)).await.unwrap().text().await.unwrap();
        metrics
            .lines()
            .filter(|line| {
                let series = line.split(' ').next().unwrap_or_default();
                series.split('{').next() == Some(name)
                    && labels.iter().all(|(label, value)| series.contains(&format!("{label}=\"{value}\"")))
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal (`TERM`, `KILL`…) without waiting.
    pub fn signal(&self, signal: &str) {
        let status =
            Command::new("kill").args(["-s", signal, &self.pid().to_string()]).status().expect("run kill");
        assert!(status.success(), "kill -s {signal} {}", self.pid());
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits up to `timeout` for the process to exit.
    pub async fn exited_within(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if !self.is_running() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `ultra <command>` against this database and Redis, logging to a temporary file.
pub fn spawn_ultra(
    command: &str,
    db: &TestDb,
    redis_url: &str,
    redis_prefix: &str,
    env: &[(&str, &str)],
) -> Process {
    let log = tempfile::NamedTempFile::new().expect("log file").keep().expect("keep log").1;
    let log_file = std::fs::File::create(&log).expect("open log");
    let mut process = Command::new(ultra_bin());
    process
        .arg(command)
        .env("DATABASE_URL", &db.url)
        .env("REDIS_URL", redis_url)
        .env("ULTRA_REDIS_PREFIX", redis_prefix)
        .env("ULTRA_JWT_SECRET", JWT_SECRET)
        .env("ULTRA_ENCRYPTION_KEY", ENCRYPTION_KEY)
        .env("RUST_LOG", "info")
        // The sandbox and the tests' receivers listen on loopback.
        .env("ULTRA_ALLOW_PRIVATE_PROVIDER_URLS", "true")
        .stdout(Stdio::from(log_file.try_clone().expect("clone log")))
        .stderr(Stdio::from(log_file));
    for (key, value) in env {
        process.env(key, value);
    }
    let child = process.spawn().expect("start ultra");
    Process { base: String::new(), operator: String::new(), log, child }
}

/// Logs in at the API on `base` and returns the token.
pub async fn login(client: &reqwest::Client, base: &str, email: &str, password: &str) -> String {
    let response = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .expect("login");
    assert_eq!(response.status(), 200, "login as {email} failed");
    let body: Value = response.json().await.expect("login body");
    body["data"]["token"].as_str().expect("token").to_owned()
}

/// The id of the user with this email, who must exist.
pub async fn user_id(db: &DatabaseConnection, email: &str) -> String {
    ultra_domain::users::find_by_email(db, email).await.expect("read the user").expect("the user exists").id
}

/// `count` completed payments of `merchant`, of about the size a real one is (a description, a
/// provider transaction id), written by the database itself: a million rows sent one
/// statement at a time would take longer than what a test or benchmark measures with them.
pub async fn store_payments(conn: &DatabaseConnection, merchant: &str, count: u64) {
    let backend = conn.get_database_backend();
    let (numbers, padded) = match backend {
        DbBackend::Postgres => ("generate_series(1, $1) AS seq(n)", "lpad(n::text, 10, '0')"),
        _ => (
            "(WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < $1) SELECT n FROM seq)",
            "substr('0000000000' || n, -10)",
        ),
    };
    let sql = format!(
        "INSERT INTO payments (id, merchant_id, provider, mode, amount_minor, currency, status, customer_phone, \
         description, reference, provider_transaction_id, refunded_minor, expires_at, completed_at, created_at, \
         updated_at) \
         SELECT 'pay_bench' || {padded}, $2, 'mvola', 'simulation', 100 * n, 'MGA', 'completed', '0340000000', \
         'Order #' || n, 'ULTBENCH' || {padded}, 'MP' || {padded}, 0, $3, $3, $3, $3 FROM {numbers}"
    );
    // SQLite numbers its parameters `?1`, PostgreSQL `$1`.
    let sql = if backend == DbBackend::Postgres { sql } else { sql.replace('$', "?") };
    let count = i64::try_from(count).expect("a count that fits");
    conn.execute_raw(Statement::from_sql_and_values(
        backend,
        sql,
        [count.into(), merchant.into(), Utc::now().into()],
    ))
    .await
    .expect("store the payments");
}

/// Figures of `pg_stat_database` for the database `db` is connected to, each an expression
/// of its columns such as `deadlocks` or `xact_commit + xact_rollback`. Statistics reach the
/// shared view when a backend's transaction ends, at most a second late, so this waits that
/// long first.
pub async fn database_stats(db: &DatabaseConnection, figures: &[&str]) -> Vec<i64> {
    tokio::time::sleep(Duration::from_millis(1500)).await;
    db.execute_unprepared("SELECT pg_stat_clear_snapshot()").await.expect("clear the statistics snapshot");
    let mut values = Vec::with_capacity(figures.len());
    for figure in figures {
        let sql = format!(
            "SELECT ({figure})::bigint AS n FROM pg_stat_database WHERE datname = current_database()"
        );
        let row = db
            .query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
            .await
            .expect("pg_stat_database");
        values
            .push(row.and_then(|row| row.try_get::<i64>("", "n").ok()).expect("this database's statistics"));
    }
    values
}

/// A test's world: a database with an admin and a merchant, and one API process.
pub struct TestApp {
    pub db: TestDb,
    pub api: Process,
    pub redis_prefix: String,
    pub client: reqwest::Client,
}

impl TestApp {
    pub async fn spawn() -> Self {
        let db = TestDb::seeded().await;
        let redis_prefix = unique("test:") + ":";
        let api = start_api(&db, &redis_prefix, &[]).await;
        Self { db, api, redis_prefix, client: reqwest::Client::new() }
    }

    /// Another API replica on the same database and Redis.
    pub async fn replica(&self) -> Process {
        start_api(&self.db, &self.redis_prefix, &[]).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api.base)
    }

    /// POSTs a JSON body without credentials.
    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client.post(self.url(path)).json(body).send().await.expect("request")
    }

    pub async fn login(&self, email: &str, password: &str) -> String {
        login(&self.client, &self.api.base, email, password).await
    }

    /// `PUT /api/v1/admin/providers/{provider}` as the super admin, which must succeed.
    pub async fn configure_provider(&self, provider: &str, config: &Value) {
        let response = self
            .client
            .put(self.url(&format!("/api/v1/admin/providers/{provider}")))
            .bearer_auth(self.admin_token().await)
            .json(config)
            .send()
            .await
            .expect("configure provider");
        assert_eq!(
            response.status(),
            200,
            "configure {provider}: {}",
            response.text().await.unwrap_or_default()
        );
    }

    pub async fn admin_token(&self) -> String {
        self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await
    }
}

pub async fn start_api(db: &TestDb, redis_prefix: &str, env: &[(&str, &str)]) -> Process {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let addr = format!("127.0.0.1:{port}");
    let operator = format!("127.0.0.1:{}", free_port());
    let mut all_env = vec![
        ("ULTRA_API_ADDR", addr.as_str()),
        ("ULTRA_PUBLIC_URL", base.as_str()),
        ("ULTRA_API_OPERATOR_ADDR", operator.as_str()),
    ];
    all_env.extend_from_slice(env);
    let redis = redis_url();
    let redis = all_env.iter().find(|(k, _)| *k == "REDIS_URL").map_or(redis.as_str(), |(_, v)| v);
    let mut process = spawn_ultra("api", db, redis, redis_prefix, &all_env);
    process.base = base;
    process.operator = format!("http://{operator}");
    wait_ready(&mut process.child, &format!("{}/readyz", process.base), &process.log).await;
    process
}

/// Starts `ultra worker`; ready once its `/readyz` answers.
pub async fn start_worker(db: &TestDb, redis_url: &str, redis_prefix: &str, env: &[(&str, &str)]) -> Process {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut all_env = vec![
        ("ULTRA_WORKER_ADDR", addr.as_str()),
        ("ULTRA_WORKER_HEARTBEAT_SECONDS", "1"),
        ("ULTRA_WORKER_MISSED_HEARTBEATS", "3"),
    ];
    all_env.extend_from_slice(env);
    let mut process = spawn_ultra("worker", db, redis_url, redis_prefix, &all_env);
    process.base = format!("http://{addr}");
    process.operator = process.base.clone();
    wait_ready(&mut process.child, &format!("{}/readyz", process.base), &process.log).await;
    process
}

/// Starts `ultra scheduler`; ready once it logs so.
pub async fn start_scheduler(
    db: &TestDb,
    redis_url: &str,
    redis_prefix: &str,
    env: &[(&str, &str)],
) -> Process {
    let mut all_env = vec![
        ("ULTRA_RELAY_INTERVAL_MS", "200"),
        ("ULTRA_RELAY_GRACE_SECONDS", "1"),
        ("ULTRA_SCHEDULER_LEASE_SECONDS", "2"),
    ];
    all_env.extend_from_slice(env);
    let mut process = spawn_ultra("scheduler", db, redis_url, redis_prefix, &all_env);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !process.log_text().contains("scheduler ready") {
        assert!(process.is_running(), "ultra scheduler exited: {}", process.log_text());
        assert!(Instant::now() < deadline, "scheduler not ready: {}", process.log_text());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    process
}

/// Polls `url` until it answers 200, failing with the process's log if it exits or stalls.
pub async fn wait_ready(child: &mut Child, url: &str, log: &std::path::Path) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("ultra exited with {status}: {}", std::fs::read_to_string(log).unwrap_or_default());
        }
        if let Ok(response) = client.get(url).send().await
            && response.status() == 200
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{url} not ready: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A `redis-server` of the test's own, for tests that flush, stall or stop Redis.
pub struct OwnRedis {
    pub url: String,
    pub port: u16,
    child: Child,
}

impl OwnRedis {
    pub async fn start() -> Self {
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--enable-debug-command", "yes"])
            .stdout(Stdio::null())
            .spawn()
            .expect("start a redis-server");
        let redis = Self { url: format!("redis://127.0.0.1:{port}"), port, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while redis.cli(&["PING"]).trim() != "PONG" {
            assert!(Instant::now() < deadline, "redis-server did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        redis
    }

    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts a fresh, empty server on the same port after [`OwnRedis::stop`]: a Redis that
    /// restarted and kept nothing.
    pub async fn restart(&mut self) {
        self.stop();
        self.child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("restart the redis-server");
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.cli(&["PING"]).trim() != "PONG" {
            assert!(Instant::now() < deadline, "redis-server did not restart");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The job pipeline seen from a test: enqueue through the one enqueue path, read job rows.
pub struct Jobs {
    pub db: DatabaseConnection,
    pub queue: ultra_jobs::QueueClient,
}

impl Jobs {
    pub async fn connect(db: &TestDb, redis_url: &str, redis_prefix: &str) -> Self {
        let redis = ultra_domain::redis_conn::connect(redis_url).await.expect("connect to Redis");
        Self { db: db.connect().await, queue: ultra_jobs::QueueClient::new(redis, redis_prefix) }
    }

    /// Enqueues probes in one transaction and pushes them after commit; returns their ids.
    pub async fn enqueue_probes(
        &self,
        probe: &Probe,
        count: usize,
        owner: Option<&str>,
        max_attempts: Option<i32>,
    ) -> Vec<String> {
        let txn = ultra_domain::db::begin_write(&self.db).await.expect("begin");
        let mut enqueued = Vec::with_capacity(count);
        for _ in 0..count {
            let mut new = ultra_jobs::NewJob::new(probe);
            if let Some(owner) = owner {
                new = new.owner(owner);
            }
            if let Some(max) = max_attempts {
                new = new.max_attempts(max);
            }
            enqueued.push(ultra_jobs::enqueue(&txn, new).await.expect("enqueue"));
        }
        txn.commit().await.expect("commit");
        let ids = enqueued.iter().map(|e| e.job.id.clone()).collect();
        ultra_jobs::enqueue::dispatch_all(&self.queue, &enqueued).await;
        ids
    }

    pub async fn enqueue_probe(
        &self,
        probe: &Probe,
        owner: Option<&str>,
        max_attempts: Option<i32>,
    ) -> String {
        self.enqueue_probes(probe, 1, owner, max_attempts).await.remove(0)
    }

    pub async fn job(&self, id: &str) -> jobs::Model {
        jobs::Entity::find_by_id(id).one(&self.db).await.expect("read job").expect("job exists")
    }

    /// Waits until the job reaches a terminal state, failing after `timeout`.
    pub async fn finished(&self, id: &str, timeout: Duration) -> jobs::Model {
        let deadline = Instant::now() + timeout;
        loop {
            let job = self.job(id).await;
            if job.status.is_terminal() {
                return job;
            }
            assert!(Instant::now() < deadline, "job {id} still {:?} after {timeout:?}", job.status);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// How many jobs have the given status.
    pub async fn count(&self, status: JobStatus) -> u64 {
        jobs::Entity::find()
            .filter(jobs::Column::Status.eq(status))
            .count(&self.db)
            .await
            .expect("count jobs")
    }

    /// How many times probes' effects were committed, per job id.
    pub async fn probe_effects(&self) -> std::collections::HashMap<String, usize> {
        let rows = audit_logs::Entity::find()
            .filter(audit_logs::Column::Action.eq(PROBE_AUDIT_ACTION))
            .all(&self.db)
            .await
            .expect("read audit logs");
        let mut effects = std::collections::HashMap::new();
        for row in rows {
            *effects.entry(row.entity_id.unwrap_or_default()).or_default() += 1;
        }
        effects
    }
}

/// How fast the test sandbox's simulated customers act, and how long its "timeout" numbers hang.
pub const SANDBOX_SETTLE_MS: &str = "300";
pub const SANDBOX_STALL_MS: &str = "4000";
/// Workers in tests give up on a provider call after this long, well inside the stall.
pub const PROVIDER_TIMEOUT_MS: &str = "1500";

/// Starts `ultra sandbox` on a free port, sending Airtel's callbacks and OnePipe's
/// notifications, whose destinations are set once per app, to the API at `api_base`.
pub async fn start_sandbox(db: &TestDb, api_base: &str) -> Process {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let airtel_callback = format!("{api_base}/api/v1/callbacks/airtel");
    let onepipe_webhook = format!("{api_base}/api/v1/callbacks/onepipe");
    let env = [
        ("ULTRA_SANDBOX_ADDR", addr.as_str()),
        ("ULTRA_SANDBOX_AIRTEL_CALLBACK_URL", airtel_callback.as_str()),
        ("ULTRA_SANDBOX_ONEPIPE_WEBHOOK_URL", onepipe_webhook.as_str()),
        ("ULTRA_SANDBOX_SETTLE_MS", SANDBOX_SETTLE_MS),
        ("ULTRA_SANDBOX_STALL_MS", SANDBOX_STALL_MS),
    ];
    let mut process = spawn_ultra("sandbox", db, &redis_url(), "sandbox:", &env);
    process.base = format!("http://{addr}");
    wait_ready(&mut process.child, &format!("{}/healthz", process.base), &process.log).await;
    process
}

/// The settings that point each provider at the sandbox, in live mode.
pub fn live_config(provider: &str, sandbox: &str) -> Value {
    let mut config = match provider {
        "mvola" => json!({ "consumerKey": "ultra-sandbox", "consumerSecret": "ultra-sandbox-secret",
                           "merchantMsisdn": "0343500004", "partnerName": "Ultra Test" }),
        "airtel" => json!({ "clientId": "ultra-sandbox", "clientSecret": "ultra-sandbox-secret",
                            "country": "MG", "currency": "MGA" }),
        "orange" => json!({ "clientId": "ultra-sandbox", "clientSecret": "ultra-sandbox-secret",
                            "merchantKey": "0a1b2c3d", "countrySegment": "mg", "currency": "MGA" }),
        "mpesa" => json!({ "consumerKey": "ultra-sandbox", "consumerSecret": "ultra-sandbox-secret",
                           "shortcode": "174379",
                           "passkey": "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919",
                           "b2cShortcode": "600000", "initiatorName": "testapi",
                           "securityCredential": "sandbox-credential" }),
        "bank" => json!({ "clientId": "ultra-sandbox", "clientSecret": "ultra-sandbox-secret" }),
        "vtpass" => json!({ "apiKey": "ultra-sandbox", "publicKey": "ultra-sandbox",
                            "secretKey": "ultra-sandbox-secret" }),
        "onepipe" => json!({ "apiKey": "ultra-sandbox", "clientSecret": "ultra-sandbox-secret" }),
        "meta" | "tiktok" => json!({ "clientId": "ultra-sandbox", "clientSecret": "ultra-sandbox-secret" }),
        other => panic!("no provider {other}"),
    };
    config["mode"] = json!("live");
    // VTpass serves its API under `/api`, and the social platforms under their own prefixes.
    config["baseUrl"] = json!(match provider {
        "vtpass" | "meta" | "tiktok" => {
            format!("{sandbox}/{}", if provider == "vtpass" { "api" } else { provider })
        }
        _ => sandbox.to_owned(),
    });
    config
}

/// An app with a sandbox, a worker whose callbacks point at the API, and every provider
/// configured globally in live mode against the sandbox.
pub struct LiveWorld {
    pub app: TestApp,
    pub sandbox: Process,
    pub worker: Process,
    pub merchant: String,
    pub admin: String,
}

impl LiveWorld {
    pub async fn start() -> Self {
        Self::start_with(&["mvola", "airtel", "orange"]).await
    }

    /// A world where only `providers` are configured.
    pub async fn start_with(providers: &[&str]) -> Self {
        let app = TestApp::spawn().await;
        let sandbox = start_sandbox(&app.db, &app.api.base).await;
        let worker = start_live_worker(&app).await;
        let admin = app.admin_token().await;
        for provider in providers {
            let response = app
                .client
                .put(app.url(&format!("/api/v1/admin/providers/{provider}")))
                .bearer_auth(&admin)
                .json(&live_config(provider, &sandbox.base))
                .send()
                .await
                .expect("configure provider");
            assert_eq!(response.status(), 200, "configure {provider}: {}", response.text().await.unwrap());
        }
        let merchant = app.login(MERCHANT_EMAIL, MERCHANT_PASSWORD).await;
        Self { app, sandbox, worker, merchant, admin }
    }

    /// `POST /api/v1/payments` as the merchant.
    pub async fn pay(&self, provider: &str, amount: &str, phone: &str, wait: Option<u64>) -> (u16, Value) {
        let mut request = self
            .app
            .client
            .post(self.app.url("/api/v1/payments"))
            .bearer_auth(&self.merchant)
            .json(&json!({ "provider": provider, "amount": amount, "customerPhone": phone }));
        if let Some(seconds) = wait {
            request = request.header("Prefer", format!("wait={seconds}"));
        }
        let response = request.send().await.expect("create payment");
        let status = response.status().as_u16();
        (status, response.json().await.expect("payment body"))
    }

    pub async fn payment(&self, id: &str) -> Value {
        let response = self
            .app
            .client
            .get(self.app.url(&format!("/api/v1/payments/{id}")))
            .bearer_auth(&self.merchant)
            .send()
            .await
            .expect("get payment");
        assert_eq!(response.status(), 200);
        response.json::<Value>().await.expect("payment body")["data"].clone()
    }

    /// Waits until the payment satisfies `done`, failing with the worker's log after `limit`.
    pub async fn payment_until(&self, id: &str, limit: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let payment = self.payment(id).await;
            if done(&payment) {
                return payment;
            }
            assert!(
                Instant::now() < deadline,
                "payment {id} stayed {payment}\nworker log:\n{}",
                self.worker.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the payment leaves `pending`.
    pub async fn settled(&self, id: &str) -> Value {
        self.payment_until(id, Duration::from_secs(30), |p| p["status"] != "pending").await
    }

    /// What the sandbox recorded under our reference.
    pub async fn sandbox_transactions(&self, reference: &str) -> Vec<Value> {
        self.sandbox_listing(&format!("reference={reference}")).await
    }

    /// What the sandbox recorded for one provider (`mpesa`, `mpesa-b2c`, `bank`, `vtpass`, …).
    pub async fn sandbox_provider(&self, provider: &str) -> Vec<Value> {
        self.sandbox_listing(&format!("provider={provider}")).await
    }

    async fn sandbox_listing(&self, filter: &str) -> Vec<Value> {
        let url = format!("{}/_sandbox/transactions?{filter}", self.sandbox.base);
        let body: Value = self.app.client.get(url).send().await.expect("sandbox").json().await.expect("json");
        body.as_array().cloned().unwrap_or_default()
    }
}

/// A worker that hands providers callback URLs on `app`'s API and gives up on slow providers
/// quickly.
pub async fn start_live_worker(app: &TestApp) -> Process {
    start_worker(
        &app.db,
        &redis_url(),
        &app.redis_prefix,
        &[("ULTRA_PUBLIC_URL", app.api.base.as_str()), ("ULTRA_PROVIDER_TIMEOUT_MS", PROVIDER_TIMEOUT_MS)],
    )
    .await
}

/// Every ledger account's balance in `currency` summed: zero when every movement was
/// double-entered and every stored balance agrees with its postings.
pub async fn ledger_sum(db: &TestDb, currency: &str) -> i64 {
    let db = db.connect().await;
    let accounts = ledger_accounts::Entity::find()
        .filter(ledger_accounts::Column::Currency.eq(currency))
        .all(&db)
        .await
        .expect("ledger accounts");
    let mut sum = 0;
    for account in accounts {
        sum += ultra_domain::ledger::balance(&db, &account.id).await.expect("balance");
    }
    sum
}
