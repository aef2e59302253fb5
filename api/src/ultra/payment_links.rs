//! Payment links, the merchant's side: `GET/POST payment-links`, `GET/PATCH/DELETE
//! payment-links/{id}`. What a payer sees and does with a link lives in `checkout`.
//!
//! A link's stored status lags behind time: an active link whose expiry has passed is expired
//! before the `expire-payment-links` schedule flips it. Every read here shows, filters on and
//! reasons about the effective status, never the stored one alone.

use chrono::{DateTime, Utc};
use poem::{Request, web::Data};
use poem_openapi::{
    Enum, Object, OpenApi,
    param::{Header, Path, Query},
    types::MaybeUndefined,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter,
    QuerySelect, Set,
};
use serde_json::{Value, json};
use ultra_domain::{
    audit::{self, Actor, AuditEvent},
    dates,
    db::begin_write,
    money::format_amount,
    payment_links::{self, effective_status, remaining_uses},
    provider_configs::Provider,
};
use ultra_entity::payment_links::{self as link_rows, PaymentLinkStatus};

use super::{
    ApiTags,
    payments::{ProviderName, validated_metadata, whole_ariary},
    views::Deleted,
};
use crate::{
    AppState,
    http::{
        auth::{Auth, Principal},
        client::actor,
        envelope::Reply,
        error::{ApiError, ApiResult},
        idempotency::{self, Idempotent},
        json_body::JsonBody,
        pagination::{PageRequest, paginate},
    },
};

const MAX_TITLE_CHARS: usize = 255;
/// The one currency a link can be paid in: MVola, Airtel Money and Orange Money collect Ariary.
const CURRENCY: &str = "MGA";
/// The providers a payer can choose among on a link.
pub(crate) const LINK_PROVIDERS: [ProviderName; 3] =
    [ProviderName::Mvola, ProviderName::Airtel, ProviderName::Orange];

/// `active` takes payments; `depleted` (its last allowed payment completed) and `expired` (its
/// expiry passed) are reached on their own; `disabled` only by the merchant.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "lowercase", rename = "PaymentLinkStatus")]
pub enum LinkStatus {
    Active,
    Depleted,
    Expired,
    Disabled,
}

impl From<PaymentLinkStatus> for LinkStatus {
    fn from(status: PaymentLinkStatus) -> Self {
        match status {
            PaymentLinkStatus::Active => Self::Active,
            PaymentLinkStatus::Depleted => Self::Depleted,
            PaymentLinkStatus::Expired => Self::Expired,
            PaymentLinkStatus::Disabled => Self::Disabled,
        }
    }
}

