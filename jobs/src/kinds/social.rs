//! Social publishing's platform calls: completing a connection, publishing posts (on demand
//! and when due), renewing tokens before they lapse and revoking a disconnected account's grant.
//!
//! Every publish attempt leaves a row in the post's log with the HTTP exchanges it made
//! (secrets redacted) and its error. A platform that is down or overloaded is retried with
//! backoff; a refusal ends the post `failed`; a refused token also marks the account `expired`,
//! since only connecting it again can fix that.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ConnectionTrait, EntityTrait, TransactionTrait};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use ultra_domain::{
    audit::{self, Actor, AuditEvent},
    social::{
        accounts::{self, Connection},
        oauth_states,
        posts::{self, LogEntry, Outcome},
    },
};
use ultra_entity::{
    social_accounts::{self as account_rows, SocialAccountKind, SocialAccountStatus, SocialPlatform},
    social_posts::{self as post_rows, SocialPostStatus},
};
use ultra_providers::{
    AccountKind, AccountTokens, Platform, PostContent, ProviderError, Publication, SocialAdapter, Target,
    Transcript,
};

use super::adapters::social_adapter_for;
use crate::{
    enqueue::NewJob,
    job::{Completed, Job, JobContext, JobError},
};

/// Posts and accounts taken per scan; the next tick takes the rest.
const SCAN_BATCH: u64 = 200;

pub fn platform_of(platform: SocialPlatform) -> Platform {
    match platform {
        SocialPlatform::Meta => Platform::Meta,
        SocialPlatform::Tiktok => Platform::Tiktok,
    }
}

fn platform_label(platform: SocialPlatform) -> &'static str {
    match platform {
        SocialPlatform::Meta => "Meta",
        SocialPlatform::Tiktok => "TikTok",
    }
}

fn kind_of(kind: AccountKind) -> SocialAccountKind {
    match kind {
        AccountKind::FacebookPage => SocialAccountKind::FacebookPage,
        AccountKind::Instagram => SocialAccountKind::Instagram,
        AccountKind::Tiktok => SocialAccountKind::Tiktok,
    }
}

fn account_kind(kind: SocialAccountKind) -> AccountKind {
    match kind {
        SocialAccountKind::FacebookPage => AccountKind::FacebookPage,
        SocialAccountKind::Instagram => AccountKind::Instagram,
        SocialAccountKind::Tiktok => AccountKind::Tiktok,
    }
}

/// Where the platform sends the user back: the same URL in the authorization and in the code
/// exchange, as both platforms require.
pub fn callback_url(public_url: &str, platform: SocialPlatform) -> String {
    format!(
        "{}/api/v1/marketing/oauth/{}/callback",
        public_url.trim_end_matches('/'),
        oauth_states::platform_name(platform)
    )
}

/// The token whose lapse needs a renewal: Meta's user token (its Page tokens do not expire),
/// else the access token.
fn renewal_due_at(tokens: &AccountTokens) -> Option<DateTime<Utc>> {
    tokens.user_token_expires_at.or(tokens.access_expires_at)
}

fn seal(ctx: &JobContext, tokens: &AccountTokens) -> String {
    ctx.env.sealer.seal(&serde_json::to_vec(tokens).expect("tokens serialize"))
}

fn open(ctx: &JobContext, account: &account_rows::Model) -> Result<AccountTokens, JobError> {
    let bytes = ctx.env.sealer.open(&account.sealed_tokens)?;
    serde_json::from_slice(&bytes)
        .map_err(|err| JobError::Permanent(format!("stored tokens are unreadable: {err}")))
}

fn transcript_json(log: &Transcript) -> Option<Value> {
    (!log.0.is_empty()).then(|| serde_json::to_value(log).unwrap_or(Value::Null))
}

fn last_attempt(ctx: &JobContext) -> bool {
    ctx.attempt >= ctx.job.max_attempts
}

/// Completes an authorization: exchanges the code the platform sent back for tokens and
/// stores every account the grant can publish to.
#[derive(Debug, Serialize, Deserialize)]
pub struct ConnectAccounts {
    pub user_id: String,
    pub platform: SocialPlatform,
    /// The authorization code, sealed: job payloads are stored, codes are credentials.
    pub sealed_code: String,
}

