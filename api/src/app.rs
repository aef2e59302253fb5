//! Wiring: the OpenAPI service of every surface, the middleware stack, the docs page.

use poem::{
    Endpoint, EndpointExt, IntoResponse, Route,
    http::Method,
    middleware::{CatchPanic, CookieJarManager},
};
use poem_openapi::OpenApiService;

use crate::{
    AppState,
    http::{
        error::ApiError,
        rate_limit::{IpRule, RateLimit, TokenRule},
        request_context::RequestContext,
    },
    maxtera::{
        LOGIN_PATH, REGISTER_PATH, auth::MaxteraAuthApi, purchases::MaxteraPurchasesApi,
        strip_trailing_slash, transactions::MaxteraTransactionsApi, wallet::MaxteraWalletApi,
    },
    sellapay::{
        AUTHORIZE_PATH, SellapayApi, payouts::SellapayPayoutsApi, stk::SellapayStkApi,
        transactions::SellapayTransactionsApi,
    },
    ultra::{
        admin_config::AdminConfigApi,
        admin_marketing::AdminMarketingApi,
        admin_tokens::AdminTokensApi,
        admin_users::AdminUsersApi,
        analytics::AnalyticsApi,
        api_keys::ApiKeysApi,
        audit_logs::AuditLogsApi,
        auth::{AdminAuthApi, AuthApi},
        callbacks::CallbacksApi,
        checkout::{self, CheckoutApi},
        exports::ExportsApi,
        jobs::JobsApi,
        marketing::MarketingApi,
        onboarding::OnboardingApi,
        payment_export::PaymentExportApi,
        payment_links::PaymentLinksApi,
        payments::PaymentsApi,
        platform::PlatformApi,
        providers::{AdminProvidersApi, MerchantProvidersApi},
        reconciliation::ReconciliationApi,
        refunds::RefundsApi,
        subscription_export::SubscriptionExportApi,
        subscriptions::SubscriptionsApi,
        tiers::TiersApi,
        webhooks::WebhooksApi,
    },
};

type Apis = (
    PlatformApi,
    AuthApi,
    AdminApis,
    JobsApi,
    MerchantProvidersApi,
    PaymentApis,
    CallbacksApi,
    WebhooksApi,
    ApiKeysApi,
    AnalyticsApi,
    OnboardingApi,
    MarketingApis,
    SellapayApis,
    MaxteraApis,
);

/// Social publishing, the merchant's and the super-admin's, one element of [`Apis`].
type MarketingApis = (MarketingApi, AdminMarketingApi);

/// The platform's administration, one element of [`Apis`].
type AdminApis = (
    AdminAuthApi,
    AdminUsersApi,
    AdminProvidersApi,
    AuditLogsApi,
    AdminTokensApi,
    AdminConfigApi,
    TiersApi,
    ReconciliationApi,
);

/// Payments and what is built on them (refunds, exports, payment links, subscriptions), one
/// element of [`Apis`].
type PaymentApis = (
    PaymentsApi,
    PaymentExportApi,
    RefundsApi,
    SubscriptionsApi,
    PaymentLinksApi,
    CheckoutApi,
    SubscriptionExportApi,
    ExportsApi,
);

/// The Sellapay surface's operations, one element of [`Apis`] (a tuple holds at most 16).
type SellapayApis = (SellapayApi, SellapayStkApi, SellapayPayoutsApi, SellapayTransactionsApi);

/// The Maxtera surface's operations, one element of [`Apis`].
type MaxteraApis = (MaxteraAuthApi, MaxteraWalletApi, MaxteraPurchasesApi, MaxteraTransactionsApi);

fn service(server_url: &str) -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (
            PlatformApi,
            AuthApi,
            (
                AdminAuthApi,
                AdminUsersApi,
                AdminProvidersApi,
                AuditLogsApi,
                AdminTokensApi,
                AdminConfigApi,
                TiersApi,
                ReconciliationApi,
            ),
            JobsApi,
            MerchantProvidersApi,
            (
                PaymentsApi,
                PaymentExportApi,
                RefundsApi,
                SubscriptionsApi,
                PaymentLinksApi,
                CheckoutApi,
                SubscriptionExportApi,
                ExportsApi,
            ),
            CallbacksApi,
            WebhooksApi,
            ApiKeysApi,
            AnalyticsApi,
            OnboardingApi,
            (MarketingApi, AdminMarketingApi),
            (SellapayApi, SellapayStkApi, SellapayPayoutsApi, SellapayTransactionsApi),
            (MaxteraAuthApi, MaxteraWalletApi, MaxteraPurchasesApi, MaxteraTransactionsApi),
        ),
        "Ultra",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Mobile-money payments for African merchants. Responses use the \
             `{success, data, error, meta}` envelope; asynchronous operations answer \
             202 with a job reference to poll.",
    )
    .server(server_url)
}