impl From<LinkStatus> for PaymentLinkStatus {
    fn from(status: LinkStatus) -> Self {
        match status {
            LinkStatus::Active => Self::Active,
            LinkStatus::Depleted => Self::Depleted,
            LinkStatus::Expired => Self::Expired,
            LinkStatus::Disabled => Self::Disabled,
        }
    }
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct CreatePaymentLinkRequest {
    /// What the payer is paying for, shown on the checkout page (1 to 255 characters).
    #[oai(validator(max_length = 1024))]
    pub title: String,
    /// Numeric string, e.g. "10000": whole Ariary.
    #[oai(validator(max_length = 18))]
    pub amount: String,
    /// Defaults to "MGA", the only currency the link's providers collect.
    #[oai(validator(max_length = 10))]
    pub currency: Option<String>,
    /// Completed payments the link accepts; null for no limit.
    pub max_uses: Option<i64>,
    /// When the link stops taking payments (RFC 3339 date-time); null for never.
    #[oai(validator(max_length = 64))]
    pub expires_at: Option<String>,
    /// The providers a payer may choose among; null for every provider the merchant has enabled.
    pub providers: Option<Vec<ProviderName>>,
    /// Arbitrary metadata, private to the merchant (at most 8 KiB of JSON).
    pub metadata: Option<Value>,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct UpdatePaymentLinkRequest {
    #[oai(validator(max_length = 1024))]
    pub title: Option<String>,
    /// `active` or `disabled`. Re-activating an expired link needs a future `expiresAt` in the
    /// same request, a depleted one a larger `maxUses`.
    pub status: Option<LinkStatus>,
    #[oai(validator(max_length = 18))]
    pub amount: Option<String>,
    /// Not below the uses already paid and being paid; equal to those paid depletes the link.
    /// Null removes the limit.
    pub max_uses: MaybeUndefined<i64>,
    /// RFC 3339 date-time; null removes the expiry.
    #[oai(validator(max_length = 64))]
    pub expires_at: MaybeUndefined<String>,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct PaymentLinkView {
    pub id: String,
    pub merchant_id: String,
    pub title: String,
    pub amount: String,
    pub currency: String,
    /// The effective status: an active link past its expiry is `expired`.
    pub status: LinkStatus,
    pub max_uses: Option<i32>,
    /// Payments completed through the link.
    pub uses_count: i32,
    /// Payments started through the link and not yet ended; each holds one of its uses.
    pub reserved_count: i32,
    /// Uses a payer can still take; null for a link without a limit.
    pub remaining_uses: Option<i32>,
    pub expires_at: Option<DateTime<Utc>>,
    /// The providers the link offers; null for every provider the merchant has enabled.
    pub providers: Option<Vec<ProviderName>>,
    pub metadata: Option<Value>,
    /// The hosted checkout page to send payers to.
    pub url: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl PaymentLinkView {
    fn of(link: link_rows::Model, public_url: &str, now: DateTime<Utc>) -> Self {
        Self {
            status: effective_status(&link, now).into(),
            remaining_uses: remaining_uses(&link),
            providers: offered_providers(&link),
            amount: format_amount(link.amount_minor),
            url: checkout_url(public_url, &link.id),
            id: link.id,
            merchant_id: link.merchant_id,
            title: link.title,
            currency: link.currency,
            max_uses: link.max_uses,
            uses_count: link.uses_count,
            reserved_count: link.reserved_count,
            expires_at: link.expires_at,
            metadata: link.metadata,
            created_at: link.created_at,
            updated_at: link.updated_at,
        }
    }
}

fn checkout_url(public_url: &str, id: &str) -> String {
    format!("{}/pay/{id}", public_url.trim_end_matches('/'))
}

/// The providers the link names, or `None` when it leaves the choice to the merchant's
/// configuration. Names no longer known are skipped rather than failing the read.
pub(crate) fn offered_providers(link: &link_rows::Model) -> Option<Vec<ProviderName>> {
    let names = link.providers.as_ref()?.as_array()?;
    Some(
        names
            .iter()
            .filter_map(Value::as_str)
            .filter_map(|name| LINK_PROVIDERS.into_iter().find(|p| Provider::from(*p).name() == name))
            .collect(),
    )
}

fn checked_title(title: &str) -> ApiResult<String> {
    let title = title.trim();
    if title.is_empty() || title.chars().count() > MAX_TITLE_CHARS {
        return Err(ApiError::validation("title", format!("must be 1 to {MAX_TITLE_CHARS} characters")));
    }
    Ok(title.to_owned())
}

fn checked_max_uses(max_uses: i64) -> ApiResult<i32> {
    i32::try_from(max_uses).ok().filter(|max| *max >= 1).ok_or_else(|| {
        ApiError::validation("maxUses", format!("must be between 1 and {}, or null for no limit", i32::MAX))
    })
}

/// Read here rather than by the request type, whose parse error would not name the field.
fn checked_expiry(expires_at: &str, now: DateTime<Utc>) -> ApiResult<DateTime<Utc>> {
    let expires_at = dates::parse("expiresAt", expires_at)?;
    if expires_at <= now {
        return Err(ApiError::validation("expiresAt", "must be in the future, or null for no expiry"));
    }
    Ok(expires_at)
}

fn checked_providers(providers: Vec<ProviderName>) -> ApiResult<Value> {
    if providers.is_empty() {
        return Err(ApiError::validation(
            "providers",
            "must name at least one provider, or be null for every provider you have enabled",
        ));
    }
    let mut names: Vec<&str> = Vec::with_capacity(providers.len());
    for provider in providers {
        let name = Provider::from(provider).name();
        if names.contains(&name) {
            return Err(ApiError::validation("providers", format!("names {name} twice")));
        }
        names.push(name);
    }
    Ok(json!(names))
}

/// The link `id` if the caller may see it; another merchant's is a 404.
async fn visible_link(
    db: &impl ConnectionTrait,
    principal: &Principal,
    id: &str,
    for_update: bool,
) -> ApiResult<link_rows::Model> {
    let mut select = link_rows::Entity::find_by_id(id);
    if for_update {
        select = select.lock_exclusive();
    }
    select
        .one(db)
        .await?
        .filter(|link| principal.may_see(&link.merchant_id))
        .ok_or_else(|| ApiError::not_found("payment link"))
}

/// Rows whose effective status is `status`.
fn status_condition(status: PaymentLinkStatus, now: DateTime<Utc>) -> Condition {
    let active = link_rows::Column::Status.eq(PaymentLinkStatus::Active);
    match status {
        PaymentLinkStatus::Active => Condition::all().add(active).add(
            Condition::any()
                .add(link_rows::Column::ExpiresAt.is_null())
                .add(link_rows::Column::ExpiresAt.gt(now)),
        ),
        PaymentLinkStatus::Expired => Condition::any()
            .add(link_rows::Column::Status.eq(PaymentLinkStatus::Expired))
            .add(Condition::all().add(active).add(link_rows::Column::ExpiresAt.lte(now))),
        other => Condition::all().add(link_rows::Column::Status.eq(other)),
    }
}

/// A PATCH applied to `link` as of `now`: the changed row, and what changed for the audit trail.
fn patched(
    link: &link_rows::Model,
    request: UpdatePaymentLinkRequest,
    now: DateTime<Utc>,
) -> ApiResult<(link_rows::ActiveModel, Value)> {
    let mut changes = serde_json::Map::new();
    let mut row = link.clone().into_active_model();
    if let Some(title) = request.title {
        let title = checked_title(&title)?;
        changes.insert("title".into(), json!(title));
        row.title = Set(title);
    }
    if let Some(amount) = request.amount {
        let minor = whole_ariary(&amount)?;
        changes.insert("amountMinor".into(), json!(minor));
        row.amount_minor = Set(minor);
    }
    let max_uses = match request.max_uses {
        MaybeUndefined::Undefined => link.max_uses,
        MaybeUndefined::Null => None,
        MaybeUndefined::Value(max) => {
            let max = checked_max_uses(max)?;
            let taken = link.uses_count + link.reserved_count;
            if max < taken {
                return Err(ApiError::validation(
                    "maxUses",
                    format!(
                        "must be at least {taken}: {} uses are paid and {} are being paid",
                        link.uses_count, link.reserved_count
                    ),
                ));
            }
            Some(max)
        }
    };
    if !request.max_uses.is_undefined() {
        changes.insert("maxUses".into(), json!(max_uses));
        row.max_uses = Set(max_uses);
    }
    let expires_at = match &request.expires_at {
        MaybeUndefined::Undefined => link.expires_at,
        MaybeUndefined::Null => None,
        MaybeUndefined::Value(at) => Some(checked_expiry(at, now)?),
    };
    if !request.expires_at.is_undefined() {
        changes.insert("expiresAt".into(), json!(expires_at));
        row.expires_at = Set(expires_at);
    }
    let used_up = max_uses.is_some_and(|max| max <= link.uses_count);
    let status = match request.status {
        Some(LinkStatus::Depleted | LinkStatus::Expired) => {
            return Err(ApiError::validation(
                "status",
                "may be set to active or disabled only: depleted and expired follow from the link's uses and expiry",
            ));
        }
        Some(LinkStatus::Disabled) => PaymentLinkStatus::Disabled,
        Some(LinkStatus::Active) => {
            if expires_at.is_some_and(|at| at <= now) {
                return Err(ApiError::validation(
                    "expiresAt",
                    "the link has expired: send a future expiresAt (or null) to re-activate it",
                ));
            }
            if used_up {
                return Err(ApiError::validation(
                    "maxUses",
                    format!(
                        "the link's {} uses are all paid: send a larger maxUses (or null) to re-activate it",
                        link.uses_count
                    ),
                ));
            }
            PaymentLinkStatus::Active
        }
        // Without a status the link keeps the one it shows, made explicit: extending the expiry
        // of an expired link or raising the limit of a depleted one does not re-open it.
        None => match effective_status(link, now) {
            PaymentLinkStatus::Active if used_up => PaymentLinkStatus::Depleted,
            current => current,
        },
    };
    if request.status.is_some() {
        changes.insert("status".into(), json!(status));
    }
    if changes.is_empty() {
        return Err(ApiError::validation(
            "body",
            "must change at least one of title, status, amount, maxUses and expiresAt",
        ));
    }
    row.status = Set(status);
    row.updated_at = Set(now);
    Ok((row, Value::Object(changes)))
}

async fn record(
    db: &impl ConnectionTrait,
    actor: &Actor,
    action: &str,
    id: &str,
    details: Value,
) -> ApiResult<()> {
    let event =
        AuditEvent { action, entity_type: "payment_link", entity_id: Some(id), details: Some(details) };
    Ok(audit::record(db, actor, event).await?)
}

pub struct PaymentLinksApi;

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::PaymentLinks")]
impl PaymentLinksApi {
    /// List payment links
    ///
    /// The merchant's own links, newest first, or every merchant's for admins (`merchantId`
    /// narrows them). `status` filters on the effective status.
    #[allow(clippy::too_many_arguments)]
    #[oai(path = "/payment-links", method = "get", operation_id = "listPaymentLinks")]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        status: Query<Option<LinkStatus>>,
        /// Filter by merchant (admins only).
        #[oai(name = "merchantId")]
        merchant_id: Query<Option<String>>,
        page: Query<Option<u64>>,
        per_page: Query<Option<u64>>,
        /// `cursor` switches to cursor pagination.
        pagination: Query<Option<String>>,
        cursor: Query<Option<String>>,
        limit: Query<Option<u64>>,
    ) -> ApiResult<Reply<Vec<PaymentLinkView>>> {
        let principal = auth.0;
        let request = PageRequest::from_query(
            page.0,
            per_page.0,
            pagination.0.as_deref(),
            cursor.0.as_deref(),
            limit.0,
        )?;
        let mut select = link_rows::Entity::find();
        if let Some(id) = principal.merchant_scope(merchant_id.0, "merchantId")? {
            select = select.filter(link_rows::Column::MerchantId.eq(id));
        }
        let now = Utc::now();
        if let Some(status) = status.0 {
            select = select.filter(status_condition(status.into(), now));
        }
        let (rows, meta) = paginate(&state.db, select, link_rows::Column::Id, |l| &l.id, &request).await?;
        let public_url = &state.config.public_url;
        Ok(Reply::with_meta(
            rows.into_iter().map(|l| PaymentLinkView::of(l, public_url, now)).collect(),
            meta,
        ))
    }

    /// Create a payment link
    ///
    /// A fixed-amount link payers open at its `url` and pay with the provider they choose.
    /// Idempotent with `Idempotency-Key`.
    #[oai(path = "/payment-links", method = "post", operation_id = "createPaymentLink")]
    async fn create(
        &self,
        req: &Request,
        state: Data<&AppState>,
        auth: Auth,
        /// Replays the first response for retries of the same request.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: Header<Option<String>>,
        body: JsonBody<CreatePaymentLinkRequest>,
    ) -> ApiResult<Reply<PaymentLinkView, 201>> {
        let principal = auth.0;
        let merchant_id = principal.merchant()?.id.clone();
        let request = body.value;
        let now = Utc::now();
        let title = checked_title(&request.title)?;
        let amount_minor = whole_ariary(&request.amount)?;
        if request.currency.as_deref().is_some_and(|currency| currency != CURRENCY) {
            return Err(ApiError::validation(
                "currency",
                "must be MGA: MVola, Airtel Money and Orange Money collect Ariary only",
            ));
        }
        let max_uses = request.max_uses.map(checked_max_uses).transpose()?;
        let expires_at = request.expires_at.as_deref().map(|at| checked_expiry(at, now)).transpose()?;
        let providers = request.providers.map(checked_providers).transpose()?;
        let metadata = validated_metadata(request.metadata)?;

        let actor = actor(req, Some(&principal.user.id));
        let public_url = state.config.public_url.clone();
        idempotency::run(
            &state,
            Idempotent {
                scope: &principal.user.id,
                key: idempotency_key.0.as_deref(),
                endpoint: "POST /api/v1/payment-links",
                fingerprint: &body.fingerprint,
            },
            move |txn| {
                Box::pin(async move {
                    let link = link_rows::ActiveModel {
                        id: Set(payment_links::new_id()),
                        merchant_id: Set(merchant_id),
                        title: Set(title),
                        amount_minor: Set(amount_minor),
                        currency: Set(CURRENCY.to_owned()),
                        max_uses: Set(max_uses),
                        uses_count: Set(0),
                        reserved_count: Set(0),
                        expires_at: Set(expires_at),
                        providers: Set(providers),
                        metadata: Set(metadata),
                        status: Set(PaymentLinkStatus::Active),
                        created_at: Set(now),
                        updated_at: Set(now),
                    }
                    .insert(txn)
                    .await?;
                    let details = json!({
                        "title": link.title,
                        "amountMinor": link.amount_minor,
                        "maxUses": link.max_uses,
                        "expiresAt": link.expires_at,
                        "providers": link.providers,
                    });
                    record(txn, &actor, "payment_link.created", &link.id, details).await?;
                    Ok(Reply::new(PaymentLinkView::of(link, &public_url, now)))
                })
            },
        )
        .await
    }

    /// Get a payment link by ID
    #[oai(path = "/payment-links/:id", method = "get", operation_id = "getPaymentLink")]
    async fn get(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
    ) -> ApiResult<Reply<PaymentLinkView>> {
        let link = visible_link(&state.db, &auth.0, &id.0, false).await?;
        Ok(Reply::new(PaymentLinkView::of(link, &state.config.public_url, Utc::now())))
    }

    /// Update a payment link
    ///
    /// Changes any of title, status, amount, maxUses and expiresAt. Payments already started
    /// keep the amount they were started with.
    #[oai(path = "/payment-links/:id", method = "patch", operation_id = "updatePaymentLink")]
    async fn update(
        &self,
        req: &Request,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
        body: JsonBody<UpdatePaymentLinkRequest>,
    ) -> ApiResult<Reply<PaymentLinkView>> {
        let principal = auth.0;
        let actor = actor(req, Some(&principal.user.id));
        // The row stays locked until commit, so a payer reserving a use meanwhile waits, and
        // the limit is checked against the uses as they are when it is written.
        let txn = begin_write(&state.db).await?;
        let link = visible_link(&txn, &principal, &id.0, true).await?;
        let now = Utc::now();
        let (row, changes) = patched(&link, body.value, now)?;
        let link = row.update(&txn).await?;
        record(&txn, &actor, "payment_link.updated", &link.id, changes).await?;
        txn.commit().await?;
        Ok(Reply::new(PaymentLinkView::of(link, &state.config.public_url, now)))
    }

    /// Delete a payment link
    ///
    /// The link stops taking payments at once; payments already made through it stay listed,
    /// and those still pending go on to their end.
    #[oai(path = "/payment-links/:id", method = "delete", operation_id = "deletePaymentLink")]
    async fn delete(
        &self,
        req: &Request,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
    ) -> ApiResult<Reply<Deleted>> {
        let principal = auth.0;
        let actor = actor(req, Some(&principal.user.id));
        let txn = begin_write(&state.db).await?;
        let link = visible_link(&txn, &principal, &id.0, true).await?;
        link_rows::Entity::delete_by_id(link.id.as_str()).exec(&txn).await?;
        let details = json!({ "title": link.title, "usesCount": link.uses_count });
        record(&txn, &actor, "payment_link.deleted", &link.id, details).await?;
        txn.commit().await?;
        Ok(Reply::new(Deleted { deleted: true }))
    }
}
