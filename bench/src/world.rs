//! A fresh Ultra to load: its own database (PostgreSQL unless `ULTRA_TEST_DB=sqlite`), its own
//! Redis prefix, an admin and a merchant, and the real `ultra` processes, quiet.

use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use ultra_domain::runtime_config::RuntimeConfig;
use ultra_tests::{
    ADMIN_EMAIL, ADMIN_PASSWORD, MERCHANT_EMAIL, MERCHANT_PASSWORD, Process, TestDb, login, redis_url,
    start_api, start_scheduler, start_worker,
};

/// Logs at `warn`, as a loaded production process would: per-request logs would be measured
/// otherwise.
pub const QUIET: (&str, &str) = ("RUST_LOG", "warn");

pub struct World {
    pub db: TestDb,
    pub prefix: String,
    pub api: Process,
    pub client: reqwest::Client,
    pub merchant: String,
    pub admin: String,
}

impl World {
    /// `runtime` is set in runtime config before the API starts.
    pub async fn start(runtime: &[(&str, Value)]) -> Self {
        let db = TestDb::new().await;
        db.create_user(
            ADMIN_EMAIL,
            Some(ADMIN_PASSWORD),
            "admin",
            &["--super-admin", "--tier", "enterprise"],
        );
        db.create_user(MERCHANT_EMAIL, Some(MERCHANT_PASSWORD), "user", &["--tier", "pro-plus"]);
        let conn = db.connect().await;
        // The per-tier rate limits would otherwise be what is measured.
        let unlimited = json!({ "limit": 1_000_000_000u64, "windowSeconds": 60 });
        let tier = json!({ "payments": unlimited, "requests": unlimited });
        let every_tier = json!({ "starter": tier, "pro": tier, "pro_plus": tier, "enterprise": tier });
        RuntimeConfig::set(&conn, "rateLimits", every_tier, None).await.expect("runtime config");
        for (key, value) in runtime {
            RuntimeConfig::set(&conn, key, value.clone(), None).await.expect("runtime config");
        }
        let prefix = format!("bench:{}:", ulid::Ulid::new().to_string().to_lowercase());
        let api = start_api(&db, &prefix, &[QUIET]).await;
        let client = reqwest::Client::new();
        let merchant = login(&client, &api.base, MERCHANT_EMAIL, MERCHANT_PASSWORD).await;
        let admin = login(&client, &api.base, ADMIN_EMAIL, ADMIN_PASSWORD).await;
        Self { db, prefix, api, client, merchant, admin }
    }

    /// Refreshes the planner's statistics after a load was written, as autovacuum's analyze
    /// does in a running install. Without them (this machine's PostgreSQL runs with autovacuum
    /// off) a freshly filled table is planned as if it were empty, and a claim of 32 rows by
    /// id scans the whole table.
    pub async fn analyze(&self) {
        if std::env::var("ULTRA_TEST_DB").as_deref() != Ok("sqlite") {
            self.db.connect().await.execute_unprepared("ANALYZE").await.expect("ANALYZE");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api.base)
    }

    pub async fn worker(&self, env: &[(&str, &str)]) -> Process {
        let mut all = vec![QUIET];
        all.extend_from_slice(env);
        start_worker(&self.db, &redis_url(), &self.prefix, &all).await
    }

    /// The scheduler says it is ready at `info`, which is all it logs at that level.
    pub async fn scheduler(&self) -> Process {
        start_scheduler(&self.db, &redis_url(), &self.prefix, &[("RUST_LOG", "warn,ultra_scheduler=info")])
            .await
    }

    /// `PUT` as `token`, failing loudly: a benchmark on a half-configured world means nothing.
    pub async fn put(&self, token: &str, path: &str, body: Value) {
        let response =
            self.client.put(self.url(path)).bearer_auth(token).json(&body).send().await.expect("PUT");
        assert!(response.status().is_success(), "PUT {path}: {}", response.text().await.unwrap_or_default());
    }

    pub async fn post(&self, token: &str, path: &str, body: Value) -> Value {
        let response =
            self.client.post(self.url(path)).bearer_auth(token).json(&body).send().await.expect("POST");
        let status = response.status();
        let body: Value = response.json().await.expect("JSON answer");
        assert!(status.is_success(), "POST {path}: {status} {body}");
        body
    }
}

/// A benchmark leaves nothing behind, however it ends (a panic unwinds through here too): its
/// processes are stopped, then its database dropped and its Redis keys deleted.
impl Drop for World {
    fn drop(&mut self) {
        let _ = self.api.child.kill();
        let _ = self.api.child.wait();
        let (url, prefix) = (self.db.url.clone(), self.prefix.clone());
        tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(forget(&url, &prefix)));
    }
}

async fn forget(url: &str, prefix: &str) {
    if let Some(name) = url.rsplit_once('/').map(|(_, rest)| rest.split('?').next().unwrap_or(rest))
        && url.starts_with("postgres")
        && let Ok(admin_url) = std::env::var("ULTRA_TEST_PG_URL")
        && let Ok(admin) = sea_orm::Database::connect(&admin_url).await
    {
        if let Err(err) =
            admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await
        {
            eprintln!("could not drop the benchmark's database {name}: {err}");
        }
        let _ = admin.close().await;
    }
    let Ok(mut redis) = redis::Client::open(redis_url()).and_then(|client| client.get_connection()) else {
        eprintln!("could not reach Redis to delete the benchmark's {prefix}* keys");
        return;
    };
    let keys: Vec<String> = redis::cmd("SCAN")
        .cursor_arg(0)
        .arg("MATCH")
        .arg(format!("{prefix}*"))
        .arg("COUNT")
        .arg(10_000)
        .clone()
        .iter(&mut redis)
        .map(|keys| keys.filter_map(Result::ok).collect())
        .unwrap_or_default();
    for chunk in keys.chunks(1_000) {
        let _: redis::RedisResult<()> = redis::cmd("UNLINK").arg(chunk).query(&mut redis);
    }
}
