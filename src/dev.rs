//! `ultra dev`: the whole platform in one process on a local SQLite file, for a laptop.

use std::collections::BTreeMap;

use rand::{Rng, distr::Alphanumeric};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use ultra_domain::{
    provider_configs::{self, ConfigInput, GLOBAL, Provider},
    runtime_config::RuntimeConfig,
    secrets::SecretBox,
};
use ultra_entity::{
    provider_configs::ProviderMode,
    users::{self, UserRole},
};

use crate::{
    services,
    settings::{
        ApiArgs, DatabaseArgs, RedisArgs, RoleArg, SandboxArgs, SchedulerArgs, SharedArgs, TierArg,
        WorkerArgs,
    },
    shutdown, telemetry, users_cmd,
};

const ADMIN_EMAIL: &str = "admin@ultra.local";
const MERCHANT_EMAIL: &str = "merchant@ultra.local";
const DEV_KEYS_FILE: &str = "ultra-dev-keys.json";

pub async fn run(
    db: DatabaseArgs,
    redis: RedisArgs,
    mut shared: SharedArgs,
    mut api: ApiArgs,
    worker: WorkerArgs,
    scheduler: SchedulerArgs,
    sandbox: SandboxArgs,
) -> anyhow::Result<()> {
    let redis_conn = services::redis(&redis.redis_url).await?;
    let database = services::database(&db).await?;
    services::migrate(&database).await?;

    // A laptop serves plain HTTP, where a `Secure` cookie would never be sent back.
    if std::env::var_os("AUTH_COOKIE_SECURE").is_none() {
        api.auth_cookie_secure = false;
    }
    // The sandbox the seeded provider configurations point at listens on loopback.
    if std::env::var_os("ULTRA_ALLOW_PRIVATE_PROVIDER_URLS").is_none() {
        shared.allow_private_provider_urls = true;
    }
    // Providers call back on the API this process serves, wherever it was told to listen.
    if std::env::var_os("ULTRA_PUBLIC_URL").is_none() {
        shared.public_url = format!("http://{}", api.api_addr);
    }
    let keys = dev_keys(&api, &shared)?;
    seed(&database, &SecretBox::from_base64(&keys.encryption_key)?, &sandbox).await?;
    laptop_webhooks(&database).await?;
    let metrics = telemetry::init_metrics()?;
    let state = services::api_state(database.clone(), redis_conn.clone(), &keys, &api, &shared, &redis)?;
    let env = services::job_env(&shared, &keys.encryption_key, &worker)?;
    let queue = ultra_jobs::QueueClient::new(redis_conn.clone(), &redis.redis_prefix);
    let shutdown = shutdown::on_signal();
    println!(
        "\nUltra is running:\n  API      http://{}/api/v1\n  docs     http://{}/docs\n  sandbox  http://{}\n",
        api.api_addr, api.api_addr, sandbox.sandbox_addr
    );
    tokio::try_join!(
        async {
            ultra_api::serve(state, &api.api_addr, shutdown.clone().cancelled_owned())
                .await
                .map_err(anyhow::Error::from)
        },
        ultra_worker::run(
            database.clone(),
            redis_conn.clone(),
            redis::Client::open(redis.redis_url.as_str())?,
            queue.clone(),
            services::worker_settings(&worker),
            env,
            metrics,
            shutdown.clone(),
        ),
        ultra_scheduler::run(
            database.clone(),
            redis_conn.clone(),
            queue,
            services::scheduler_settings(&scheduler),
            shutdown.clone(),
        ),
        async {
            let mut config = sandbox.config();
            config
                .airtel_callback_url
                .get_or_insert_with(|| format!("http://{}/api/v1/callbacks/airtel", api.api_addr));
            config
                .onepipe_webhook_url
                .get_or_insert_with(|| format!("http://{}/api/v1/callbacks/onepipe", api.api_addr));
            ultra_sandbox::serve(&sandbox.sandbox_addr, config, shutdown.clone().cancelled_owned())
                .await
                .map_err(anyhow::Error::from)
        },
    )?;
    Ok(())
}

/// Creates an admin and a demo merchant on a database that has no admin yet, and prints their
/// passwords: they are stored only as hashes, so this is the one time they can be shown.
async fn seed(db: &DatabaseConnection, sealer: &SecretBox, sandbox: &SandboxArgs) -> anyhow::Result<()> {
    let has_admin =
        users::Entity::find().filter(users::Column::Role.eq(UserRole::Admin)).one(db).await?.is_some();
    if has_admin {
        println!(
            "Using the existing accounts (their passwords were printed when this database was created)."
        );
        return Ok(());
    }
    let admin_password = random_string(20);
    let merchant_password = random_string(20);
    users_cmd::create(
        db,
        users_cmd::Create {
            email: ADMIN_EMAIL.to_owned(),
            name: "Ultra Admin".to_owned(),
            role: RoleArg::Admin,
            password: Some(admin_password.clone()),
            tier: TierArg::Enterprise,
            super_admin: true,
            phone: None,
        },
    )
    .await?;
    let merchant = users_cmd::create(
        db,
        users_cmd::Create {
            email: MERCHANT_EMAIL.to_owned(),
            name: "Demo Merchant".to_owned(),
            role: RoleArg::User,
            password: Some(merchant_password.clone()),
            tier: TierArg::ProPlus,
            super_admin: false,
            phone: Some("0340000000".to_owned()),
        },
    )
    .await?;
    RuntimeConfig::set(db, "primaryMerchantId", serde_json::json!(merchant.id), None).await?;
    // Every provider globally in live mode against this process's own sandbox, so that a
    // first payment goes through the whole pipeline, provider protocol included.
    for provider in Provider::ALL {
        let input = ConfigInput {
            enabled: Some(true),
            mode: Some(ProviderMode::Live),
            values: sandbox_settings(provider, sandbox),
        };
        provider_configs::upsert(db, sealer, provider, GLOBAL, input, None).await?;
    }
    println!(
        "\nSeeded a fresh database. These passwords are shown only once:\n  \
         admin     {ADMIN_EMAIL:<22} {admin_password}\n  \
         merchant  {MERCHANT_EMAIL:<22} {merchant_password}\n"
    );
    Ok(())
}

