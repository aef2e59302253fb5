//! Bad input gets a 4xx that names the problem, never a 500.

use reqwest::StatusCode;
use serde_json::Value;
use ultra_tests::TestApp;

async fn post_raw(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
    content_type: &str,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let mut request = app.client.post(app.url(path)).header("Content-Type", content_type).body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn malformed_json_wrong_types_and_missing_fields_are_named() {
    let app = TestApp::spawn().await;
    let login = "/api/v1/auth/login";
    let json = "application/json";

    let (status, body) = post_raw(&app, login, None, json, br#"{"email": "a@b.co", "#.to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().starts_with("malformed JSON"), "{body}");

    let (status, body) = post_raw(&app, login, None, json, br#"{"email": 42}"#.to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["meta"]["field"], "email");
    assert!(body["error"].as_str().unwrap().contains("must be a string, not a number"), "{body}");

    let (status, body) = post_raw(&app, login, None, json, br#"{"password": "long-enough"}"#.to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["meta"]["field"], "email");
    assert_eq!(body["error"], "email: is required");

    let (status, body) = post_raw(&app, login, None, json, br#"[1, 2]"#.to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("must be an object"), "{body}");

    let (status, body) =
        post_raw(&app, login, None, json, br#"{"email": "a@b.co", "password": "short"}"#.to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["meta"]["field"], "password");

    let (status, body) = post_raw(
        &app,
        login,
        None,
        json,
        br#"{"email": "not-an-email", "password": "long-enough"}"#.to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["meta"]["field"], "email");

    let (status, body) = post_raw(&app, login, None, json, Vec::new()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("body is required"), "{body}");

    let (status, body) = post_raw(&app, login, None, "text/plain", b"email=a@b.co".to_vec()).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(body["meta"]["code"], "unsupported_media_type");

    let token = app.admin_token().await;
    let (status, body) = post_raw(
        &app,
        "/api/v1/admin/users",
        Some(&token),
        json,
        br#"{"email": "x@ultra.test", "name": "X", "role": "emperor"}"#.to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["meta"]["field"], "role");
    let (status, body) = post_raw(
        &app,
        "/api/v1/admin/users",
        Some(&token),
        json,
        br#"{"email": "x@ultra.test", "name": ""}"#.to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["meta"]["field"], "name");
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let app = TestApp::spawn().await;
    let big = format!(r#"{{"email": "a@b.co", "password": "{}"}}"#, "x".repeat(2 * 1024 * 1024));
    let (status, body) =
        post_raw(&app, "/api/v1/auth/login", None, "application/json", big.into_bytes()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["meta"]["code"], "payload_too_large");
}

#[tokio::test]
async fn bad_query_parameters_are_named() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    for (query, field) in [
        ("page=abc", "page"),
        ("page=0", "page"),
        ("per_page=500", "per_page"),
        ("pagination=cursor&cursor=%%%", "cursor"),
        ("pagination=sideways", "pagination"),
        ("role=emperor", "role"),
        ("page=18446744073709551615", "page"),
        ("search=a%00b", "search"),
        ("pagination=cursor&cursor=AA", "cursor"),
    ] {
        let response = app
            .client
            .get(app.url(&format!("/api/v1/admin/users?{query}")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["meta"]["field"], field, "{query}: {body}");
    }
}

#[tokio::test]
async fn junk_never_produces_a_server_error() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    let bodies: [&[u8]; 10] = [
        b"{\"email\": \"nul@ultra.test\", \"name\": \"a\\u0000b\"}",
        b"null",
        b"\"just a string\"",
        b"{\"email\": null, \"password\": null}",
        b"{\"email\": [\"a@b.co\"], \"password\": {}}",
        b"\xff\xfe\x00",
        b"{\"email\": \"a@b.co\", \"password\": \"\\u0000\\u0000\\u0000\\u0000\\u0000\\u0000\\u0000\\u0000\"}",
        b"{\"email\": \"\\ud800@b.co\", \"password\": \"long-enough\"}",
        b"{\"email\": \"a@b.co\", \"name\": \"N\", \"tier\": 5, \"phone\": true}",
        b"{\"email\": \"a@b.co\", \"name\": \"N\", \"password\": \"12345678\", \"role\": null}",
    ];
    for path in ["/api/v1/auth/login", "/api/v1/admin/auth/login", "/api/v1/admin/users"] {
        for body in bodies {
            let (status, envelope) =
                post_raw(&app, path, Some(&token), "application/json", body.to_vec()).await;
            assert!(status.as_u16() < 500, "{path} {:?} gave {status}", String::from_utf8_lossy(body));
            assert!(envelope["success"].is_boolean(), "{envelope}");
        }
    }
    let missing = app.client.get(app.url("/api/v1/no-such-thing")).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["meta"]["code"], "route_not_found");
}

#[tokio::test]
async fn a_nul_in_an_id_or_a_filter_is_refused_not_sent_to_the_database() {
    let app = TestApp::spawn().await;
    let token = app.login(ultra_tests::MERCHANT_EMAIL, ultra_tests::MERCHANT_PASSWORD).await;
    for path in [
        "/api/v1/payments/%00",
        "/api/v1/payments/pay_%00x/refunds",
        "/api/v1/payments?merchantId=a%00b",
        "/api/v1/subscriptions/sub_%00",
        "/maxtera/api/v1/transactions/%00/",
    ] {
        let response = app.client.get(app.url(path)).bearer_auth(&token).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
        let text = response.text().await.unwrap();
        assert!(text.contains("NUL"), "{path}: {text}");
    }
}

/// Junk for every documented operation: odd path ids, odd query values, bodies of the wrong
/// shape, as an admin and as a merchant. Whatever the answer, it is never a server error.
#[tokio::test]
async fn no_documented_operation_answers_junk_with_a_server_error() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let merchant = app.login(ultra_tests::MERCHANT_EMAIL, ultra_tests::MERCHANT_PASSWORD).await;
    let spec: Value =
        app.client.get(app.url("/api/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    let odd_values = ["x", "-1", "0", "99999999999999999999", "%ff", "a%20b", "'%3B--", "2026-13-45"];
    let bodies: [&[u8]; 6] = [
        b"{}",
        b"[]",
        b"\"text\"",
        b"{\"amount\": \"1e309\", \"metadata\": {\"a\": \"\\u0000\"}, \"id\": {}}",
        b"{\"amount\": -5, \"status\": \"nonsense\", \"providers\": [1, 2], \"filters\": [], \"kind\": 7}",
        b"{\"title\": \"t\", \"amount\": \"99999999999999999999\", \"maxUses\": -1, \"expiresAt\": \"soon\"}",
    ];
    let mut tried = 0;
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let params = operation["parameters"].as_array().cloned().unwrap_or_default();
            for (n, odd) in odd_values.iter().enumerate() {
                let concrete: String = path
                    .split('/')
                    .map(|seg| if seg.starts_with('{') { (*odd).to_owned() } else { seg.to_owned() })
                    .collect::<Vec<_>>()
                    .join("/");
                let query: Vec<String> = params
                    .iter()
                    .filter(|p| p["in"] == "query")
                    .map(|p| format!("{}={odd}", p["name"].as_str().unwrap()))
                    .collect();
                let url = format!("{}?{}", app.url(&concrete), query.join("&"));
                let token = if n % 2 == 0 { &admin } else { &merchant };
                let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                let body = bodies[n % bodies.len()];
                let response = app
                    .client
                    .request(method.clone(), &url)
                    .bearer_auth(token)
                    .header("Content-Type", "application/json")
                    .body(body.to_vec())
                    .send()
                    .await
                    .unwrap();
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                assert!(
                    status.as_u16() < 500,
                    "{method} {url} with {} gave {status}: {text}",
                    String::from_utf8_lossy(body)
                );
                tried += 1;
            }
        }
    }
    assert!(tried > 500, "only {tried} requests were tried");
}