impl Job for ConnectAccounts {
    const KIND: &'static str = "social.connect";
    const QUEUE: &'static str = "social";
    /// A code is good for one exchange, so a retry only helps when the first never arrived.
    const MAX_ATTEMPTS: i32 = 3;

    async fn run(self, ctx: JobContext) -> Result<Completed, JobError> {
        let adapter = social_adapter_for(&ctx, platform_of(self.platform), &self.user_id)
            .await?
            .map_err(|err| JobError::Permanent(err.to_string()))?;
        let code = String::from_utf8(ctx.env.sealer.open(&self.sealed_code)?)
            .map_err(|_| JobError::Permanent("the sealed code is not text".to_owned()))?;
        let redirect_uri = callback_url(&ctx.env.public_url, self.platform);
        let mut log = Transcript::default();
        let connected = match adapter.connect(&code, &redirect_uri, &mut log).await {
            Ok(connected) => connected,
            Err(err) if err.is_transient() => return Err(JobError::Provider(err)),
            Err(err) => {
                return Err(JobError::Permanent(format!(
                    "{} refused the connection: {err}",
                    platform_label(self.platform)
                )));
            }
        };
        if connected.is_empty() {
            return Err(JobError::Permanent(format!(
                "the {} grant covers no account Ultra can publish to",
                platform_label(self.platform)
            )));
        }
        let now = Utc::now();
        let rows: Vec<Connection> = connected
            .into_iter()
            .map(|account| Connection {
                user_id: self.user_id.clone(),
                platform: self.platform,
                kind: kind_of(account.kind),
                external_id: account.external_id,
                name: account.name,
                scope: account.tokens.scope.clone(),
                token_expires_at: renewal_due_at(&account.tokens),
                sealed_tokens: seal(&ctx, &account.tokens),
            })
            .collect();
        let actor = Actor { user_id: Some(self.user_id.clone()), ..Actor::default() };
        ctx.finish(move |txn| {
            Box::pin(async move {
                let mut stored = Vec::new();
                for connection in rows {
                    let account = accounts::connect(txn, connection, now).await?;
                    audit::record(
                        txn,
                        &actor,
                        AuditEvent {
                            action: "social_account.connected",
                            entity_type: "social_account",
                            entity_id: Some(&account.id),
                            details: Some(json!({ "platform": account.platform, "kind": account.kind })),
                        },
                    )
                    .await?;
                    stored.push(json!({ "id": account.id, "kind": account.kind, "name": account.name }));
                }
                Ok(json!({ "accounts": stored }))
            })
        })
        .await
    }
}

/// Publishes one post the API or the schedule claimed for this job.
#[derive(Debug, Serialize, Deserialize)]
pub struct PublishPost {
    pub post_id: String,
}

impl PublishPost {
    pub fn new_job(&self, post: &post_rows::Model, reason: &str) -> NewJob<'_, Self> {
        NewJob::new(self)
            .owner(post.user_id.clone())
            .resource("marketing/posts", post.id.clone())
            .unique_key(format!("social_post:{}:publish:{reason}", post.id))
    }
}

impl Job for PublishPost {
    const KIND: &'static str = "social.publish";
    const QUEUE: &'static str = "social";
    const MAX_ATTEMPTS: i32 = 6;
    const BASE_BACKOFF: std::time::Duration = std::time::Duration::from_secs(2);
    const MAX_BACKOFF: std::time::Duration = std::time::Duration::from_secs(300);