/// The OpenAPI document, as served at `/api/v1/openapi.json`.
pub fn openapi_spec(server_url: &str) -> String {
    service(server_url).spec()
}

/// The whole HTTP application.
pub fn route(state: AppState) -> impl Endpoint {
    let api = service(&state.config.public_url);
    let spec = api.spec_endpoint();
    let docs = api.swagger_ui();
    let login_limit = |config: &ultra_domain::runtime_config::RuntimeConfig| config.login_rate_limit;
    let authorize_limit =
        |config: &ultra_domain::runtime_config::RuntimeConfig| config.sellapay.authorize_rate_limit;
    let sellapay_limit =
        |config: &ultra_domain::runtime_config::RuntimeConfig| config.sellapay.token_rate_limit;
    let maxtera_auth_limit =
        |config: &ultra_domain::runtime_config::RuntimeConfig| config.maxtera.auth_rate_limit;
    let rate_limits = RateLimit::new(
        vec![
            IpRule { name: "login", method: Method::POST, path: "/api/v1/auth/login", rule: login_limit },
            IpRule {
                name: "login",
                method: Method::POST,
                path: "/api/v1/admin/auth/login",
                rule: login_limit,
            },
            IpRule {
                name: "sellapay-authorize",
                method: Method::POST,
                path: AUTHORIZE_PATH,
                rule: authorize_limit,
            },
            IpRule {
                name: "maxtera-auth",
                method: Method::POST,
                path: REGISTER_PATH,
                rule: maxtera_auth_limit,
            },
            IpRule { name: "maxtera-auth", method: Method::POST, path: LOGIN_PATH, rule: maxtera_auth_limit },
        ],
        vec![TokenRule {
            name: "sellapay-token",
            prefix: "/sellapay/api/v1/",
            except: &[AUTHORIZE_PATH],
            rule: sellapay_limit,
        }],
    );
    Route::new()
        .nest("/", api)
        .at("/api/v1/openapi.json", spec)
        .at("/pay/:id", poem::get(checkout::page))
        .nest("/docs", docs)
        .before(|req| async move {
            refuse_nul(&req)?;
            Ok(strip_trailing_slash(req))
        })
        .with(rate_limits)
        .with(CookieJarManager::new())
        .with(CatchPanic::new().with_handler(|_| ApiError::internal("handler panicked").into_response()))
        .data(state)
        .with(RequestContext)
}

/// PostgreSQL cannot hold NUL in text, so an id or filter carrying `%00` would fail in the
/// database; no identifier or filter of this API contains one, so it is refused up front,
/// naming the query parameter that carries it.
fn refuse_nul(req: &poem::Request) -> Result<(), ApiError> {
    if req.uri().path().contains("%00") {
        return Err(ApiError::bad_request("the URL path must not contain NUL characters (%00)"));
    }
    let query = req.uri().query().unwrap_or_default();
    if !query.contains("%00") {
        return Ok(());
    }
    let field = query
        .split('&')
        .find(|pair| pair.contains("%00"))
        .and_then(|pair| pair.split('=').next())
        .filter(|name| !name.contains("%00"))
        .unwrap_or("query");
    Err(ApiError::validation(field, "must not contain NUL characters (%00)"))
}

/// Serves the application until `shutdown` resolves, then lets in-flight requests finish.
pub async fn serve(
    state: AppState,
    addr: &str,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> std::io::Result<()> {
    tracing::info!(%addr, "api listening");
    let listener = tokio::spawn(state.caches.clone().listen(state.pubsub.clone(), state.redis.clone()));
    let served = poem::Server::new(poem::listener::TcpListener::bind(addr))
        .run_with_graceful_shutdown(route(state), shutdown, Some(std::time::Duration::from_secs(30)))
        .await;
    listener.abort();
    served
}
