//! Refunds: simulation mode (final at once), Airtel's refund API through the sandbox,
//! providers without a refund API, concurrency, retries and tenancy.

use std::time::Duration;

use serde_json::{Value, json};
use ultra_tests::{LiveWorld, TestApp};

async fn call(app: &TestApp, token: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = match method {
        "GET" => app.client.get(app.url(path)),
        "POST" => app.client.post(app.url(path)),
        other => panic!("no method {other}"),
    }
    .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn completed_payment(world: &LiveWorld, provider: &str, amount: &str, phone: &str) -> Value {
    let (status, body) = world.pay(provider, amount, phone, Some(10)).await;
    assert_eq!(status, 202, "{body}");
    let id = body["data"]["id"].as_str().unwrap().to_owned();
    let payment = world.settled(&id).await;
    assert_eq!(payment["status"], "completed", "{payment}");
    payment
}

async fn refund_until(world: &LiveWorld, id: &str, status: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (code, body) =
            call(&world.app, &world.merchant, "GET", &format!("/api/v1/payments/refunds/{id}"), None).await;
        assert_eq!(code, 200, "{body}");
        if body["data"]["status"] == status {
            return body["data"].clone();
        }
        assert!(std::time::Instant::now() < deadline, "refund stayed {body}\n{}", world.worker.log_text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn simulated_refunds_are_final_at_once_and_never_exceed_the_payment() {
    let world = LiveWorld::start().await;
    let response = world
        .app
        .client
        .put(world.app.url("/api/v1/admin/providers/mvola"))
        .bearer_auth(&world.admin)
        .json(&json!({ "mode": "simulation" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let payment = completed_payment(&world, "mvola", "10000", "0340000000").await;
    let refunds = format!("/api/v1/payments/{}/refunds", payment["id"].as_str().unwrap());

    let (status, capabilities) =
        call(&world.app, &world.merchant, "GET", "/api/v1/payments/refund-capabilities?provider=mvola", None)
            .await;
    assert_eq!(status, 200);
    assert_eq!(
        capabilities["data"],
        json!([{ "provider": "mvola", "supported": true, "mode": "simulation",
        "partial": true, "note": capabilities["data"][0]["note"] }])
    );

    let (status, partial) = call(
        &world.app,
        &world.merchant,
        "POST",
        &refunds,
        Some(json!({ "amount": "2500", "reason": "damaged" })),
    )
    .await;
    assert_eq!(status, 202, "{partial}");
    assert_eq!(partial["data"]["status"], "completed");
    assert_eq!(partial["data"]["amount"], "2500");
    assert!(partial["data"]["job"].is_null());
    let after = world.payment(payment["id"].as_str().unwrap()).await;
    assert_eq!(after["status"], "completed", "partly refunded payments stay completed");
    assert_eq!(after["refundedAmount"], "2500");

    let (status, over) =
        call(&world.app, &world.merchant, "POST", &refunds, Some(json!({ "amount": "8000" }))).await;
    assert_eq!(status, 409, "{over}");
    assert_eq!(over["meta"]["code"], "refund_exceeds_refundable");
    assert!(over["error"].as_str().unwrap().contains("7500"), "{over}");

    let (status, bad) =
        call(&world.app, &world.merchant, "POST", &refunds, Some(json!({ "amount": "1.234" }))).await;
    assert_eq!(status, 400, "{bad}");
    let (status, short) =
        call(&world.app, &world.merchant, "POST", &refunds, Some(json!({ "reason": "no" }))).await;
    assert_eq!(status, 400, "{short}");

    // Ten concurrent refunds of 1500 against the 7500 left: exactly five fit.
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let request = world
            .app
            .client
            .post(world.app.url(&refunds))
            .bearer_auth(&world.merchant)
            .json(&json!({ "amount": "1500" }));
        requests.spawn(async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        });
    }
    let results = requests.join_all().await;
    let accepted = results.iter().filter(|(status, _)| *status == 202).count();
    let refused: Vec<_> = results.iter().filter(|(status, _)| *status == 409).collect();
    assert_eq!(accepted, 5, "{results:?}");
    assert_eq!(refused.len(), 5, "{results:?}");
    // Nothing remains once five are reserved: the README's code for that case.
    assert!(refused.iter().all(|(_, body)| body["meta"]["code"] == "payment_fully_refunded"), "{refused:?}");

    let after = world.payment(payment["id"].as_str().unwrap()).await;
    assert_eq!(after["status"], "refunded");
    assert_eq!(after["refundedAmount"], "10000");
    let (status, list) = call(&world.app, &world.merchant, "GET", &refunds, None).await;
    assert_eq!(status, 200);
    assert_eq!(list["data"].as_array().unwrap().len(), 6);
    assert_eq!(list["meta"]["total"], 6, "{list}");

    // The merchant's balance went back to zero and each refund was one event.
    let db = world.app.db.connect().await;
    let merchant =
        ultra_domain::users::find_by_email(&db, ultra_tests::MERCHANT_EMAIL).await.unwrap().unwrap();
    let account = ultra_domain::ledger::find_account(&db, &format!("merchant:{}:MGA:available", merchant.id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(account.balance_minor, 0);
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    let refunded_events = ultra_entity::events::Entity::find()
        .filter(ultra_entity::events::Column::EventType.eq("payment.refunded"))
        .count(&db)
        .await
        .unwrap();
    assert_eq!(refunded_events, 6);

    let first = list["data"][5]["id"].as_str().unwrap();
    let (status, retry) =
        call(&world.app, &world.merchant, "POST", &format!("/api/v1/payments/refunds/{first}/retry"), None)
            .await;
    assert_eq!(status, 409, "a completed refund is not retried: {retry}");
    assert_eq!(retry["meta"]["code"], "refund_not_retryable");
}

#[tokio::test]
async fn airtel_refunds_go_through_its_api() {
    let world = LiveWorld::start().await;
    let (status, capabilities) =
        call(&world.app, &world.merchant, "GET", "/api/v1/payments/refund-capabilities", None).await;
    assert_eq!(status, 200);
    let by_provider = |name: &str| {
        capabilities["data"].as_array().unwrap().iter().find(|c| c["provider"] == name).unwrap().clone()
    };
    assert_eq!(by_provider("airtel")["mode"], "api");
    assert_eq!(by_provider("airtel")["partial"], false);
    assert_eq!(by_provider("mvola")["supported"], false);
    assert_eq!(by_provider("mvola")["mode"], "manual");
    assert_eq!(by_provider("orange")["supported"], false);

    // A whole refund, sent by a job.
    let payment = completed_payment(&world, "airtel", "4000", "0330000000").await;
    let refunds = format!("/api/v1/payments/{}/refunds", payment["id"].as_str().unwrap());
    let (status, partial) =
        call(&world.app, &world.merchant, "POST", &refunds, Some(json!({ "amount": "1000" }))).await;
    assert_eq!(status, 422, "{partial}");
    assert_eq!(partial["meta"]["code"], "partial_refund_not_supported");
    let (status, created) = call(&world.app, &world.merchant, "POST", &refunds, None).await;
    assert_eq!(status, 202, "{created}");
    assert_eq!(created["data"]["status"], "pending");
    assert_eq!(created["data"]["amount"], "4000");
    assert_eq!(created["data"]["job"]["kind"], "refunds.process");
    let refund = refund_until(&world, created["data"]["id"].as_str().unwrap(), "completed").await;
    assert!(refund["providerRefundId"].is_string(), "{refund}");
    assert_eq!(world.payment(payment["id"].as_str().unwrap()).await["status"], "refunded");
    let transactions = world.sandbox_transactions(payment["reference"].as_str().unwrap()).await;
    assert_eq!(transactions[0]["refunds"].as_array().unwrap().len(), 1, "{transactions:?}");

    // 07: Airtel refuses the first refund; a retry goes through.
    let payment = completed_payment(&world, "airtel", "4000", "0330000007").await;
    let refunds = format!("/api/v1/payments/{}/refunds", payment["id"].as_str().unwrap());
    let (_, created) =
        call(&world.app, &world.merchant, "POST", &refunds, Some(json!({ "reason": "returned" }))).await;
    let id = created["data"]["id"].as_str().unwrap().to_owned();
    let failed = refund_until(&world, &id, "failed").await;
    assert!(failed["failureReason"].as_str().is_some_and(|r| !r.is_empty()), "{failed}");
    assert_eq!(world.payment(payment["id"].as_str().unwrap()).await["refundedAmount"], "0");
    let (status, retried) =
        call(&world.app, &world.merchant, "POST", &format!("/api/v1/payments/refunds/{id}/retry"), None)
            .await;
    assert_eq!(status, 202, "{retried}");
    assert_eq!(retried["data"]["attempt"], 2);
    refund_until(&world, &id, "completed").await;
    assert_eq!(world.payment(payment["id"].as_str().unwrap()).await["status"], "refunded");

    // 08: Airtel takes its time; a poll picks the result up.
    let payment = completed_payment(&world, "airtel", "4000", "0330000008").await;
    let refunds = format!("/api/v1/payments/{}/refunds", payment["id"].as_str().unwrap());
    let (_, created) = call(&world.app, &world.merchant, "POST", &refunds, None).await;
    let id = created["data"]["id"].as_str().unwrap().to_owned();
    refund_until(&world, &id, "processing").await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (status, polled) =
        call(&world.app, &world.merchant, "POST", &format!("/api/v1/payments/refunds/{id}/poll"), None).await;
    assert_eq!(status, 202, "{polled}");
    assert_eq!(polled["data"]["job"]["kind"], "refunds.check");
    refund_until(&world, &id, "completed").await;

    // MVola has no refund API: the request says how to refund instead.
    let payment = completed_payment(&world, "mvola", "4000", "0340000000").await;
    let (status, refused) = call(
        &world.app,
        &world.merchant,
        "POST",
        &format!("/api/v1/payments/{}/refunds", payment["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["meta"]["code"], "refund_not_supported");
    assert!(refused["error"].as_str().unwrap().contains("merchant portal"), "{refused}");
}

#[tokio::test]
async fn another_merchants_payments_and_refunds_are_not_found() {
    let world = LiveWorld::start().await;
    let response = world
        .app
        .client
        .put(world.app.url("/api/v1/admin/providers/mvola"))
        .bearer_auth(&world.admin)
        .json(&json!({ "mode": "simulation" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let payment = completed_payment(&world, "mvola", "3000", "0340000000").await;
    let id = payment["id"].as_str().unwrap();
    let (_, refund) = call(
        &world.app,
        &world.merchant,
        "POST",
        &format!("/api/v1/payments/{id}/refunds"),
        Some(json!({ "amount": "1000" })),
    )
    .await;
    let refund_id = refund["data"]["id"].as_str().unwrap();

    world.app.db.create_user("other@ultra.test", Some("other-password-1"), "user", &["--tier", "pro-plus"]);
    let other = world.app.login("other@ultra.test", "other-password-1").await;
    let routes = [
        ("GET", format!("/api/v1/payments/{id}")),
        ("POST", format!("/api/v1/payments/{id}/poll")),
        ("POST", format!("/api/v1/payments/{id}/refunds")),
        ("GET", format!("/api/v1/payments/{id}/refunds")),
        ("GET", format!("/api/v1/payments/refunds/{refund_id}")),
        ("POST", format!("/api/v1/payments/refunds/{refund_id}/poll")),
        ("POST", format!("/api/v1/payments/refunds/{refund_id}/retry")),
    ];
    for (method, path) in &routes {
        let (status, body) = call(&world.app, &other, method, path, None).await;
        assert_eq!(status, 404, "{method} {path}: {body}");
    }
    let (status, list) = call(&world.app, &other, "GET", "/api/v1/payments", None).await;
    assert_eq!(status, 200);
    assert_eq!(list["data"], json!([]));
    // The owner and an admin still see them.
    for token in [&world.merchant, &world.admin] {
        let (status, _) =
            call(&world.app, token, "GET", &format!("/api/v1/payments/refunds/{refund_id}"), None).await;
        assert_eq!(status, 200);
    }
}