    async fn run(self, ctx: JobContext) -> Result<Completed, JobError> {
        let Some(post) = post_rows::Entity::find_by_id(self.post_id.as_str()).one(&ctx.db).await? else {
            return ctx.conclude(json!({ "skipped": "the post no longer exists" })).await;
        };
        if post.status != SocialPostStatus::Publishing || post.publish_job_id.as_deref() != Some(&ctx.job.id)
        {
            return ctx.conclude(json!({ "skipped": "the post is not this job's to publish" })).await;
        }
        let attempt = post.attempts + 1;
        let publication = Publishing { ctx: &ctx, post: &post, attempt };
        let Some(account) =
            account_rows::Entity::find_by_id(post.social_account_id.as_str()).one(&ctx.db).await?
        else {
            return publication.fail("the social account was deleted", None).await;
        };
        if account.status != SocialAccountStatus::Active {
            let why = match account.status {
                SocialAccountStatus::Revoked => "is revoked: reconnect it or publish through another account",
                _ => "has expired: the platform no longer accepts its tokens; reconnect it",
            };
            let error = format!("the {} account {} {why}", platform_label(account.platform), account.name);
            return publication.fail(&error, None).await;
        }
        if !posts::begin_attempt(&ctx.db, &post.id, &ctx.job.id).await? {
            return ctx.conclude(json!({ "skipped": "the post is not this job's to publish" })).await;
        }
        let adapter = match social_adapter_for(&ctx, platform_of(account.platform), &account.user_id).await? {
            Ok(adapter) => adapter,
            Err(err) => return publication.fail(&err.to_string(), None).await,
        };
        let mut log = Transcript::default();
        let tokens = match usable_tokens(&ctx, &adapter, &account, &mut log).await {
            Ok(tokens) => tokens,
            Err(err) => return publication.platform_error(&account, err, &log).await,
        };
        let media = posts::media_of(&post);
        let target =
            Target { kind: account_kind(account.kind), external_id: &account.external_id, tokens: &tokens };
        let content = PostContent { text: &post.content, media_urls: &media };
        match adapter.publish(&target, &content, post.publish_handle.as_deref(), &mut log).await {
            Ok(Publication::Published { post_id }) => publication.published(&post_id, &log).await,
            Ok(Publication::Processing { handle }) => {
                posts::keep_handle(&ctx.db, &post.id, &handle).await?;
                if last_attempt(&ctx) {
                    let error = "the platform was still processing the media after the last attempt";
                    return publication.fail(error, transcript_json(&log)).await;
                }
                publication.retrying("processing", "the platform is still processing the media", &log).await
            }
            Err(err) => publication.platform_error(&account, err, &log).await,
        }
    }
}

/// The account's tokens, renewed first when the access token has lapsed and can be renewed
/// (TikTok's last two hours; Meta's Page tokens do not lapse).
async fn usable_tokens(
    ctx: &JobContext,
    adapter: &SocialAdapter,
    account: &account_rows::Model,
    log: &mut Transcript,
) -> Result<AccountTokens, ProviderError> {
    let tokens = open(ctx, account).map_err(|err| ProviderError::Configuration(err.to_string()))?;
    let lapsed = tokens.access_expires_at.is_some_and(|at| at <= Utc::now() + Duration::minutes(1));
    if !lapsed || tokens.refresh_token.is_none() {
        return Ok(tokens);
    }
    let renewed = adapter.refresh(account_kind(account.kind), &tokens, log).await?;
    accounts::refreshed(&ctx.db, &account.id, seal(ctx, &renewed), renewal_due_at(&renewed), Utc::now())
        .await
        .map_err(|err| ProviderError::Unavailable(err.to_string()))?;
    Ok(renewed)
}

/// One run's hold on a post being published.
struct Publishing<'a> {
    ctx: &'a JobContext,
    post: &'a post_rows::Model,
    attempt: i32,
}

