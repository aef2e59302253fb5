//! Attacks a hostile merchant, payer or network peer could try, each stopped at its root.

use std::time::Duration;

use serde_json::{Value, json};
use ultra_tests::{LiveWorld, live_config};

/// A merchant who knows the platform's MVola consumer key, but not its secret, configures
/// their own MVola with that key and any secret. The platform's token was cached under the
/// provider, base URL and key alone, so the merchant's payments went through the platform's
/// account; tokens are now cached under the whole credential, and the wrong secret is refused.
#[tokio::test]
async fn a_merchant_with_the_platforms_client_id_and_a_wrong_secret_never_collects() {
    let world = LiveWorld::start_with(&["mvola"]).await;
    // The platform's own configuration collects, and its token is cached.
    let (_, body) = world.pay("mvola", "1000", "0340000000", Some(5)).await;
    let id = body["data"]["id"].as_str().unwrap().to_owned();
    assert_eq!(world.settled(&id).await["status"], "completed");

    let mut forged = live_config("mvola", &world.sandbox.base);
    forged["consumerSecret"] = json!("a-secret-the-attacker-made-up");
    let response = world
        .app
        .client
        .put(world.app.url("/api/v1/merchant/providers/mvola"))
        .bearer_auth(&world.merchant)
        .json(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    // The API keeps provider configurations per replica; the worker reads them at call time.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let (status, body) = world.pay("mvola", "2000", "0340000000", None).await;
    assert_eq!(status, 202, "{body}");
    let id = body["data"]["id"].as_str().unwrap().to_owned();
    let payment: Value = world.settled(&id).await;
    assert_eq!(payment["status"], "failed", "collected through the platform's account: {payment}");
    let reference = payment["reference"].as_str().unwrap();
    assert!(world.sandbox_transactions(reference).await.is_empty(), "MVola never saw the forged collection");
}

/// Anyone may post to the provider callback routes, which read their JSON whole: a 256 MiB
/// body tripled the API's memory. A callback is a few KB, and its routes now refuse anything
/// past 64 KiB before reading on.
#[tokio::test]
async fn an_oversized_anonymous_callback_is_refused_before_it_is_read() {
    let app = ultra_tests::TestApp::spawn().await;
    // Twice the limit: enough to be refused, little enough that the whole body is sent before
    // the refusal closes the connection.
    let padding = "a".repeat(128 * 1024);
    for path in ["/api/v1/callbacks/airtel", "/api/v1/callbacks/onepipe"] {
        let body = json!({ "transaction": { "id": "ULT-NOTHING" }, "padding": padding });
        let response = app.client.post(app.url(path)).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 413, "{path}");
        let refused: Value = response.json().await.unwrap();
        assert_eq!(refused["meta"]["code"], "payload_too_large", "{path}: {refused}");
    }
    // A callback of ordinary size is still read (and, naming no payment, changes nothing).
    let response = app
        .client
        .post(app.url("/api/v1/callbacks/airtel"))
        .json(&json!({ "transaction": { "id": "ULT-NOTHING", "status_code": "TS" } }))
        .send()
        .await
        .unwrap();
    assert_ne!(response.status(), 413);
    assert!(response.status().is_success() || response.status() == 404, "{}", response.status());
}

