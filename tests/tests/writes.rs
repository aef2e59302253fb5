//! Rows written together (`db::insert_all`, which every payment's writes go through) land all
//! or none, on a bare connection and inside a caller's transaction alike.

use chrono::Utc;
use sea_orm::{
    ActiveValue::Set, DatabaseConnection, EntityTrait, PaginatorTrait, QueryTrait, sea_query::InsertStatement,
};
use ultra_domain::db::{begin_write, insert_all};
use ultra_entity::audit_logs;
use ultra_tests::TestDb;

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