impl Publishing<'_> {
    async fn published(&self, platform_post_id: &str, log: &Transcript) -> Result<Completed, JobError> {
        let (post_id, job_id, attempt) = (self.post.id.clone(), self.ctx.job.id.clone(), self.attempt);
        let exchanges = transcript_json(log);
        let platform_post_id = platform_post_id.to_owned();
        self.ctx
            .finish(move |txn| {
                Box::pin(async move {
                    let now = Utc::now();
                    let outcome = Outcome::Published { platform_post_id: &platform_post_id };
                    if !posts::conclude(txn, &post_id, &job_id, outcome, now).await? {
                        return Ok(json!({ "skipped": "the post is not this job's to publish" }));
                    }
                    let entry = LogEntry {
                        post_id: &post_id,
                        action: "publish",
                        attempt,
                        outcome: "published",
                        exchanges,
                        error: None,
                        job_id: Some(&job_id),
                        user_id: None,
                    };
                    posts::log(txn, entry).await?;
                    record(
                        txn,
                        "social_post.published",
                        &post_id,
                        json!({ "platformPostId": platform_post_id }),
                    )
                    .await?;
                    Ok(json!({ "status": "published", "platformPostId": platform_post_id }))
                })
            })
            .await
    }

    /// Ends the post `failed` with `error`, logged with the attempt's exchanges.
    async fn fail(&self, error: &str, exchanges: Option<Value>) -> Result<Completed, JobError> {
        let (post_id, job_id, attempt) = (self.post.id.clone(), self.ctx.job.id.clone(), self.attempt);
        let error = error.to_owned();
        self.ctx
            .finish(move |txn| {
                Box::pin(async move {
                    let outcome = Outcome::Failed { error: &error };
                    if !posts::conclude(txn, &post_id, &job_id, outcome, Utc::now()).await? {
                        return Ok(json!({ "skipped": "the post is not this job's to publish" }));
                    }
                    let entry = LogEntry {
                        post_id: &post_id,
                        action: "publish",
                        attempt,
                        outcome: "failed",
                        exchanges,
                        error: Some(&error),
                        job_id: Some(&job_id),
                        user_id: None,
                    };
                    posts::log(txn, entry).await?;
                    record(txn, "social_post.failed", &post_id, json!({ "error": error })).await?;
                    Ok(json!({ "status": "failed", "error": error }))
                })
            })
            .await
    }

    /// Logs an attempt that will be tried again and hands the job back for a retry.
    async fn retrying(&self, outcome: &str, error: &str, log: &Transcript) -> Result<Completed, JobError> {
        let entry = LogEntry {
            post_id: &self.post.id,
            action: "publish",
            attempt: self.attempt,
            outcome,
            exchanges: transcript_json(log),
            error: Some(error),
            job_id: Some(&self.ctx.job.id),
            user_id: None,
        };
        posts::log(&self.ctx.db, entry).await?;
        Err(JobError::Transient(error.to_owned()))
    }

    async fn platform_error(
        &self,
        account: &account_rows::Model,
        err: ProviderError,
        log: &Transcript,
    ) -> Result<Completed, JobError> {
        let platform = platform_label(account.platform);
        match err {
            ProviderError::Credentials(reason) => {
                accounts::expire(&self.ctx.db, &account.id, &reason, Utc::now()).await?;
                let error = format!(
                    "{platform} refused the account's token ({reason}); the account is now expired: reconnect it"
                );
                self.fail(&error, transcript_json(log)).await
            }
            err if err.is_transient() && !last_attempt(self.ctx) => {
                let error = format!("{platform} is unavailable, will retry: {err}");
                self.retrying("retrying", &error, log).await
            }
            err if err.is_transient() => {
                let error = format!("{platform} was still unavailable at the last attempt: {err}");
                self.fail(&error, transcript_json(log)).await
            }
            err => self.fail(&format!("{platform} refused the post: {err}"), transcript_json(log)).await,
        }
    }
}

async fn record(
    db: &impl ConnectionTrait,
    action: &str,
    post_id: &str,
    details: Value,
) -> Result<(), JobError> {
    audit::record(
        db,
        &Actor::default(),
        AuditEvent { action, entity_type: "social_post", entity_id: Some(post_id), details: Some(details) },
    )
    .await?;
    Ok(())
}

/// Claims every scheduled post whose time has come and enqueues its publication. The claim is
/// a conditional update, and the job's unique key names the post and its time, so two
/// schedulers publish a post once. Posts whose publish job ended without settling them are
/// failed here, so none stays `publishing` for ever.
#[derive(Debug, Serialize, Deserialize)]
pub struct PublishDuePosts;

impl Job for PublishDuePosts {
    const KIND: &'static str = "social.publish_due";
    const QUEUE: &'static str = "maintenance";
    const MAX_ATTEMPTS: i32 = 3;

