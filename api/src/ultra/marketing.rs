//! Social publishing, the merchant's side: connecting Meta and TikTok accounts over OAuth and
//! writing, scheduling and publishing posts through them.
//!
//! The API never calls a platform itself: the OAuth code exchange, publishing, renewing and
//! revoking are jobs. The OAuth callback waits a few seconds for its exchange job so the
//! browser usually lands on the dashboard with the outcome, and with `pending` and the job
//! otherwise.

use std::time::Duration;

use chrono::{DateTime, Utc};
use poem::{
    Request,
    web::{
        Data,
        cookie::{Cookie, CookieJar, SameSite},
    },
};
use poem_openapi::{
    ApiResponse, Object, OpenApi,
    param::{Header, Path, Query},
    types::MaybeUndefined,
};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use ultra_domain::{
    DomainError,
    audit::{self, Actor, AuditEvent},
    dates,
    db::begin_write,
    provider_configs::Provider,
    social::{
        accounts, content,
        oauth_states::{self, platform_name},
        posts::{self, Edit, NewPost},
    },
};
use ultra_entity::{
    jobs::JobStatus,
    social_accounts::{self as account_rows, SocialAccountStatus, SocialPlatform},
    social_posts as post_rows,
};
use ultra_jobs::{
    enqueue,
    kinds::{
        adapters::settings_of,
        social::{ConnectAccounts, PublishPost, RefreshAccount, RevokeAccount, callback_url, platform_of},
    },
};

use super::{
    ApiTags,
    marketing_views::{AccountJob, AccountView, PlatformName, PostPublishing, PostStatus, PostView},
    payments::JobRef,
    views::Deleted,
};
use crate::{
    AppState,
    http::{
        auth::{Auth, Principal},
        client::actor,
        envelope::Reply,
        error::{ApiError, ApiResult},
        idempotency::{self, Idempotent, PendingPush},
        json_body::JsonBody,
        pagination::{PageRequest, paginate},
    },
};

