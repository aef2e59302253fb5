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
    let padding = "a".repeat(1 << 20);
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
