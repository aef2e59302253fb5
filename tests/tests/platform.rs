//! Health, readiness, metrics and the headers every response carries.

use reqwest::StatusCode;
use serde_json::Value;
use ultra_tests::TestApp;

#[tokio::test]
async fn health_readiness_and_metrics() {
    let app = TestApp::spawn().await;
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);

    let ready: Value = app.client.get(app.url("/readyz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["database"], "ok");
    assert_eq!(ready["redis"], "ok");

    app.client.get(app.url("/api/v1/auth/session")).send().await.unwrap();
    let metrics =
        app.client.get(format!("{}/metrics", app.api.operator)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("http_request_duration_seconds"), "{metrics}");
    assert!(metrics.contains(r#"route="getSession""#), "{metrics}");
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_process_time() {
    let app = TestApp::spawn().await;
    let echoed = app
        .client
        .get(app.url("/api/v1/auth/session"))
        .header("X-Request-ID", "client-chosen-id-123")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(echoed.headers()["x-request-id"], "client-chosen-id-123");
    assert!(echoed.headers()["x-process-time"].to_str().unwrap().ends_with("ms"));

    let generated = app.client.get(app.url("/no/such/route")).send().await.unwrap();
    let id = generated.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 26, "a ULID: {id}");
    assert!(generated.headers().contains_key("x-process-time"));

    let unsafe_id = app
        .client
        .get(app.url("/healthz"))
        .header("X-Request-ID", "bad id with spaces and <html>")
        .send()
        .await
        .unwrap();
    assert_ne!(unsafe_id.headers()["x-request-id"], "bad id with spaces and <html>");
}

#[tokio::test]
async fn readiness_reports_redis_going_away() {
    let port = ultra_tests::free_port();
    let mut redis = std::process::Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start a throwaway redis-server");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let db = ultra_tests::TestDb::new().await;
    let redis_url = format!("redis://127.0.0.1:{port}");
    let api = ultra_tests::start_api(&db, "ready:", &[("REDIS_URL", &redis_url)]).await;
    let client = reqwest::Client::new();
    assert_eq!(client.get(format!("{}/readyz", api.base)).send().await.unwrap().status(), StatusCode::OK);

    redis.kill().unwrap();
    redis.wait().unwrap();
    let response = client.get(format!("{}/readyz", api.base)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["redis"], "unavailable");
    assert_eq!(body["database"], "ok");
    assert_eq!(client.get(format!("{}/healthz", api.base)).send().await.unwrap().status(), StatusCode::OK);
}