/// An `Idempotency-Key` that is not valid header text was dropped before the handler saw it,
/// and the request ran as if it had no key: every retry paid again. Any key present but
/// unreadable is a 400 now, and nothing is paid.
#[tokio::test]
async fn an_unreadable_idempotency_key_is_refused_not_ignored() {
    let app = ultra_tests::TestApp::spawn().await;
    app.configure_provider("mvola", &json!({ "mode": "simulation" })).await;
    let token = app.login(ultra_tests::MERCHANT_EMAIL, ultra_tests::MERCHANT_PASSWORD).await;
    let key = reqwest::header::HeaderValue::from_bytes(b"order-\xe9-1").unwrap();
    for _ in 0..2 {
        let response = app
            .client
            .post(app.url("/api/v1/payments"))
            .bearer_auth(&token)
            .header("Idempotency-Key", key.clone())
            .json(&json!({ "provider": "mvola", "amount": "1000", "customerPhone": "0340000000" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400);
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
        let refused: Value = response.json().await.unwrap();
        assert_eq!(refused["meta"]["field"], "Idempotency-Key", "{refused}");
    }
    let (_, listed) = call(&app, reqwest::Method::GET, "/api/v1/payments", &token, None).await;
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(0), "nothing was paid: {listed}");
}

/// Behind a proxy, `X-Forwarded-For` holds whatever the client sent with the proxy's entry
/// appended. Taking the leftmost entry let a caller pick its own address: every login attempt
/// came from a "new" client, and the audit log recorded an address of the caller's choosing.
/// The client is now read from the right, past the configured proxies only.
#[tokio::test]
async fn a_forged_forwarded_for_neither_resets_the_login_limit_nor_fakes_the_audit_ip() {
    let db = ultra_tests::TestDb::seeded().await;
    let prefix = ultra_tests::unique("test:") + ":";
    // The test's connections come from 127.0.0.1, the proxy this API trusts.
    let api = ultra_tests::start_api(&db, &prefix, &[("ULTRA_TRUSTED_PROXIES", "127.0.0.1")]).await;
    let client = reqwest::Client::new();
    let login = |forwarded: String, password: &'static str| {
        client
            .post(format!("{}/api/v1/auth/login", api.base))
            .header("X-Forwarded-For", forwarded)
            .json(&json!({ "email": ultra_tests::MERCHANT_EMAIL, "password": password }))
            .send()
    };

    let response = login("6.6.6.0, 198.51.100.7".into(), ultra_tests::MERCHANT_PASSWORD).await.unwrap();
    assert_eq!(response.status(), 200);
    // Nine more guesses from the same client, each with a different forged leftmost entry,
    // fill the ten-per-minute login limit; the next one is refused.
    for n in 1..10 {
        let response = login(format!("6.6.6.{n}, 198.51.100.7"), "wrong-password").await.unwrap();
        assert_eq!(response.status(), 401, "guess {n}");
    }
    let response = login("6.6.6.99, 198.51.100.7".into(), "wrong-password").await.unwrap();
    assert_eq!(response.status(), 429, "a forged leftmost entry reset the login limit");

    // A peer that is not a trusted proxy is the client, whatever header it sends.
    let untrusted = reqwest::Client::builder().local_address("127.0.0.2".parse().ok()).build().unwrap();
    let response = untrusted
        .post(format!("{}/api/v1/auth/login", api.base))
        .header("X-Forwarded-For", "198.51.100.7")
        .json(&json!({ "email": ultra_tests::MERCHANT_EMAIL, "password": ultra_tests::MERCHANT_PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "an untrusted peer was charged to the address it named");

    let admin = client
        .post(format!("{}/api/v1/auth/login", api.base))
        .json(&json!({ "email": ultra_tests::ADMIN_EMAIL, "password": ultra_tests::ADMIN_PASSWORD }))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let logs: Value = client
        .get(format!("{}/api/v1/admin/audit-logs?action=auth.login&per_page=50", api.base))
        .bearer_auth(admin["data"]["token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ips: Vec<&str> =
        logs["data"].as_array().unwrap().iter().filter_map(|row| row["ip"].as_str()).collect();
    assert!(ips.contains(&"198.51.100.7"), "{ips:?}");
    assert!(ips.contains(&"127.0.0.2"), "{ips:?}");
    assert!(
        !ips.iter().any(|ip| ip.starts_with("6.6.6.")),
        "a forged address reached the audit log: {ips:?}"
    );
}

/// A stand-in for a service on the workers' network (a database admin page, the metadata
/// service): it answers every request with a body holding something private, and counts them.
async fn internal_service() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::{Arc, atomic::AtomicUsize};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                let mut request = [0u8; 8192];
                let _ = socket.read(&mut request).await;
                let body = format!(r#"{{"error_description":"{INTERNAL_SECRET}"}}"#);
                let answer = format!(
                    "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    (url, hits)
}

const INTERNAL_SECRET: &str = "internal-db-password-hunter2";

/// Sends `body`, if any, as `token`: the status and the answer as JSON (`null` if it is not).
async fn call(
    app: &ultra_tests::TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

async fn put_provider(app: &ultra_tests::TestApp, token: &str, path: &str, body: &Value) -> (u16, Value) {
    call(app, reqwest::Method::PUT, path, token, Some(body.clone())).await
}

/// A merchant's own provider configuration took any `http(s)` base URL, and workers called it:
/// a way to reach anything on the workers' network. Without the operator's opt-in, a merchant
/// may name only the provider's published hosts, and the platform's configuration only hosts
/// that resolve to public addresses.
#[tokio::test]
async fn a_merchant_cannot_point_a_provider_at_an_internal_address() {
    let db = ultra_tests::TestDb::seeded().await;
    let prefix = ultra_tests::unique("test:") + ":";
    let api = ultra_tests::start_api(&db, &prefix, &[("ULTRA_ALLOW_PRIVATE_PROVIDER_URLS", "false")]).await;
    let app = ultra_tests::TestApp { db, api, redis_prefix: prefix, client: reqwest::Client::new() };
    let merchant = app.login(ultra_tests::MERCHANT_EMAIL, ultra_tests::MERCHANT_PASSWORD).await;
    let admin = app.admin_token().await;
    let (internal, _) = internal_service().await;

    for base in [
        internal.as_str(),
        "https://127.0.0.1/",
        "https://169.254.169.254/latest/meta-data",
        "https://[::ffff:10.0.0.1]/",
        "https://provider.attacker.example/",
        "http://api.mvola.mg/",
    ] {
        let mut config = live_config("mvola", base);
        config["baseUrl"] = json!(base);
        let (status, body) = put_provider(&app, &merchant, "/api/v1/merchant/providers/mvola", &config).await;
        assert_eq!(status, 400, "{base} was accepted: {body}");
        assert_eq!(body["meta"]["field"], "baseUrl", "{base}: {body}");
    }
    let (status, body) = put_provider(
        &app,
        &merchant,
        "/api/v1/merchant/providers/mvola",
        &live_config("mvola", "https://devapi.mvola.mg"),
    )
    .await;
    assert_eq!(status, 200, "the provider's published host was refused: {body}");

    // The social platforms' login host, where browsers are sent, is held to the same list.
    let mut meta = live_config("meta", "https://graph.facebook.com");
    meta["baseUrl"] = json!("https://graph.facebook.com");
    meta["authUrl"] = json!("https://login.attacker.example");
    let (status, body) = put_provider(&app, &merchant, "/api/v1/merchant/providers/meta", &meta).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["meta"]["field"], "authUrl", "{body}");

    // The platform's own configuration may use other hosts, but never a private address.
    let mut global = live_config("airtel", "https://10.1.2.3");
    global["baseUrl"] = json!("https://10.1.2.3");
    let (status, body) = put_provider(&app, &admin, "/api/v1/admin/providers/airtel", &global).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["meta"]["field"], "baseUrl", "{body}");
}

/// A configuration stored while private addresses were allowed, or naming a host that later
/// resolves to one, is checked again on every connection: the worker never calls it.
#[tokio::test]
async fn a_worker_never_calls_a_provider_configuration_at_an_internal_address() {
    let app = ultra_tests::TestApp::spawn().await;
    let merchant = app.login(ultra_tests::MERCHANT_EMAIL, ultra_tests::MERCHANT_PASSWORD).await;
    let (internal, hits) = internal_service().await;
    let (status, body) =
        put_provider(&app, &merchant, "/api/v1/merchant/providers/mvola", &live_config("mvola", &internal))
            .await;
    assert_eq!(status, 200, "{body}");
    let _worker = ultra_tests::start_worker(
        &app.db,
        &ultra_tests::redis_url(),
        &app.redis_prefix,
        &[("ULTRA_PUBLIC_URL", app.api.base.as_str()), ("ULTRA_ALLOW_PRIVATE_PROVIDER_URLS", "false")],
    )
    .await;

    let response = app
        .client
        .post(app.url("/api/v1/payments"))
        .bearer_auth(&merchant)
        .header("Prefer", "wait=10")
        .json(&json!({ "provider": "mvola", "amount": "1000", "customerPhone": "0340000000" }))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    let payment = &body["data"];
    assert_eq!(payment["status"], "failed", "{body}");
    assert!(payment["failureReason"].as_str().unwrap().contains("private or reserved"), "{payment}");
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0, "the worker called the internal address");
}

/// Where private addresses are allowed (a laptop, a test run), whatever answers at a
/// configured address is still never shown to the merchant: job results, job errors and
/// failure reasons carry Ultra's words, and the answer itself goes to the attempt log, which
/// only admins read.
#[tokio::test]
async fn a_providers_raw_answer_never_reaches_the_merchant() {
    let app = ultra_tests::TestApp::spawn().await;
    let merchant = app.login(ultra_tests::MERCHANT_EMAIL, ultra_tests::MERCHANT_PASSWORD).await;
    let admin = app.admin_token().await;
    let (internal, hits) = internal_service().await;
    let (status, body) =
        put_provider(&app, &merchant, "/api/v1/merchant/providers/mvola", &live_config("mvola", &internal))
            .await;
    assert_eq!(status, 200, "{body}");
    let _worker = ultra_tests::start_live_worker(&app).await;

    let response = app
        .client
        .post(app.url("/api/v1/payments"))
        .bearer_auth(&merchant)
        .header("Prefer", "wait=10")
        .json(&json!({ "provider": "mvola", "amount": "1000", "customerPhone": "0340000000" }))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"]["status"], "failed", "{body}");
    assert!(hits.load(std::sync::atomic::Ordering::SeqCst) > 0, "the answer under test was never given");
    assert!(!body.to_string().contains(INTERNAL_SECRET), "the payment quotes the answer: {body}");

    let job_url = app.url(body["data"]["job"]["statusUrl"].as_str().expect("the payment names its job"));
    let as_merchant: Value =
        app.client.get(&job_url).bearer_auth(&merchant).send().await.unwrap().json().await.unwrap();
    assert_eq!(as_merchant["data"]["status"], "succeeded", "{as_merchant}");
    assert!(!as_merchant.to_string().contains(INTERNAL_SECRET), "the job quotes the answer: {as_merchant}");
    assert!(as_merchant["data"]["attemptLog"].is_null(), "{as_merchant}");
    let as_admin: Value =
        app.client.get(&job_url).bearer_auth(&admin).send().await.unwrap().json().await.unwrap();
    assert!(
        as_admin["data"]["attemptLog"].to_string().contains(INTERNAL_SECRET),
        "admins read what the provider said: {as_admin}"
    );
}

/// A merchant started a Meta connection and sent the authorization URL to a victim. The victim
/// consented in their own browser, and their Page was linked to the attacker's account. The
/// state is now bound to the browser that called `connect`, by a cookie it set: in any other
/// browser the callback is refused and nothing is linked.
#[tokio::test]
async fn a_victim_who_consents_on_an_attackers_authorization_url_links_nothing() {
    let world = LiveWorld::start_with(&["meta"]).await;
    let dashboard = json!({ "marketing": { "frontendUrl": "https://dashboard.example" } });
    let (status, _) =
        call(&world.app, reqwest::Method::PATCH, "/api/v1/admin/config", &world.admin, Some(dashboard)).await;
    assert_eq!(status, 200);
    let no_redirects = || reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
    let attacker = no_redirects().cookie_store(true).build().unwrap();
    let connect = |browser: reqwest::Client| {
        let url = world.app.url("/api/v1/marketing/accounts/connect");
        let merchant = world.merchant.clone();
        async move {
            let response = browser
                .post(url)
                .bearer_auth(merchant)
                .json(&json!({ "platform": "meta", "redirectUri": "https://dashboard.example/landing" }))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.unwrap()["data"]["authorizationUrl"].as_str().unwrap().to_owned()
        }
    };
    let consent = |browser: reqwest::Client, authorization: String| async move {
        let response = browser.get(authorization).send().await.unwrap();
        assert_eq!(response.status(), 302, "the platform's consent redirects");
        response.headers()["location"].to_str().unwrap().to_owned()
    };

    let authorization = connect(attacker.clone()).await;
    let victim = no_redirects().cookie_store(true).build().unwrap();
    let callback = consent(victim.clone(), authorization).await;
    let response = victim.get(&callback).send().await.unwrap();
    assert_eq!(response.status(), 400, "the victim's consent was accepted");
    let body: Value = response.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("browser"), "{body}");
    let (_, accounts) =
        call(&world.app, reqwest::Method::GET, "/api/v1/marketing/accounts", &world.merchant, None).await;
    assert_eq!(accounts["data"].as_array().unwrap().len(), 0, "an account was linked: {accounts}");

    // In the browser that started it, the same flow connects.
    let authorization = connect(attacker.clone()).await;
    let callback = consent(attacker.clone(), authorization).await;
    let response = attacker.get(&callback).send().await.unwrap();
    assert_eq!(response.status(), 302);
    let landing = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(landing.contains("status=connected"), "{landing}");
}

/// Anyone could start payments on a capped link with numbers that never confirm; each held a
/// use for the full payment expiry (15 minutes), so real payers found the link depleted. Now a
/// checkout payment holds its use for `checkoutHoldSeconds` (5 minutes) only, one number holds
/// one use of a link at a time, and payments started per link are limited besides per IP.
#[tokio::test]
async fn an_anonymous_payer_cannot_hold_a_payment_links_uses() {
    let app = ultra_tests::TestApp::spawn().await;
    let admin = app.admin_token().await;
    let merchant = app.login(ultra_tests::MERCHANT_EMAIL, ultra_tests::MERCHANT_PASSWORD).await;
    let (status, body) =
        put_provider(&app, &admin, "/api/v1/admin/providers/mvola", &json!({ "mode": "simulation" })).await;
    assert_eq!(status, 200, "{body}");
    let limit = json!({ "checkoutLinkRateLimit": { "limit": 4, "windowSeconds": 60 } });
    let (status, body) =
        call(&app, reqwest::Method::PATCH, "/api/v1/admin/config", &admin, Some(limit)).await;
    assert_eq!(status, 200, "{body}");
    let seats = json!({ "title": "Ten seats", "amount": "5000", "maxUses": 10 });
    let (_, link) = call(&app, reqwest::Method::POST, "/api/v1/payment-links", &merchant, Some(seats)).await;
    let pay_path = format!("/api/v1/public/payment-links/{}/pay", link["data"]["id"].as_str().unwrap());
    let pay = |phone: &'static str| {
        let request =
            app.client.post(app.url(&pay_path)).json(&json!({ "provider": "mvola", "customerPhone": phone }));
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap())
        }
    };

    let (status, first) = pay("0341111100").await;
    assert_eq!(status, 202, "{first}");
    let created = chrono::DateTime::parse_from_rfc3339(first["data"]["createdAt"].as_str().unwrap()).unwrap();
    let expires = chrono::DateTime::parse_from_rfc3339(first["data"]["expiresAt"].as_str().unwrap()).unwrap();
    let hold = (expires - created).num_seconds();
    assert!(
        (295..=300).contains(&hold),
        "a checkout payment holds its use for 5 minutes, not {hold} s: {first}"
    );

    let (status, again) = pay("0341111100").await;
    assert_eq!(status, 409, "a second hold for the same number: {again}");
    assert_eq!(again["meta"]["code"], "payment_in_progress", "{again}");

    assert_eq!(pay("0341111200").await.0, 202);
    assert_eq!(pay("0341111300").await.0, 202);
    let (status, limited) = pay("0341111400").await;
    assert_eq!(status, 429, "the fifth payment start on this link in a minute: {limited}");
}

