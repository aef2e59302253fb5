use base64::{Engine, engine::general_purpose::STANDARD};
use serde_json::{Value, json};

use crate::common::{Sandbox, config};

#[tokio::test]
async fn stats_count_token_requests_per_provider() {
    let sandbox = Sandbox::start(config()).await;
    let basic = format!("Basic {}", STANDARD.encode("ultra-sandbox:ultra-sandbox-secret"));
    for _ in 0..2 {
        sandbox
            .http
            .post(sandbox.url("/token"))
            .header("Authorization", &basic)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials&scope=EXT_INT_MVOLA_SCOPE")
            .send()
            .await
            .unwrap();
    }
    sandbox
        .http
        .post(sandbox.url("/oauth/v3/token"))
        .header("Authorization", &basic)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    let stats: Value =
        sandbox.http.get(sandbox.url("/_sandbox/stats")).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        stats,
        json!({ "tokenRequests": { "mvola": 2, "airtel": 0, "orange": 1, "mpesa": 0, "bank": 0 } })
    );
}

#[tokio::test]
async fn transactions_can_be_filtered_by_provider() {
    let sandbox = Sandbox::start(config()).await;
    let token: Value = sandbox
        .http
        .post(sandbox.url("/auth/oauth2/token"))
        .json(&json!({
            "client_id": "ultra-sandbox",
            "client_secret": "ultra-sandbox-secret",
            "grant_type": "client_credentials",
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    sandbox
        .http
        .post(sandbox.url("/merchant/v1/payments/"))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .header("X-Country", "MG")
        .header("X-Currency", "MGA")
        .json(&json!({
            "reference": "Ultra order",
            "subscriber": { "msisdn": "331234500" },
            "transaction": { "amount": 2500.5, "id": "inspect-1" },
        }))
        .send()
        .await
        .unwrap();
    let list = |provider: &'static str| {
        let request = sandbox.http.get(sandbox.url(&format!("/_sandbox/transactions?provider={provider}")));
        async move { request.send().await.unwrap().json::<Vec<Value>>().await.unwrap() }
    };
    let airtel = list("airtel").await;
    assert_eq!(airtel.len(), 1);
    assert_eq!(airtel[0]["provider"], "airtel");
    assert_eq!(airtel[0]["reference"], "inspect-1");
    assert_eq!(airtel[0]["handle"], "inspect-1");
    assert_eq!(airtel[0]["msisdn"], "331234500");
    assert_eq!(airtel[0]["amount"], "2500.5");
    assert_eq!(airtel[0]["initiateCalls"], 1);
    assert!(list("mvola").await.is_empty());
}

#[tokio::test]
async fn revoking_a_social_platform_ends_every_token_it_issued() {
    let sandbox = Sandbox::start(config()).await;
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let consent = browser
        .get(sandbox.url(
            "/tiktok/v2/auth/authorize/?client_key=ultra-sandbox&scope=video.publish&response_type=code&\
             redirect_uri=https://app.test/cb&state=s",
        ))
        .send()
        .await
        .unwrap();
    let location = consent.headers()["location"].to_str().unwrap().to_owned();
    let code = location.split(['?', '&']).find_map(|pair| pair.strip_prefix("code=")).unwrap().to_owned();
    let tokens: Value = sandbox
        .http
        .post(sandbox.url("/tiktok/v2/oauth/token/"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!(
            "client_key=ultra-sandbox&client_secret=ultra-sandbox-secret&code={code}&\
             grant_type=authorization_code&redirect_uri=https://app.test/cb"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access_token = tokens["access_token"].as_str().unwrap();
    let creator_info = || {
        sandbox
            .http
            .post(sandbox.url("/tiktok/v2/post/publish/creator_info/query/"))
            .bearer_auth(access_token)
            .send()
    };
    assert_eq!(creator_info().await.unwrap().status(), 200);

    let revoke = |platform: &str| {
        sandbox.http.post(sandbox.url(&format!("/_sandbox/social/{platform}/revoke"))).send()
    };
    let answer = revoke("tiktok").await.unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.json::<Value>().await.unwrap(), json!({ "revoked": 2 }));
    assert_eq!(creator_info().await.unwrap().status(), 401);
    assert_eq!(revoke("meta").await.unwrap().json::<Value>().await.unwrap(), json!({ "revoked": 0 }));
    assert_eq!(revoke("myspace").await.unwrap().status(), 404);
}
