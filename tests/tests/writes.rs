//! Rows written together (`db::insert_all`, which every payment's writes go through) land all
//! or none, on a bare connection and inside a caller's transaction alike; payments opened
//! together still each get their own answer.

use chrono::Utc;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryTrait,
    sea_query::InsertStatement,
};
use serde_json::Map;
use ultra_domain::{
    audit::Actor,
    db::{begin_write, insert_all},
    payments::NewPayment,
    provider_configs::Provider,
};
use ultra_entity::{audit_logs, jobs, payments, provider_configs::ProviderMode};
use ultra_jobs::{
    QueueClient,
    kinds::payments::{Opener, Opening},
};
use ultra_tests::{TestDb, redis_url};

fn entry(id: &str) -> InsertStatement {
    audit_logs::Entity::insert(audit_logs::ActiveModel {
        id: Set(id.to_owned()),
        action: Set("test.write".to_owned()),
        entity_type: Set("test".to_owned()),
        entity_id: Set(None),
        actor_id: Set(None),
        ip: Set(None),
        request_id: Set(None),
        details: Set(None),
        created_at: Set(Utc::now()),
    })
    .into_query()
    .to_owned()
}

async fn count(db: &DatabaseConnection) -> u64 {
    audit_logs::Entity::find().count(db).await.unwrap()
}

#[tokio::test]
async fn rows_written_together_land_all_or_none() {
    let test_db = TestDb::new().await;
    let db = test_db.connect().await;
    let before = count(&db).await;

    insert_all(&db, &[entry("aud_w1"), entry("aud_w2"), entry("aud_w3")]).await.unwrap();
    assert_eq!(count(&db).await, before + 3);

    // The third row repeats the first one's id: the whole write fails, the second row with it.
    let clash = insert_all(&db, &[entry("aud_w4"), entry("aud_w5"), entry("aud_w4")]).await;
    assert!(clash.is_err(), "a duplicate id must fail the write");
    assert_eq!(count(&db).await, before + 3, "nothing of a failed write remains");

    // Inside a caller's transaction the rows are the caller's: rolled back with it.
    let txn = begin_write(&db).await.unwrap();
    insert_all(&txn, &[entry("aud_w6"), entry("aud_w7")]).await.unwrap();
    txn.rollback().await.unwrap();
    assert_eq!(count(&db).await, before + 3, "a rolled-back transaction keeps none of its rows");
}

fn opening(id: String) -> Opening {
    Opening {
        new: NewPayment {
            id,
            merchant_id: "usr_opener".to_owned(),
            provider: Provider::Mvola,
            mode: ProviderMode::Simulation,
            amount_minor: 500_000,
            currency: "MGA",
            customer_phone: "0340000000".to_owned(),
            description: None,
            metadata: None,
            merchant_reference: None,
            payment_link_id: None,
            subscription_id: None,
            expires_at: Utc::now() + chrono::Duration::minutes(15),
        },
        actor: Actor { user_id: Some("usr_opener".to_owned()), ..Actor::default() },
        details: Map::new(),
    }
}

#[tokio::test]
async fn payments_opened_together_each_get_their_own_answer() {
    let test_db = TestDb::new().await;
    let db = test_db.connect().await;
    let prefix = format!("test:{}:", ulid::Ulid::new().to_string().to_lowercase());
    let redis = ultra_domain::redis_conn::connect(&redis_url()).await.unwrap();
    let queue = QueueClient::new(redis, prefix);
    let opener = Opener::new(db.clone(), queue.clone());
    let (taken, _) = opener.open(opening(NewPayment::new_id())).await.unwrap();

    // Forty at once, one of them reusing a payment id: it cannot be written, and must not take
    // the payments written with it down too.
    let ids: Vec<String> =
        (0..40).map(|n| if n == 20 { taken.id.clone() } else { NewPayment::new_id() }).collect();
    let tasks: Vec<_> = ids
        .iter()
        .map(|id| {
            let (opener, opening) = (opener.clone(), opening(id.clone()));
            tokio::spawn(async move { opener.open(opening).await })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    for (n, (id, answer)) in ids.iter().zip(&answers).enumerate() {
        match answer {
            Ok((payment, job)) => {
                assert_ne!(n, 20, "a payment id already taken was written again");
                assert_eq!(&payment.id, id);
                assert_eq!(job.resource_id.as_deref(), Some(id.as_str()));
            }
            Err(err) => assert_eq!(n, 20, "payment {n} failed: {err}"),
        }
    }
    assert!(answers[20].is_err());

    let written =
        payments::Entity::find().filter(payments::Column::MerchantId.eq("usr_opener")).count(&db).await;
    assert_eq!(written.unwrap(), 40, "the first payment and the 39 new ones");
    let collect_jobs =
        jobs::Entity::find().filter(jobs::Column::Kind.eq("payments.collect")).count(&db).await;
    assert_eq!(collect_jobs.unwrap(), 40);
    let entries =
        audit_logs::Entity::find().filter(audit_logs::Column::Action.eq("payment.created")).count(&db).await;
    assert_eq!(entries.unwrap(), 40);
    let (due, _) = queue.depth("payments").await.unwrap();
    assert_eq!(due, 40, "every written payment's job was pushed");
}
