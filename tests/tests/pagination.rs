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