    async fn run(self, ctx: JobContext) -> Result<Completed, JobError> {
        let now = Utc::now();
        let due = posts::due(&ctx.db, now, SCAN_BATCH).await?;
        let stranded = posts::stranded(&ctx.db, SCAN_BATCH).await?;
        let outbox = ctx.outbox();
        ctx.finish(move |txn| {
            Box::pin(async move {
                let mut claimed = 0;
                for post in due {
                    let job = PublishPost { post_id: post.id.clone() };
                    let at = post.scheduled_at.map(|at| at.timestamp_micros()).unwrap_or_default();
                    let savepoint = txn.begin().await?;
                    let enqueued =
                        crate::enqueue::enqueue(&savepoint, job.new_job(&post, &format!("at:{at}"))).await?;
                    if posts::claim(&savepoint, &post.id, Some(now), &enqueued.job.id, now).await? {
                        savepoint.commit().await?;
                        outbox.hold(enqueued);
                        claimed += 1;
                    } else {
                        savepoint.rollback().await?;
                    }
                }
                let mut settled = 0;
                for (post, job_id, job_error) in stranded {
                    let error = format!(
                        "the publish job ended without an outcome: {}",
                        job_error.as_deref().unwrap_or("no error recorded")
                    );
                    if posts::conclude(txn, &post.id, &job_id, Outcome::Failed { error: &error }, now).await?
                    {
                        let entry = LogEntry {
                            post_id: &post.id,
                            action: "publish",
                            attempt: post.attempts,
                            outcome: "failed",
                            exchanges: None,
                            error: Some(&error),
                            job_id: Some(&job_id),
                            user_id: None,
                        };
                        posts::log(txn, entry).await?;
                        record(txn, "social_post.failed", &post.id, json!({ "error": error })).await?;
                        settled += 1;
                    }
                }
                Ok(json!({ "claimed": claimed, "failedStranded": settled }))
            })
        })
        .await
    }
}

/// Renews one account's tokens. A refusal marks the account `expired`; a platform that stays
/// down past the last attempt does too once the token has lapsed, since nothing can then be
/// published through it.
#[derive(Debug, Serialize, Deserialize)]
pub struct RefreshAccount {
    pub account_id: String,
}

impl RefreshAccount {
    pub fn new_job(&self, account: &account_rows::Model, reason: &str) -> NewJob<'_, Self> {
        NewJob::new(self)
            .owner(account.user_id.clone())
            .unique_key(format!("social_account:{}:refresh:{reason}", account.id))
    }
}

impl Job for RefreshAccount {
    const KIND: &'static str = "social.refresh";
    const QUEUE: &'static str = "social";
    const MAX_ATTEMPTS: i32 = 5;
    const BASE_BACKOFF: std::time::Duration = std::time::Duration::from_secs(5);

    async fn run(self, ctx: JobContext) -> Result<Completed, JobError> {
        let Some(account) = account_rows::Entity::find_by_id(self.account_id.as_str()).one(&ctx.db).await?
        else {
            return ctx.conclude(json!({ "skipped": "the account no longer exists" })).await;
        };
        if account.status != SocialAccountStatus::Active {
            return ctx.conclude(json!({ "skipped": "the account is not active" })).await;
        }
        let adapter = social_adapter_for(&ctx, platform_of(account.platform), &account.user_id)
            .await?
            .map_err(|err| JobError::Permanent(err.to_string()))?;
        let tokens = open(&ctx, &account)?;
        let mut log = Transcript::default();
        let refused = match adapter.refresh(account_kind(account.kind), &tokens, &mut log).await {
            Ok(renewed) => {
                let sealed = seal(&ctx, &renewed);
                let expires_at = renewal_due_at(&renewed);
                return ctx
                    .finish(move |txn| {
                        Box::pin(async move {
                            let stored =
                                accounts::refreshed(txn, &account.id, sealed, expires_at, Utc::now()).await?;
                            Ok(json!({ "refreshed": stored, "tokenExpiresAt": expires_at }))
                        })
                    })
                    .await;
            }
            Err(err) if err.is_transient() => {
                let lapsed = renewal_due_at(&tokens).is_some_and(|at| at <= Utc::now());
                if !(last_attempt(&ctx) && lapsed) {
                    return Err(JobError::Provider(err));
                }
                err.to_string()
            }
            Err(err) => err.to_string(),
        };
        let reason = format!("{} refused to renew the token: {refused}", platform_label(account.platform));
        ctx.finish(|txn| {
            Box::pin(async move {
                let expired = accounts::expire(txn, &account.id, &reason, Utc::now()).await?;
                if expired {
                    audit::record(
                        txn,
                        &Actor::default(),
                        AuditEvent {
                            action: "social_account.expired",
                            entity_type: "social_account",
                            entity_id: Some(&account.id),
                            details: Some(json!({ "reason": reason })),
                        },
                    )
                    .await?;
                }
                Ok(json!({ "expired": expired, "reason": reason }))
            })
        })
        .await
    }
}