/// A Maxtera customer's email and password opened a merchant session on `/api/v1`. Each
/// surface's users now log in to their own surface only; to the merchant API a customer's
/// credentials are as unknown as anyone's.
#[tokio::test]
async fn a_maxtera_customer_cannot_log_in_to_the_merchant_api() {
    let app = ultra_tests::TestApp::spawn().await;
    let registered = app
        .post_json(
            "/maxtera/api/v1/auth/register/",
            &json!({ "email": "buyer@example.com", "password": "mypassword", "phone": "08012345678" }),
        )
        .await;
    assert_eq!(registered.status(), 201);
    let maxtera = app
        .post_json(
            "/maxtera/api/v1/auth/login/",
            &json!({ "email": "buyer@example.com", "password": "mypassword" }),
        )
        .await;
    assert_eq!(maxtera.status(), 200, "the customer logs in to Maxtera");
    for path in ["/api/v1/auth/login", "/api/v1/admin/auth/login"] {
        let merchant =
            app.post_json(path, &json!({ "email": "buyer@example.com", "password": "mypassword" })).await;
        assert_eq!(merchant.status(), 401, "{path}");
        let body: Value = merchant.json().await.unwrap();
        assert_eq!(body["meta"]["code"], "unauthorized", "{path}: {body}");
    }
}

