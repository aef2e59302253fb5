//! The OpenAPI document is valid OpenAPI 3, matches `ultra openapi`, and lists the routes the
//! server serves.

use std::process::Command;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use ultra_tests::{TestApp, ultra_bin};

const EXPECTED: [(&str, &str); 9] = [
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("POST", "/api/v1/auth/login"),
    ("GET", "/api/v1/auth/session"),
    ("POST", "/api/v1/auth/logout"),
    ("POST", "/api/v1/admin/auth/login"),
    ("GET", "/api/v1/admin/users"),
    ("POST", "/api/v1/admin/users"),
    ("GET", "/api/v1/openapi.json"),
];

#[tokio::test]
async fn the_document_is_valid_and_lists_every_route() {
    let app = TestApp::spawn().await;
    let response = app.client.get(app.url("/api/v1/openapi.json")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    let spec: openapiv3::OpenAPI = serde_json::from_str(&text).expect("a valid OpenAPI 3 document");
    assert!(spec.openapi.starts_with("3."), "version {}", spec.openapi);

    let mut documented = Vec::new();
    for (path, item) in spec.paths.iter() {
        let item = item.as_item().expect("inline path item");
        for (method, operation) in item.iter() {
            assert!(operation.operation_id.is_some(), "{method} {path} has an operationId");
            assert!(!operation.responses.responses.is_empty(), "{method} {path} documents its responses");
            documented.push((method.to_uppercase(), path.clone()));
        }
    }
    for (method, path) in EXPECTED {
        let listed = documented.iter().any(|(m, p)| m == method && p == path);
        assert!(listed || path == "/api/v1/openapi.json", "{method} {path} is not documented");
    }

    // Every documented operation is served: none answers "no route" or "method not allowed".
    for (method, path) in &documented {
        let concrete = path
            .split('/')
            .map(|seg| if seg.starts_with('{') { "x" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let response = app.client.request(method.clone(), app.url(&concrete)).send().await.unwrap();
        assert_ne!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        if response.status() == StatusCode::NOT_FOUND {
            let body: Value = response.json().await.unwrap();
            // The envelope's `meta.code`, or Maxtera's `code`.
            let code = if body["meta"].is_object() { &body["meta"]["code"] } else { &body["code"] };
            assert_ne!(code, "route_not_found", "{method} {path} is documented but not served");
        }
    }

    // `ultra openapi` prints the same document.
    let out =
        Command::new(ultra_bin()).arg("openapi").env("ULTRA_PUBLIC_URL", &app.api.base).output().unwrap();
    assert!(out.status.success());
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let served: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(printed, served);

    let docs = app.client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(docs.status(), StatusCode::OK);
    assert!(docs.text().await.unwrap().contains("swagger"), "docs page serves Swagger UI");
}

/// Every path parameter is named as its template variable: generators build the URL from the
/// parameter's name, and a mismatch (`{refund_id}` against `refundId`) made them drop the
/// operation or send the template literally.
#[test]
fn every_path_parameter_matches_its_template_variable() {
    let out = Command::new(ultra_bin()).arg("openapi").output().unwrap();
    assert!(out.status.success());
    let spec: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut mismatched = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        let mut in_template: Vec<&str> =
            path.split('/').filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}')).collect();
        in_template.sort_unstable();
        for (method, operation) in item.as_object().unwrap() {
            let mut declared: Vec<&str> = operation["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|parameter| parameter["in"] == "path")
                .filter_map(|parameter| parameter["name"].as_str())
                .collect();
            declared.sort_unstable();
            if declared != in_template {
                mismatched.push(format!("{method} {path}: {declared:?}"));
            }
        }
    }
    assert!(mismatched.is_empty(), "{mismatched:#?}");
}
