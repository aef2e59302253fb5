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
