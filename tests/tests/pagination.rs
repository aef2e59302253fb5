//! Page and cursor pagination, on `GET /api/v1/admin/users`.

use serde_json::{Value, json};
use ultra_tests::TestApp;

async fn list(app: &TestApp, token: &str, query: &str) -> Value {
    let response = app
        .client
        .get(app.url(&format!("/api/v1/admin/users?{query}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{query}");
    response.json().await.unwrap()
}

async fn create(app: &TestApp, token: &str, n: usize) {
    let response = app
        .client
        .post(app.url("/api/v1/admin/users"))
        .bearer_auth(token)
        .json(&json!({ "email": format!("page{n}@ultra.test"), "name": format!("Page {n}") }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn page_mode_reports_totals() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    for n in 0..5 {
        create(&app, &token, n).await;
    }
    // 5 created + the admin and merchant of the fixture.
    let first = list(&app, &token, "page=1&per_page=3").await;
    assert_eq!(first["meta"]["total"], 7);
    assert_eq!(first["meta"]["totalPages"], 3);
    assert_eq!(first["data"].as_array().unwrap().len(), 3);
    assert_eq!(first["data"][0]["email"], "page4@ultra.test", "newest first");
    let last = list(&app, &token, "page=3&per_page=3").await;
    assert_eq!(last["data"].as_array().unwrap().len(), 1);

    let merchants = list(&app, &token, "role=user&per_page=100").await;
    assert_eq!(merchants["meta"]["total"], 6);
    let searched = list(&app, &token, "search=PAGE3").await;
    assert_eq!(searched["data"].as_array().unwrap().len(), 1);
    assert_eq!(searched["data"][0]["email"], "page3@ultra.test");
}

#[tokio::test]
async fn cursor_mode_is_stable_under_concurrent_inserts() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    for n in 0..5 {
        create(&app, &token, n).await;
    }
    let mut seen = Vec::new();
    let mut query = "pagination=cursor&limit=2".to_owned();
    loop {
        let page = list(&app, &token, &query).await;
        for user in page["data"].as_array().unwrap() {
            seen.push(user["email"].as_str().unwrap().to_owned());
        }
        // A row inserted while paging lands before the cursor and does not shift later pages.
        if seen.len() == 2 {
            create(&app, &token, 99).await;
        }
        if page["meta"]["hasMore"] == false {
            assert!(page["meta"]["nextCursor"].is_null());
            break;
        }
        query = format!("pagination=cursor&limit=2&cursor={}", page["meta"]["nextCursor"].as_str().unwrap());
    }
    assert_eq!(seen.len(), 7, "every row exactly once: {seen:?}");
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 7);
    assert!(!seen.contains(&"page99@ultra.test".to_owned()));
}

#[tokio::test]
async fn page_mode_stops_at_ten_thousand_rows_and_the_cursor_goes_on() {
    let app = TestApp::spawn().await;
    let token = app.login(ultra_tests::MERCHANT_EMAIL, ultra_tests::MERCHANT_PASSWORD).await;
    let db = app.db.connect().await;
    let merchant = ultra_tests::user_id(&db, ultra_tests::MERCHANT_EMAIL).await;
    ultra_tests::store_payments(&db, &merchant, 10_050).await;
    let get = |query: &'static str| {
        let request = app.client.get(app.url(&format!("/api/v1/payments?{query}"))).bearer_auth(&token);
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap())
        }
    };

    let (status, first) = get("per_page=100").await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["meta"]["total"], 10_000, "counted no further than page mode reaches");
    assert_eq!(first["meta"]["totalCapped"], true);
    assert_eq!(first["meta"]["totalPages"], 100);
    let (status, last) = get("per_page=100&page=100").await;
    assert_eq!(status, 200, "{last}");
    assert_eq!(last["data"].as_array().unwrap().len(), 100);

    let (status, beyond) = get("per_page=100&page=101").await;
    assert_eq!(status, 400, "{beyond}");
    let message = beyond["meta"]["message"].as_str().unwrap_or_default().to_owned() + &beyond.to_string();
    assert!(message.contains("pagination=cursor"), "the refusal says how to go on: {beyond}");

    // The cursor from the 10,000th payment reaches the 50 beyond it.
    let cursor = {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(last["data"][99]["id"].as_str().unwrap())
    };
    let response = app
        .client
        .get(app.url(&format!("/api/v1/payments?pagination=cursor&limit=100&cursor={cursor}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let rest: Value = response.json().await.unwrap();
    assert_eq!(rest["data"].as_array().unwrap().len(), 50, "{}", rest["meta"]);
    assert_eq!(rest["meta"]["hasMore"], false);

    // A short list still counts exactly.
    let (_, few) = get("status=pending").await;
    assert_eq!(few["meta"]["total"], 0);
    assert_eq!(few["meta"]["totalCapped"], false);
}