/// How long the OAuth callback waits for the code exchange before sending the browser on with
/// `status=pending`.
const CALLBACK_WAIT: Duration = Duration::from_secs(10);

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct ConnectRequest {
    pub platform: PlatformName,
    /// Where the browser goes once the connection is made or refused, with `status`,
    /// `platform` and `accounts` or `error` in its query. Must be on the dashboard's origin
    /// (runtime config `marketing.frontendUrl`).
    #[oai(validator(max_length = 4096))]
    pub redirect_uri: String,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct Authorization {
    pub platform: PlatformName,
    /// Send the user's browser here.
    pub authorization_url: String,
    /// The signed, single-use `state` the URL carries.
    pub state: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(ApiResponse)]
pub enum CallbackRedirect {
    /// To the `redirectUri` given at connect, with the outcome in its query.
    #[oai(status = 302)]
    Found(#[oai(header = "Location")] String, #[oai(header = "Cache-Control")] String),
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct CreatePostRequest {
    #[oai(validator(max_length = 64))]
    pub social_account_id: String,
    /// 1 to 2,200 characters.
    #[oai(validator(max_length = 65536))]
    pub content: String,
    /// Public https URLs of the media, at most 10; Instagram and TikTok take exactly one.
    pub media_urls: Option<Vec<String>>,
    /// When to publish (RFC 3339); the post is `scheduled` with one, a `draft` without.
    #[oai(validator(max_length = 64))]
    pub scheduled_at: Option<String>,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct UpdatePostRequest {
    #[oai(validator(max_length = 65536))]
    pub content: Option<String>,
    pub media_urls: Option<Vec<String>>,
    /// A new time (the post becomes `scheduled`), or null to unschedule it back to `draft`.
    #[oai(validator(max_length = 64))]
    pub scheduled_at: MaybeUndefined<String>,
}

fn checked_time(text: &str, now: DateTime<Utc>) -> ApiResult<DateTime<Utc>> {
    let at = dates::parse("scheduledAt", text)?;
    posts::check_schedule(at, now)?;
    Ok(at)
}

fn social_provider(platform: SocialPlatform) -> Provider {
    match platform {
        SocialPlatform::Meta => Provider::Meta,
        SocialPlatform::Tiktok => Provider::Tiktok,
    }
}

/// The cookie that binds a pending authorization to the browser that started it. `Lax`, so the
/// platform's redirect back (a top-level GET) carries it; scoped to the callback routes.
fn browser_cookie(state: &AppState, id: &str, value: String) -> Cookie {
    let mut cookie = Cookie::new_with_str(id, value);
    cookie.set_http_only(true);
    cookie.set_path("/api/v1/marketing/oauth/");
    cookie.set_same_site(SameSite::Lax);
    cookie.set_secure(state.config.cookie_secure);
    cookie.set_max_age(oauth_states::LIFETIME.to_std().unwrap_or_default());
    cookie
}

/// The dashboard's origin, which every `redirectUri` must share.
async fn frontend_origin(state: &AppState) -> ApiResult<url::Origin> {
    let config = state.runtime.current().await?;
    let frontend = config.marketing.frontend_url.clone().unwrap_or_else(|| state.config.public_url.clone());
    url::Url::parse(&frontend)
        .map(|url| url.origin())
        .map_err(|_| ApiError::internal(format!("marketing.frontendUrl {frontend} is not a URL")))
}

async fn checked_redirect(state: &AppState, redirect_uri: &str) -> ApiResult<String> {
    let origin = frontend_origin(state).await?;
    let url = url::Url::parse(redirect_uri.trim())
        .map_err(|_| ApiError::validation("redirectUri", "must be an absolute URL"))?;
    if url.origin() != origin || !origin.is_tuple() {
        return Err(ApiError::validation(
            "redirectUri",
            format!("must be on the dashboard's origin {}", origin.ascii_serialization()),
        ));
    }
    Ok(url.to_string())
}

/// `redirect_uri` with the outcome appended to its query.
fn outcome_url(redirect_uri: &str, params: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(redirect_uri).expect("stored redirect URIs were checked");
    url.query_pairs_mut().extend_pairs(params);
    url.to_string()
}

async fn owned_account(
    db: &impl ConnectionTrait,
    principal: &Principal,
    id: &str,
) -> ApiResult<account_rows::Model> {
    let owner = principal.merchant()?.id.clone();
    Ok(accounts::find(db, id, Some(&owner)).await?)
}

async fn owned_post(
    db: &impl ConnectionTrait,
    principal: &Principal,
    id: &str,
) -> ApiResult<post_rows::Model> {
    let owner = &principal.merchant()?.id;
    post_rows::Entity::find_by_id(id)
        .one(db)
        .await?
        .filter(|post| &post.user_id == owner)
        .ok_or_else(|| ApiError::not_found("social post"))
}

/// The account a post goes through, refusing one that cannot publish.
async fn publishing_account(
    db: &impl ConnectionTrait,
    principal: &Principal,
    id: &str,
) -> ApiResult<account_rows::Model> {
    let owner = principal.merchant()?.id.clone();
    let account = accounts::find(db, id, Some(&owner)).await.map_err(|err| match err {
        DomainError::NotFound(_) => {
            ApiError::validation("socialAccountId", "is not one of your social accounts")
        }
        other => other.into(),
    })?;
    if account.status != SocialAccountStatus::Active {
        return Err(ApiError::conflict(
            "social_account_inactive",
            format!(
                "the account {} is {}; reconnect it to publish through it",
                account.name,
                if account.status == SocialAccountStatus::Revoked { "revoked" } else { "expired" }
            ),
        ));
    }
    Ok(account)
}

async fn record(
    db: &impl ConnectionTrait,
    actor: &Actor,
    action: &str,
    kind: &str,
    id: &str,
    details: Value,
) -> ApiResult<()> {
    audit::record(
        db,
        actor,
        AuditEvent { action, entity_type: kind, entity_id: Some(id), details: Some(details) },
    )
    .await?;
    Ok(())
}

pub struct MarketingApi;

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Marketing")]
impl MarketingApi {
    /// List connected social accounts
    #[allow(clippy::too_many_arguments)]
    #[oai(path = "/marketing/accounts", method = "get", operation_id = "listSocialAccounts")]
    async fn list_accounts(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        platform: Query<Option<PlatformName>>,
        page: Query<Option<u64>>,
        per_page: Query<Option<u64>>,
        /// `cursor` switches to cursor pagination.
        pagination: Query<Option<String>>,
        cursor: Query<Option<String>>,
        limit: Query<Option<u64>>,
    ) -> ApiResult<Reply<Vec<AccountView>>> {
        let owner = auth.0.merchant()?.id.clone();
        let request = PageRequest::from_query(
            page.0,
            per_page.0,
            pagination.0.as_deref(),
            cursor.0.as_deref(),
            limit.0,
        )?;
        let mut select = account_rows::Entity::find().filter(account_rows::Column::UserId.eq(owner));
        if let Some(platform) = platform.0 {
            select = select.filter(account_rows::Column::Platform.eq(SocialPlatform::from(platform)));
        }
        let (rows, meta) = paginate(&state.db, select, account_rows::Column::Id, |a| &a.id, &request).await?;
        Ok(Reply::with_meta(rows.into_iter().map(Into::into).collect(), meta))
    }

    /// Start OAuth connection to social platform
    ///
    /// Returns the platform's authorization URL to send the user's browser to. Its `state` is
    /// signed, good for one callback and for 15 minutes.
    #[oai(path = "/marketing/accounts/connect", method = "post", operation_id = "connectSocialAccount")]
    async fn connect(
        &self,
        req: &Request,
        state: Data<&AppState>,
        auth: Auth,
        body: JsonBody<ConnectRequest>,
    ) -> ApiResult<Reply<Authorization>> {
        let principal = auth.0;
        let owner = principal.merchant()?.id.clone();
        let request = body.value;
        let platform = SocialPlatform::from(request.platform);
        let redirect_uri = checked_redirect(&state, &request.redirect_uri).await?;
        let provider = social_provider(platform);
        let config = state
            .caches
            .provider_config(&state.db, provider, &owner)
            .await?
            .filter(|config| config.enabled)
            .ok_or_else(|| {
                ApiError::unprocessable(
                    "platform_not_configured",
                    format!(
                        "{} publishing is not set up: an admin configures it under admin/providers/{}",
                        provider.name(),
                        provider.name()
                    ),
                )
            })?;
        let settings = settings_of(&state.sealer, &config)?;
        let now = Utc::now();
        let txn = begin_write(&state.db).await?;
        let (pending, signed_state) =
            oauth_states::issue(&txn, &state.sealer, &owner, platform, &redirect_uri, now).await?;
        let callback = callback_url(&state.config.public_url, platform);
        let authorization_url =
            ultra_providers::authorize_url(platform_of(platform), &settings, &callback, &signed_state)
                .map_err(|err| ApiError::unprocessable("platform_not_configured", err.to_string()))?;
        let actor = actor(req, Some(&principal.user.id));
        record(
            &txn,
            &actor,
            "social_account.connect_started",
            "social_oauth_state",
            &pending.id,
            json!({ "platform": platform_name(platform) }),
        )
        .await?;
        txn.commit().await?;
        let binding =
            browser_cookie(&state, &pending.id, oauth_states::browser_binding(&state.sealer, &pending.id));
        Ok(Reply::new(Authorization {
            platform: request.platform,
            authorization_url,
            state: signed_state,
            expires_at: pending.expires_at,
        })
        .with_header("Set-Cookie", binding.to_string()))
    }

    /// OAuth callback handler
    ///
    /// Where the platform sends the user's browser back. A forged, replayed or expired `state`
    /// is a 400; otherwise the code is exchanged for tokens (stored encrypted) and the browser
    /// is redirected to the `redirectUri` given at connect with `status=connected` and the
    /// account ids, `status=failed` or `status=denied` with `error`, or `status=pending` and
    /// the `job` still exchanging.
    #[oai(path = "/marketing/oauth/:platform/callback", method = "get", operation_id = "socialOauthCallback")]
    #[allow(clippy::too_many_arguments)]
    async fn callback(
        &self,
        cookies: &CookieJar,
        state: Data<&AppState>,
        platform: Path<PlatformName>,
        #[oai(validator(max_length = 4096))] code: Query<Option<String>>,
        #[oai(name = "state", validator(max_length = 512))] oauth_state: Query<Option<String>>,
        /// Sent instead of `code` when the user refused.
        #[oai(validator(max_length = 512))]
        error: Query<Option<String>>,
        #[oai(validator(max_length = 2048))] error_description: Query<Option<String>>,
    ) -> ApiResult<CallbackRedirect> {
        let platform_row = SocialPlatform::from(platform.0);
        let name = platform_name(platform_row);
        let signed = oauth_state.0.ok_or_else(|| ApiError::validation("state", "is required"))?;
        let binding = oauth_states::state_id(&signed)
            .and_then(|id| cookies.get(id))
            .map(|cookie| cookie.value_str().to_owned());
        let pending = oauth_states::redeem(
            &state.db,
            &state.sealer,
            platform_row,
            &signed,
            binding.as_deref(),
            Utc::now(),
        )
        .await?;
        let redirect = |params: &[(&str, &str)]| {
            Ok(CallbackRedirect::Found(outcome_url(&pending.redirect_uri, params), "no-store".to_owned()))
        };
        if let Some(error) = error.0 {
            let reason = error_description.0.unwrap_or(error);
            return redirect(&[("status", "denied"), ("platform", name), ("error", &reason)]);
        }
        let Some(code) = code.0.filter(|code| !code.trim().is_empty()) else {
            return redirect(&[
                ("status", "failed"),
                ("platform", name),
                ("error", "the platform sent no code"),
            ]);
        };
        let connect = ConnectAccounts {
            user_id: pending.user_id.clone(),
            platform: platform_row,
            sealed_code: state.sealer.seal(code.as_bytes()),
        };
        let txn = begin_write(&state.db).await?;
        let enqueued = enqueue(
            &txn,
            ultra_jobs::NewJob::new(&connect)
                .owner(pending.user_id.clone())
                .unique_key(format!("social_oauth:{}:connect", pending.id)),
        )
        .await?;
        txn.commit().await?;
        let job_id = enqueued.job.id.clone();
        enqueued.dispatch(&state.queue).await;
        let job =
            ultra_jobs::wait::until_finished(&state.db, &state.pubsub, &state.queue, &job_id, CALLBACK_WAIT)
                .await?
                .ok_or_else(|| ApiError::internal("the connection job vanished"))?;
        match job.status {
            JobStatus::Succeeded => {
                let ids: Vec<&str> = job
                    .result
                    .as_ref()
                    .and_then(|result| result["accounts"].as_array())
                    .into_iter()
                    .flatten()
                    .filter_map(|account| account["id"].as_str())
                    .collect();
                redirect(&[("status", "connected"), ("platform", name), ("accounts", &ids.join(","))])
            }
            JobStatus::Failed | JobStatus::Dead | JobStatus::Cancelled => {
                let error = job.last_error.unwrap_or_else(|| "the connection failed".to_owned());
                redirect(&[("status", "failed"), ("platform", name), ("error", &error)])
            }
            JobStatus::Queued | JobStatus::Running => {
                redirect(&[("status", "pending"), ("platform", name), ("job", &job_id)])
            }
        }
    }

    /// Disconnect a social account
    ///
    /// Nothing is published through it any more, and its grant is revoked at the platform by a
    /// job (for Meta, with the last account the grant serves). Its posts stay listed.
    #[oai(path = "/marketing/accounts/:id", method = "delete", operation_id = "disconnectSocialAccount")]
    async fn disconnect(
        &self,
        req: &Request,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
    ) -> ApiResult<Reply<AccountJob>> {
        let principal = auth.0;
        let actor = actor(req, Some(&principal.user.id));
        let txn = begin_write(&state.db).await?;
        let account = owned_account(&txn, &principal, &id.0).await?;
        if account.status == SocialAccountStatus::Revoked {
            return Ok(Reply::new(AccountJob { account: account.into(), job: None }));
        }
        let account = accounts::disconnect(&txn, account, Utc::now()).await?;
        let revoke = RevokeAccount { account_id: account.id.clone() };
        let enqueued = enqueue(
            &txn,
            ultra_jobs::NewJob::new(&revoke).owner(account.user_id.clone()).unique_key(format!(
                "social_account:{}:revoke:{}",
                account.id,
                account.updated_at.timestamp_micros()
            )),
        )
        .await?;
        record(
            &txn,
            &actor,
            "social_account.disconnected",
            "social_account",
            &account.id,
            json!({ "platform": account.platform, "name": account.name }),
        )
        .await?;
        txn.commit().await?;
        let job = JobRef::from(&enqueued.job);
        enqueued.dispatch(&state.queue).await;
        Ok(Reply::new(AccountJob { account: account.into(), job: Some(job) }))
    }

    /// Refresh OAuth token for social account
    ///
    /// Renews the account's tokens now, in a job; the `refresh-social-tokens` schedule does it
    /// on its own before they lapse. An account whose renewal is refused becomes `expired`.
    #[oai(path = "/marketing/accounts/:id/refresh", method = "post", operation_id = "refreshSocialAccount")]
    async fn refresh(
        &self,
        req: &Request,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
    ) -> ApiResult<Reply<AccountJob, 202>> {
        let principal = auth.0;
        let actor = actor(req, Some(&principal.user.id));
        let txn = begin_write(&state.db).await?;
        let account = owned_account(&txn, &principal, &id.0).await?;
        if account.status != SocialAccountStatus::Active {
            return Err(ApiError::conflict(
                "social_account_inactive",
                "only active accounts are renewed; connect a revoked or expired account again",
            ));
        }
        let job = RefreshAccount { account_id: account.id.clone() };
        let enqueued = enqueue(
            &txn,
            job.new_job(&account, &format!("manual:{}", account.updated_at.timestamp_micros())),
        )
        .await?;
        record(&txn, &actor, "social_account.refresh_requested", "social_account", &account.id, json!({}))
            .await?;
        txn.commit().await?;
        let job = JobRef::from(&enqueued.job);
        enqueued.dispatch(&state.queue).await;
        Ok(Reply::new(AccountJob { account: account.into(), job: Some(job) }))
    }

    /// List social posts
    #[allow(clippy::too_many_arguments)]
    #[oai(path = "/marketing/posts", method = "get", operation_id = "listSocialPosts")]
    async fn list_posts(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        status: Query<Option<PostStatus>>,
        platform: Query<Option<PlatformName>>,
        #[oai(name = "socialAccountId", validator(max_length = 64))] social_account_id: Query<Option<String>>,
        page: Query<Option<u64>>,
        per_page: Query<Option<u64>>,
        /// `cursor` switches to cursor pagination.
        pagination: Query<Option<String>>,
        cursor: Query<Option<String>>,
        limit: Query<Option<u64>>,
    ) -> ApiResult<Reply<Vec<PostView>>> {
        let owner = auth.0.merchant()?.id.clone();
        let request = PageRequest::from_query(
            page.0,
            per_page.0,
            pagination.0.as_deref(),
            cursor.0.as_deref(),
            limit.0,
        )?;
        let mut select = post_rows::Entity::find().filter(post_rows::Column::UserId.eq(owner));
        if let Some(status) = status.0 {
            select = select.filter(
                post_rows::Column::Status.eq(ultra_entity::social_posts::SocialPostStatus::from(status)),
            );
        }
        if let Some(platform) = platform.0 {
            select = select.filter(post_rows::Column::Platform.eq(SocialPlatform::from(platform)));
        }
        if let Some(account) = social_account_id.0 {
            select = select.filter(post_rows::Column::SocialAccountId.eq(account));
        }
        let (rows, meta) = paginate(&state.db, select, post_rows::Column::Id, |p| &p.id, &request).await?;
        Ok(Reply::with_meta(rows.into_iter().map(Into::into).collect(), meta))
    }

    /// Create a social post
    ///
    /// Creates a draft, or a scheduled post if `scheduledAt` is given. Content and media are
    /// checked against the seed's limits and the target's own: Instagram needs one image or
    /// video and at most 30 hashtags, TikTok one video, a Facebook Page post at most one link.
    /// Idempotent with `Idempotency-Key`.
    #[oai(path = "/marketing/posts", method = "post", operation_id = "createSocialPost")]
    async fn create_post(
        &self,
        req: &Request,
        state: Data<&AppState>,
        auth: Auth,
        /// Replays the first response for retries of the same request.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: Header<Option<String>>,
        body: JsonBody<CreatePostRequest>,
    ) -> ApiResult<Reply<PostView, 201>> {
        let principal = auth.0;
        let owner = principal.merchant()?.id.clone();
        let request = body.value;
        let now = Utc::now();
        let text = content::checked_content(&request.content)?;
        let media = content::checked_media(&request.media_urls.unwrap_or_default())?;
        let scheduled_at = request.scheduled_at.as_deref().map(|at| checked_time(at, now)).transpose()?;
        let account = publishing_account(&state.db, &principal, &request.social_account_id).await?;
        content::check_for_target(account.kind, &text, &media)?;
        let actor = actor(req, Some(&principal.user.id));
        idempotency::run(
            &state,
            Idempotent {
                scope: &owner,
                key: idempotency_key.0.as_deref(),
                endpoint: "POST /api/v1/marketing/posts",
                fingerprint: &body.fingerprint,
            },
            move |txn| {
                Box::pin(async move {
                    let new = NewPost { content: text, media_urls: media, scheduled_at };
                    let post = posts::create(txn, &account, new, now).await?;
                    let details = json!({ "socialAccountId": account.id, "status": post.status, "scheduledAt": post.scheduled_at });
                    record(txn, &actor, "social_post.created", "social_post", &post.id, details).await?;
                    Ok(Reply::new(PostView::from(post)))
                })
            },
        )
        .await
    }

    /// Get post with publish logs
    #[oai(path = "/marketing/posts/:id", method = "get", operation_id = "getSocialPost")]
    async fn get_post(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
    ) -> ApiResult<Reply<PostView>> {
        let post = owned_post(&state.db, &auth.0, &id.0).await?;
        let mut logs = posts::logs(&state.db, &post.id).await?;
        // The exchanges quote the platform's answers: admins read them, merchants read the
        // outcome and Ultra's account of the error.
        if !auth.0.is_admin() {
            logs.iter_mut().for_each(|log| log.exchanges = None);
        }
        Ok(Reply::new(PostView::of(post, Some(logs))))
    }

    /// Update a draft or scheduled post
    ///
    /// Only draft or scheduled posts can be updated. A new `scheduledAt` schedules the post;
    /// null makes it a draft again.
    #[oai(path = "/marketing/posts/:id", method = "patch", operation_id = "updateSocialPost")]
    async fn update_post(
        &self,
        req: &Request,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
        body: JsonBody<UpdatePostRequest>,
    ) -> ApiResult<Reply<PostView>> {
        let principal = auth.0;
        let request = body.value;
        let now = Utc::now();
        let post = owned_post(&state.db, &principal, &id.0).await?;
        let text = match request.content {
            Some(text) => content::checked_content(&text)?,
            None => post.content.clone(),
        };
        let media = match request.media_urls {
            Some(urls) => content::checked_media(&urls)?,
            None => posts::media_of(&post),
        };
        let scheduled_at = match request.scheduled_at {
            MaybeUndefined::Undefined => post.scheduled_at,
            MaybeUndefined::Null => None,
            MaybeUndefined::Value(at) => Some(checked_time(&at, now)?),
        };
        let account = accounts::find(&state.db, &post.social_account_id, Some(&post.user_id)).await?;
        content::check_for_target(account.kind, &text, &media)?;
        let actor = actor(req, Some(&principal.user.id));
        let txn = begin_write(&state.db).await?;
        let post =
            posts::update(&txn, &post, Edit { content: text, media_urls: media, scheduled_at }, now).await?;
        record(
            &txn,
            &actor,
            "social_post.updated",
            "social_post",
            &post.id,
            json!({ "status": post.status, "scheduledAt": post.scheduled_at }),
        )
        .await?;
        txn.commit().await?;
        Ok(Reply::new(post.into()))
    }

    /// Delete a draft or scheduled post
    ///
    /// Only draft or scheduled posts can be deleted.
    #[oai(path = "/marketing/posts/:id", method = "delete", operation_id = "deleteSocialPost")]
    async fn delete_post(
        &self,
        req: &Request,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
    ) -> ApiResult<Reply<Deleted>> {
        let principal = auth.0;
        let actor = actor(req, Some(&principal.user.id));
        let txn = begin_write(&state.db).await?;
        let post = owned_post(&txn, &principal, &id.0).await?;
        posts::delete(&txn, &post).await?;
        record(
            &txn,
            &actor,
            "social_post.deleted",
            "social_post",
            &post.id,
            json!({ "status": post.status }),
        )
        .await?;
        txn.commit().await?;
        Ok(Reply::new(Deleted { deleted: true }))
    }

    /// Publish post to social platform
    ///
    /// Only draft or scheduled posts can be published. Answers 202 with the post (now
    /// `publishing`) and the job publishing it; the post ends `published` or `failed`, with
    /// every attempt in its log. Idempotent with `Idempotency-Key`.
    #[oai(path = "/marketing/posts/:id/publish", method = "post", operation_id = "publishSocialPost")]
    async fn publish(
        &self,
        req: &Request,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
        /// Replays the first response for retries of the same request.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: Header<Option<String>>,
    ) -> ApiResult<Reply<PostPublishing, 202>> {
        let principal = auth.0;
        let owner = principal.merchant()?.id.clone();
        let post = owned_post(&state.db, &principal, &id.0).await?;
        publishing_account(&state.db, &principal, &post.social_account_id).await?;
        let actor = actor(req, Some(&principal.user.id));
        let outbox = PendingPush::default();
        let pending_push = outbox.clone();
        let fingerprint = format!("publish:{}", post.id);
        let reply = idempotency::run(
            &state,
            Idempotent {
                scope: &owner,
                key: idempotency_key.0.as_deref(),
                endpoint: "POST /api/v1/marketing/posts/{id}/publish",
                fingerprint: &fingerprint,
            },
            move |txn| {
                Box::pin(async move {
                    let now = Utc::now();
                    let job = PublishPost { post_id: post.id.clone() };
                    let reason = format!("manual:{}", post.updated_at.timestamp_micros());
                    let enqueued = enqueue(txn, job.new_job(&post, &reason)).await?;
                    if !posts::claim(txn, &post.id, None, &enqueued.job.id, now).await? {
                        let current = post_rows::Entity::find_by_id(post.id.as_str()).one(txn).await?;
                        let status = current.map_or("deleted", |p| posts::status_name(p.status));
                        return Err(ApiError::conflict(
                            "social_post_not_publishable",
                            format!("only draft or scheduled posts can be published; this post is {status}"),
                        ));
                    }
                    record(
                        txn,
                        &actor,
                        "social_post.publish_requested",
                        "social_post",
                        &post.id,
                        json!({ "jobId": enqueued.job.id }),
                    )
                    .await?;
                    let post = post_rows::Entity::find_by_id(post.id.as_str())
                        .one(txn)
                        .await?
                        .ok_or_else(|| ApiError::not_found("social post"))?;
                    let job = JobRef::from(&enqueued.job);
                    pending_push.hold(enqueued);
                    Ok(Reply::new(PostPublishing { post: post.into(), job }))
                })
            },
        )
        .await?;
        outbox.dispatch(&state.queue).await;
        Ok(reply)
    }

    /// Cancel a scheduled post
    ///
    /// Reverts a scheduled post back to draft status.
    #[oai(path = "/marketing/posts/:id/cancel", method = "post", operation_id = "cancelSocialPost")]
    async fn cancel(
        &self,
        req: &Request,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
    ) -> ApiResult<Reply<PostView>> {
        let principal = auth.0;
        let actor = actor(req, Some(&principal.user.id));
        let txn = begin_write(&state.db).await?;
        let post = owned_post(&txn, &principal, &id.0).await?;
        let post = posts::cancel(&txn, &post, &principal.user.id, Utc::now()).await?;
        record(&txn, &actor, "social_post.cancelled", "social_post", &post.id, json!({})).await?;
        txn.commit().await?;
        Ok(Reply::new(post.into()))
    }
}