/// Any admin could act as the primary merchant with `X-App-Context: merchant` and mint
/// Sellapay keys that pay out that merchant's balance. Acting as the merchant now covers its
/// everyday work only: keys and provider configurations need the merchant's own login, and what
/// an acting admin does is audited under the admin's id.
#[tokio::test]
async fn an_admin_acting_as_the_merchant_cannot_mint_its_api_keys() {
    let app = ultra_tests::TestApp::spawn().await;
    let admin = app.admin_token().await;
    let acting = |method: reqwest::Method, path: &str| {
        app.client.request(method, app.url(path)).bearer_auth(&admin).header("X-App-Context", "merchant")
    };
    let response = acting(reqwest::Method::POST, "/api/v1/api-keys")
        .json(&json!({ "name": "drain" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["meta"]["code"], "impersonation_forbidden", "{body}");
    let response = acting(reqwest::Method::PUT, "/api/v1/merchant/providers/mvola")
        .json(&json!({ "mode": "simulation" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);

    // The merchant's everyday work goes on, audited under the admin's own id.
    let response = acting(reqwest::Method::POST, "/api/v1/payment-links")
        .json(&json!({ "title": "Made by support", "amount": "5000" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let link: Value = response.json().await.unwrap();
    let (_, admin_id) = call(&app, reqwest::Method::GET, "/api/v1/auth/session", &admin, None).await;
    let (_, logs) = call(
        &app,
        reqwest::Method::GET,
        "/api/v1/admin/audit-logs?entityType=payment_link&per_page=10",
        &admin,
        None,
    )
    .await;
    let row = logs["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["entityId"] == link["data"]["id"])
        .unwrap_or_else(|| panic!("no audit row: {logs}"));
    assert_eq!(row["userId"], admin_id["data"]["user"]["id"], "{row}");

    // In person, the merchant mints its keys.
    let merchant = app.login(ultra_tests::MERCHANT_EMAIL, ultra_tests::MERCHANT_PASSWORD).await;
    let (status, _) =
        call(&app, reqwest::Method::POST, "/api/v1/api-keys", &merchant, Some(json!({ "name": "mine" })))
            .await;
    assert_eq!(status, 201);
}

/// The README documents Meta's `authUrl` and `apiVersion`, but the API refused them as
/// unknown fields, so an operator could not set the Graph version calls are made against.
#[tokio::test]
async fn metas_documented_auth_url_and_api_version_are_accepted() {
    let app = ultra_tests::TestApp::spawn().await;
    let admin = app.admin_token().await;
    let config = json!({ "mode": "live", "baseUrl": "https://graph.facebook.com", "authUrl": "https://www.facebook.com",
                         "apiVersion": "v21.0", "clientId": "app-id", "clientSecret": "app-secret" });
    let (status, body) = put_provider(&app, &admin, "/api/v1/admin/providers/meta", &config).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["config"]["authUrl"], "https://www.facebook.com", "{body}");
    assert_eq!(body["data"]["config"]["apiVersion"], "v21.0", "{body}");
    let mut bad = config.clone();
    bad["apiVersion"] = json!("latest");
    let (status, body) = put_provider(&app, &admin, "/api/v1/admin/providers/meta", &bad).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["meta"]["field"], "apiVersion", "{body}");
}

/// `/metrics` was served on the public API port to anyone: routes, volumes and error rates
/// are for operators. It is served on the operator address only, as workers already did.
#[tokio::test]
async fn metrics_are_not_served_on_the_public_api_port() {
    let app = ultra_tests::TestApp::spawn().await;
    app.client.get(app.url("/api/v1/auth/session")).send().await.unwrap();
    let public = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(public.status(), 404, "metrics on the public port");
    let operator = app.client.get(format!("{}/metrics", app.api.operator)).send().await.unwrap();
    assert_eq!(operator.status(), 200);
    assert!(operator.text().await.unwrap().contains("http_request_duration_seconds"));
}

/// On SQLite a subscription whose next renewal passed year 9999 was stored as `+10000-…`,
/// which sorts before every other date: it read as due, and the customer was charged on every
/// tick. Dates stay within years 1970 to 9999: a schedule with no renewal left before year
/// 10000 ends after its last one, and a date past 9999 in UTC is refused.
#[tokio::test]
async fn a_renewal_past_year_9999_never_charges_the_customer_again() {
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    let app = ultra_tests::TestApp::spawn().await;
    let admin = app.admin_token().await;
    let merchant = app.login(ultra_tests::MERCHANT_EMAIL, ultra_tests::MERCHANT_PASSWORD).await;
    let (status, body) =
        put_provider(&app, &admin, "/api/v1/admin/providers/mvola", &json!({ "mode": "simulation" })).await;
    assert_eq!(status, 200, "{body}");
    let db = app.db.connect().await;
    ultra_domain::runtime_config::RuntimeConfig::set(
        &db,
        "schedules",
        json!({ "renew-subscriptions": "* * * * * *" }),
        None,
    )
    .await
    .unwrap();
    let _worker = ultra_tests::start_worker(&app.db, &ultra_tests::redis_url(), &app.redis_prefix, &[]).await;
    let _scheduler =
        ultra_tests::start_scheduler(&app.db, &ultra_tests::redis_url(), &app.redis_prefix, &[]).await;
    let create = |next: &str| {
        let body = json!({ "label": "Forever", "customerPhone": "0340000000", "amount": "5000",
                           "interval": "annual", "provider": "mvola", "nextRenewalAt": next });
        app.client.post(app.url("/api/v1/subscriptions")).bearer_auth(&merchant).json(&body).send()
    };

    let refused = create("9999-12-31T23:00:00-05:00").await.unwrap();
    assert_eq!(refused.status(), 400, "a date in year 10000 (UTC) was accepted");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["meta"]["field"], "nextRenewalAt", "{body}");

    let path = "/api/v1/admin/audit-logs?to=9999-12-31T23:00:00-05:00";
    let (status, body) = call(&app, reqwest::Method::GET, path, &admin, None).await;
    assert_eq!(status, 400, "a filter in year 10000 (UTC) was accepted");
    assert_eq!(body["meta"]["field"], "to", "{body}");

    let created: Value = create("9999-06-01T00:00:00Z").await.unwrap().json().await.unwrap();
    let id = created["data"]["id"].as_str().unwrap().to_owned();
    let (status, _) =
        call(&app, reqwest::Method::POST, &format!("/api/v1/subscriptions/{id}/renew"), &merchant, None)
            .await;
    assert_eq!(status, 202);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let renewed = loop {
        let (_, current) =
            call(&app, reqwest::Method::GET, &format!("/api/v1/subscriptions/{id}"), &merchant, None).await;
        if current["data"]["renewalCount"] == 1 {
            break current["data"].clone();
        }
        assert!(std::time::Instant::now() < deadline, "the renewal never completed: {current}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(renewed["status"], "cancelled", "{renewed}");
    assert!(renewed["nextRenewalAt"].as_str().unwrap().starts_with("9999-"), "{renewed}");
    // The schedule runs every second; nothing charges the customer again.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let charges = ultra_entity::payments::Entity::find()
        .filter(ultra_entity::payments::Column::SubscriptionId.eq(id.as_str()))
        .count(&db)
        .await
        .unwrap();
    assert_eq!(charges, 1, "the customer was charged again");
}
