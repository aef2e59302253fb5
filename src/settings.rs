//! Command line and environment. Every setting can be given as a flag or as the environment
//! variable named beside it; `.env.example` lists them all with their defaults.

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};
use ultra_api::http::client::TrustedProxies;

#[derive(Parser)]
#[command(name = "ultra", version, about = "Ultra: mobile-money payments platform")]
pub struct Cli {
    /// Log format: `text` for people, `json` for log shippers.
    #[arg(long, env = "ULTRA_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

// Parsed once at start-up and moved into the process it starts: the size of `Dev` costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
pub enum Command {
    /// Serve the HTTP API (run `ultra migrate` first).
    Api {
        #[command(flatten)]
        db: DatabaseArgs,
        #[command(flatten)]
        redis: RedisArgs,
        #[command(flatten)]
        shared: SharedArgs,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Run a worker: consume the job queues. Run as many as the load needs.
    Worker {
        #[command(flatten)]
        db: DatabaseArgs,
        #[command(flatten)]
        redis: RedisArgs,
        #[command(flatten)]
        shared: SharedArgs,
        #[command(flatten)]
        worker: WorkerArgs,
    },
    /// Run the scheduler: cron schedules, the relay of lost jobs, and webhook dispatch.
    Scheduler {
        #[command(flatten)]
        db: DatabaseArgs,
        #[command(flatten)]
        redis: RedisArgs,
        #[command(flatten)]
        scheduler: SchedulerArgs,
    },
    /// Apply pending database migrations.
    Migrate {
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Serve the provider sandbox.
    Sandbox {
        #[command(flatten)]
        sandbox: SandboxArgs,
    },
    /// Everything in one process on the embedded SQLite database, for a laptop.
    Dev {
        #[command(flatten)]
        db: DatabaseArgs,
        #[command(flatten)]
        redis: RedisArgs,
        #[command(flatten)]
        shared: SharedArgs,
        #[command(flatten)]
        api: ApiArgs,
        #[command(flatten)]
        worker: WorkerArgs,
        #[command(flatten)]
        scheduler: SchedulerArgs,
        #[command(flatten)]
        sandbox: SandboxArgs,
    },
    /// Print the OpenAPI document.
    Openapi {
        /// The server URL written into the document.
        #[arg(long, env = "ULTRA_PUBLIC_URL", default_value = "http://127.0.0.1:8080")]
        public_url: String,
    },
    /// Manage users.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
}

#[derive(Subcommand)]
pub enum UsersCommand {
    /// Create a user, e.g. the first super-admin of a fresh install.
    Create {
        #[command(flatten)]
        db: DatabaseArgs,
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        #[arg(long, value_enum, default_value_t = RoleArg::User)]
        role: RoleArg,
        /// Omit for an account that logs in by email alone, when passwordless login is enabled.
        #[arg(long, env = "ULTRA_USER_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        #[arg(long, value_enum, default_value_t = TierArg::Starter)]
        tier: TierArg,
        #[arg(long)]
        super_admin: bool,
        #[arg(long)]
        phone: Option<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Admin,
    User,
    Customer,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum TierArg {
    Starter,
    Pro,
    ProPlus,
    Enterprise,
}

#[derive(Args, Clone)]
pub struct DatabaseArgs {
    /// PostgreSQL (`postgres://…`) or SQLite (`sqlite://file.db?mode=rwc`).
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://ultra.db?mode=rwc")]
    pub database_url: String,
    #[arg(long, env = "ULTRA_DB_MAX_CONNECTIONS", default_value_t = 20)]
    pub db_max_connections: u32,
}

#[derive(Args, Clone)]
pub struct RedisArgs {
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,
    /// Prefix of every Redis key, so that several installs can share one Redis.
    #[arg(long, env = "ULTRA_REDIS_PREFIX", default_value = "ultra:")]
    pub redis_prefix: String,
}

#[derive(Args, Clone)]
pub struct ApiArgs {
    #[arg(long, env = "ULTRA_API_ADDR", default_value = "127.0.0.1:8080")]
    pub api_addr: String,
    /// Where the API process serves /healthz, /readyz and /metrics for operators, apart from
    /// the public address; empty serves nothing.
    #[arg(long, env = "ULTRA_API_OPERATOR_ADDR", default_value = "127.0.0.1:9090")]
    pub api_operator_addr: String,
    /// HS256 signing key for JWTs, at least 32 bytes. Required by `ultra api`; `ultra dev`
    /// makes one up when it is unset.
    #[arg(long, env = "ULTRA_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Lifetime of login tokens and of the `auth_token` cookie.
    #[arg(long, env = "AUTH_COOKIE_TTL_SECONDS", default_value_t = 86_400)]
    pub auth_cookie_ttl_seconds: u64,
    /// Mark the auth cookie `Secure` (HTTPS only). `ultra dev` turns it off.
    #[arg(long, env = "AUTH_COOKIE_SECURE", action = ArgAction::Set, default_value_t = true)]
    pub auth_cookie_secure: bool,
    /// Largest request body accepted, in bytes.
    #[arg(long, env = "ULTRA_MAX_BODY_BYTES", default_value_t = 1_048_576)]
    pub max_body_bytes: usize,
    /// The proxies in front of the API whose `X-Forwarded-For` entries are believed: a hop
    /// count (`1`) or addresses and CIDR networks (`10.0.0.0/8,192.0.2.7`). Unset, the peer
    /// address is the client.
    #[arg(long, env = "ULTRA_TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: TrustedProxies,
}

#[derive(Args, Clone)]
pub struct SandboxArgs {
    #[arg(long, env = "ULTRA_SANDBOX_ADDR", default_value = "127.0.0.1:8090")]
    pub sandbox_addr: String,
    /// The one OAuth client id (MVola consumer key) the sandbox accepts, for every provider.
    #[arg(long, env = "ULTRA_SANDBOX_CLIENT_ID", default_value = "ultra-sandbox")]
    pub sandbox_client_id: String,
    #[arg(
        long,
        env = "ULTRA_SANDBOX_CLIENT_SECRET",
        default_value = "ultra-sandbox-secret",
        hide_env_values = true
    )]
    pub sandbox_client_secret: String,
    /// The WebPay merchant key Orange orders must carry (8 hex characters).
    #[arg(long, env = "ULTRA_SANDBOX_ORANGE_MERCHANT_KEY", default_value = "0a1b2c3d")]
    pub sandbox_orange_merchant_key: String,
    /// Where Airtel callbacks go: Airtel takes it once per app, not per request. Unset, Airtel
    /// sends none; `ultra dev` points it at its own API.
    #[arg(long, env = "ULTRA_SANDBOX_AIRTEL_CALLBACK_URL")]
    pub sandbox_airtel_callback_url: Option<String>,
    /// When set, Airtel callbacks carry `hash`, an HMAC-SHA256 under this key.
    #[arg(long, env = "ULTRA_SANDBOX_AIRTEL_CALLBACK_KEY", hide_env_values = true)]
    pub sandbox_airtel_callback_key: Option<String>,
    /// Where OnePipe transaction notifications go: OnePipe takes it once per app. Unset,
    /// OnePipe sends none; `ultra dev` points it at its own API.
    #[arg(long, env = "ULTRA_SANDBOX_ONEPIPE_WEBHOOK_URL")]
    pub sandbox_onepipe_webhook_url: Option<String>,
    /// How long the simulated customer takes to answer.
    #[arg(long, env = "ULTRA_SANDBOX_SETTLE_MS", default_value_t = 1000)]
    pub sandbox_settle_ms: u64,
    /// How long a stalling initiate call (test number 04) hangs before answering.
    #[arg(long, env = "ULTRA_SANDBOX_STALL_MS", default_value_t = 15000)]
    pub sandbox_stall_ms: u64,
}

impl SandboxArgs {
    pub fn config(&self) -> ultra_sandbox::SandboxConfig {
        ultra_sandbox::SandboxConfig {
            client_id: self.sandbox_client_id.clone(),
            client_secret: self.sandbox_client_secret.clone(),
            orange_merchant_key: self.sandbox_orange_merchant_key.clone(),
            airtel_callback_url: self.sandbox_airtel_callback_url.clone().filter(|url| !url.is_empty()),
            airtel_callback_key: self.sandbox_airtel_callback_key.clone().filter(|key| !key.is_empty()),
            onepipe_webhook_url: self.sandbox_onepipe_webhook_url.clone().filter(|url| !url.is_empty()),
            settle_delay: std::time::Duration::from_millis(self.sandbox_settle_ms),
            stall: std::time::Duration::from_millis(self.sandbox_stall_ms),
        }
    }
}

/// What the API and the workers both need.
#[derive(Args, Clone)]
pub struct SharedArgs {
    /// The URL clients and providers reach the API at (OpenAPI `servers`, provider callback
    /// URLs, which workers hand to providers).
    #[arg(long, env = "ULTRA_PUBLIC_URL", default_value = "http://127.0.0.1:8080")]
    pub public_url: String,
    /// AES-256 key (32 bytes, base64) sealing secrets stored in the database: provider
    /// credentials, webhook secrets, social tokens. Required by `ultra api` and `ultra worker`;
    /// `ultra dev` makes one up when it is unset and keeps it beside its database.
    #[arg(long, env = "ULTRA_ENCRYPTION_KEY", hide_env_values = true)]
    pub encryption_key: Option<String>,
    /// Lets provider configurations, and the calls workers make through them, reach loopback
    /// and private addresses, such as a local sandbox. Off, a merchant may name only a
    /// provider's published hosts and every provider call refuses non-public addresses.
    /// `ultra dev` turns it on.
    #[arg(long, env = "ULTRA_ALLOW_PRIVATE_PROVIDER_URLS", action = ArgAction::Set, default_value_t = false)]
    pub allow_private_provider_urls: bool,
}

#[derive(Args, Clone)]
pub struct WorkerArgs {
    /// How long a worker waits for a provider's answer before treating the call as lost.
    #[arg(long, env = "ULTRA_PROVIDER_TIMEOUT_MS", default_value_t = 15_000)]
    pub provider_timeout_ms: u64,
    /// Queues to consume and how many jobs of each may run at once: `name=concurrency,…`.
    #[arg(long, env = "ULTRA_WORKER_QUEUES", default_value = "default=64,payments=16,webhooks=32,maintenance=2,exports=2,social=8", value_parser = parse_queues)]
    pub worker_queues: QueueList,
    /// apalis heartbeat; a worker silent for heartbeat × missed heartbeats is presumed dead and
    /// its jobs are re-run elsewhere.
    #[arg(long, env = "ULTRA_WORKER_HEARTBEAT_SECONDS", default_value_t = 10)]
    pub worker_heartbeat_seconds: u64,
    #[arg(long, env = "ULTRA_WORKER_MISSED_HEARTBEATS", default_value_t = 6)]
    pub worker_missed_heartbeats: usize,
    /// How often an idle worker asks Redis for work.
    #[arg(long, env = "ULTRA_WORKER_POLL_MS", default_value_t = 100)]
    pub worker_poll_ms: u64,
    /// Where the worker serves /healthz, /readyz and /metrics; empty serves nothing.
    #[arg(long, env = "ULTRA_WORKER_ADDR", default_value = "127.0.0.1:9091")]
    pub worker_addr: String,
}

#[derive(Args, Clone)]
pub struct SchedulerArgs {
    /// How often the relay looks for jobs Redis lost.
    #[arg(long, env = "ULTRA_RELAY_INTERVAL_MS", default_value_t = 1000)]
    pub relay_interval_ms: u64,
    /// How far past due a job must be before the relay considers it lost.
    #[arg(long, env = "ULTRA_RELAY_GRACE_SECONDS", default_value_t = 5)]
    pub relay_grace_seconds: u64,
    /// Scheduler leadership lease; a dead leader is replaced within it.
    #[arg(long, env = "ULTRA_SCHEDULER_LEASE_SECONDS", default_value_t = 10)]
    pub scheduler_lease_seconds: u64,
    /// How often endpoints with webhook deliveries due are looked for.
    #[arg(long, env = "ULTRA_WEBHOOK_DISPATCH_INTERVAL_MS", default_value_t = 250)]
    pub webhook_dispatch_interval_ms: u64,
}

/// Queue names with their concurrency.
#[derive(Clone, Debug)]
pub struct QueueList(pub Vec<(String, usize)>);

/// Parses `default=16,maintenance=2`.
fn parse_queues(raw: &str) -> Result<QueueList, String> {
    raw.split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (name, concurrency) = part.split_once('=').unwrap_or((part, "1"));
            let concurrency: usize =
                concurrency.trim().parse().map_err(|_| format!("`{part}`: concurrency must be a number"))?;
            if name.trim().is_empty() || concurrency == 0 {
                return Err(format!("`{part}`: expected name=concurrency with concurrency ≥ 1"));
            }
            Ok((name.trim().to_owned(), concurrency))
        })
        .collect::<Result<_, _>>()
        .map(QueueList)
}
