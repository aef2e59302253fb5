//! The double-entry ledger against the real database.

use sea_orm::{ConnectionTrait, EntityTrait};
use ultra_domain::{
    DomainError,
    db::begin_write,
    ledger::{self, AccountSpec, Entry, Posting},
};
use ultra_entity::ledger_postings;
use ultra_tests::TestDb;

async fn accounts(db: &sea_orm::DatabaseConnection) -> (String, String) {
    let world = ledger::open_account(
        db,
        AccountSpec { code: "world:MGA", owner_id: None, currency: "MGA", allow_negative: true },
    )
    .await
    .unwrap();
    let merchant = ledger::open_account(
        db,
        AccountSpec { code: "merchant:m1:available", owner_id: None, currency: "MGA", allow_negative: false },
    )
    .await
    .unwrap();
    (world.id, merchant.id)
}

async fn transfer(
    db: &sea_orm::DatabaseConnection,
    from: &str,
    to: &str,
    amount: i64,
    reference: &str,
) -> Result<(), DomainError> {
    let txn = begin_write(db).await?;
    ledger::post(
        &txn,
        Entry {
            kind: "test",
            reference,
            description: None,
            postings: vec![
                Posting { account_id: from, amount_minor: -amount },
                Posting { account_id: to, amount_minor: amount },
            ],
        },
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

#[tokio::test]
async fn concurrent_debits_never_overdraw() {
    let test_db = TestDb::new().await;
    let db = test_db.connect().await;
    let (world, merchant) = accounts(&db).await;
    transfer(&db, &world, &merchant, 100, "fund").await.unwrap();

    let mut tasks = Vec::new();
    for i in 0..20 {
        let (db, world, merchant) = (db.clone(), world.clone(), merchant.clone());
        tasks.push(tokio::spawn(
            async move { transfer(&db, &merchant, &world, 10, &format!("debit-{i}")).await },
        ));
    }
    let mut succeeded = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => succeeded += 1,
            Err(DomainError::InsufficientFunds { required, available }) => {
                assert_eq!(required, 10);
                assert!(available < 10);
            }
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
    assert_eq!(succeeded, 10, "exactly the funded amount is spent");
    assert_eq!(ledger::balance(&db, &merchant).await.unwrap(), 0);

    // The postings agree with the balances: every entry sums to zero.
    let postings = ledger_postings::Entity::find().all(&db).await.unwrap();
    assert_eq!(postings.iter().map(|p| p.amount_minor).sum::<i64>(), 0);
    assert_eq!(postings.iter().filter(|p| p.account_id == merchant).map(|p| p.amount_minor).sum::<i64>(), 0);
}

#[tokio::test]
async fn unbalanced_and_repeated_entries_are_refused() {
    let test_db = TestDb::new().await;
    let db = test_db.connect().await;
    let (world, merchant) = accounts(&db).await;

    let txn = begin_write(&db).await.unwrap();
    let unbalanced = ledger::post(
        &txn,
        Entry {
            kind: "test",
            reference: "bad",
            description: None,
            postings: vec![
                Posting { account_id: &world, amount_minor: -5 },
                Posting { account_id: &merchant, amount_minor: 4 },
            ],
        },
    )
    .await;
    assert!(matches!(unbalanced, Err(DomainError::Validation { .. })));
    txn.rollback().await.unwrap();

    transfer(&db, &world, &merchant, 50, "once").await.unwrap();
    let again = transfer(&db, &world, &merchant, 50, "once").await;
    assert!(matches!(again, Err(DomainError::Conflict { code: "ledger_reference_posted", .. })), "{again:?}");
    assert_eq!(ledger::balance(&db, &merchant).await.unwrap(), 50);

    // The database itself refuses a negative balance on an account that may not go negative.
    let direct = db
        .execute_unprepared(&format!("UPDATE ledger_accounts SET balance_minor = -1 WHERE id = '{merchant}'"))
        .await;
    assert!(direct.is_err(), "CHECK constraint holds");
}