/// Enqueues a renewal for every active account whose token lapses within its platform's
/// window; the unique key names the account and the expiry it renews.
#[derive(Debug, Serialize, Deserialize)]
pub struct RefreshDueAccounts;

impl Job for RefreshDueAccounts {
    const KIND: &'static str = "social.refresh_due";
    const QUEUE: &'static str = "maintenance";
    const MAX_ATTEMPTS: i32 = 3;

    async fn run(self, ctx: JobContext) -> Result<Completed, JobError> {
        let due = accounts::due_for_refresh(&ctx.db, Utc::now(), SCAN_BATCH).await?;
        let outbox = ctx.outbox();
        ctx.finish(|txn| {
            Box::pin(async move {
                let count = due.len();
                for account in due {
                    let expiry = account.token_expires_at.map(|at| at.timestamp()).unwrap_or_default();
                    let job = RefreshAccount { account_id: account.id.clone() };
                    outbox.enqueue(txn, job.new_job(&account, &format!("expiry:{expiry}"))).await?;
                }
                let purged = oauth_states::purge(txn, Utc::now()).await?;
                Ok(json!({ "enqueued": count, "purgedAuthorizations": purged }))
            })
        })
        .await
    }
}

/// Ends a disconnected account's grant at the platform. A Meta grant covers every Page and
/// Instagram account its user connected, so it is revoked only with the last of them.
#[derive(Debug, Serialize, Deserialize)]
pub struct RevokeAccount {
    pub account_id: String,
}

impl Job for RevokeAccount {
    const KIND: &'static str = "social.revoke";
    const QUEUE: &'static str = "social";
    const MAX_ATTEMPTS: i32 = 5;

    async fn run(self, ctx: JobContext) -> Result<Completed, JobError> {
        let Some(account) = account_rows::Entity::find_by_id(self.account_id.as_str()).one(&ctx.db).await?
        else {
            return ctx.conclude(json!({ "skipped": "the account no longer exists" })).await;
        };
        if account.status == SocialAccountStatus::Active {
            return ctx.conclude(json!({ "skipped": "the account was reconnected" })).await;
        }
        if account.platform == SocialPlatform::Meta
            && accounts::others_sharing_grant(&ctx.db, &account).await? > 0
        {
            return ctx
                .conclude(json!({ "revoked": false, "reason": "the grant still serves other accounts" }))
                .await;
        }
        let adapter = social_adapter_for(&ctx, platform_of(account.platform), &account.user_id)
            .await?
            .map_err(|err| JobError::Permanent(err.to_string()))?;
        let tokens = open(&ctx, &account)?;
        let mut log = Transcript::default();
        match adapter.revoke(&tokens, &mut log).await {
            Ok(()) => ctx.conclude(json!({ "revoked": true })).await,
            // Tokens the platform no longer knows are as revoked as they can be.
            Err(ProviderError::Credentials(reason)) => {
                ctx.conclude(json!({ "revoked": true, "note": reason })).await
            }
            Err(err) if err.is_transient() => Err(JobError::Provider(err)),
            Err(err) => Err(JobError::Permanent(err.to_string())),
        }
    }
}