/// Webhooks on a laptop go to receivers on the same laptop, and a developer watching retries
/// should see them within seconds, not hours. An operator's own setting is left alone.
async fn laptop_webhooks(db: &DatabaseConnection) -> anyhow::Result<()> {
    if ultra_entity::runtime_config::Entity::find_by_id("webhooks").one(db).await?.is_some() {
        return Ok(());
    }
    let settings = serde_json::json!({
        "allowPrivateUrls": true,
        "backoffBaseSeconds": 2,
        "backoffMaxSeconds": 60,
        "retryAfterMaxSeconds": 60,
        "maxAttempts": 6,
    });
    RuntimeConfig::set(db, "webhooks", settings, None).await?;
    Ok(())
}

/// The settings that point `provider` at the embedded sandbox, with the credentials it accepts.
fn sandbox_settings(provider: Provider, sandbox: &SandboxArgs) -> BTreeMap<String, String> {
    let base_url = match provider {
        // VTpass serves its API under `/api`, as the sandbox does.
        Provider::Vtpass => format!("http://{}/api", sandbox.sandbox_addr),
        Provider::Meta => format!("http://{}/meta", sandbox.sandbox_addr),
        Provider::Tiktok => format!("http://{}/tiktok", sandbox.sandbox_addr),
        _ => format!("http://{}", sandbox.sandbox_addr),
    };
    let client_id = sandbox.sandbox_client_id.clone();
    let secret = sandbox.sandbox_client_secret.clone();
    let pairs: Vec<(&str, String)> = match provider {
        Provider::Mvola => vec![
            ("consumerKey", client_id),
            ("consumerSecret", secret),
            ("merchantMsisdn", "0343500004".to_owned()),
            ("partnerName", "Ultra Dev".to_owned()),
        ],
        Provider::Airtel => vec![
            ("clientId", client_id),
            ("clientSecret", secret),
            ("country", "MG".to_owned()),
            ("currency", "MGA".to_owned()),
        ],
        Provider::Orange => vec![
            ("clientId", client_id),
            ("clientSecret", secret),
            ("merchantKey", sandbox.sandbox_orange_merchant_key.clone()),
            ("countrySegment", "mg".to_owned()),
            ("currency", "MGA".to_owned()),
        ],
        Provider::Mpesa => vec![
            ("consumerKey", client_id),
            ("consumerSecret", secret),
            ("shortcode", ultra_sandbox::MPESA_SHORTCODE.to_owned()),
            ("passkey", ultra_sandbox::MPESA_PASSKEY.to_owned()),
            ("b2cShortcode", "600000".to_owned()),
            ("initiatorName", "testapi".to_owned()),
            // The sandbox cannot decrypt an initiator credential, so any non-empty one does.
            ("securityCredential", "sandbox-credential".to_owned()),
        ],
        Provider::Bank => vec![("clientId", client_id), ("clientSecret", secret)],
        // The sandbox takes its client id as both VTpass's API key and its public key.
        Provider::Vtpass => {
            vec![("apiKey", client_id.clone()), ("publicKey", client_id), ("secretKey", secret)]
        }
        Provider::Onepipe => {
            vec![("apiKey", client_id), ("clientSecret", secret), ("mockMode", "Inspect".to_owned())]
        }
        Provider::Meta | Provider::Tiktok => vec![("clientId", client_id), ("clientSecret", secret)],
    };
    std::iter::once(("baseUrl".to_owned(), base_url))
        .chain(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)))
        .collect()
}

/// The keys from the environment, or else from `ultra-dev-keys.json` in the working folder,
/// made up on first start and kept there so that logins and stored secrets survive a restart.
fn dev_keys(api: &ApiArgs, shared: &SharedArgs) -> anyhow::Result<services::Keys> {
    let path = std::path::Path::new(DEV_KEYS_FILE);
    let mut stored: serde_json::Map<String, serde_json::Value> = match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)?,
        Err(_) => serde_json::Map::new(),
    };
    let mut changed = false;
    let mut pick = |from_env: &Option<String>, name: &str, generate: &dyn Fn() -> String| -> String {
        if let Some(value) = from_env {
            return value.clone();
        }
        if let Some(value) = stored.get(name).and_then(|v| v.as_str()) {
            return value.to_owned();
        }
        let value = generate();
        stored.insert(name.to_owned(), serde_json::Value::String(value.clone()));
        changed = true;
        value
    };
    let keys = services::Keys {
        jwt_secret: pick(&api.jwt_secret, "jwtSecret", &|| random_string(48)),
        encryption_key: pick(&shared.encryption_key, "encryptionKey", &SecretBox::generate_key),
    };
    if changed {
        std::fs::write(path, serde_json::to_string_pretty(&stored)?)?;
        println!("Keys for this install were written to {DEV_KEYS_FILE}; keep it with ultra.db.");
    }
    Ok(keys)
}

fn random_string(len: usize) -> String {
    rand::rng().sample_iter(&Alphanumeric).take(len).map(char::from).collect()
}
