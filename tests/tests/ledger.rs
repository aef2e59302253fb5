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
    ledger::post(&txn, entry(from, to, amount, reference)).await?;
    txn.commit().await?;
    Ok(())
}

/// An entry moving `amount` from one account to another.
fn entry<'a>(from: &'a str, to: &'a str, amount: i64, reference: &'a str) -> Entry<'a> {
    Entry {
        kind: "test",
        reference,
        description: None,
        postings: vec![
            Posting { account_id: from, amount_minor: -amount },
            Posting { account_id: to, amount_minor: amount },
        ],
    }
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

/// The stored balance of an account, as the row holds it.
async fn stored(db: &sea_orm::DatabaseConnection, id: &str) -> i64 {
    ultra_entity::ledger_accounts::Entity::find_by_id(id).one(db).await.unwrap().unwrap().balance_minor
}

#[tokio::test]
async fn a_system_account_is_never_updated_and_its_balance_is_its_postings() {
    let test_db = TestDb::new().await;
    let db = test_db.connect().await;
    let (world, merchant) = accounts(&db).await;
    transfer(&db, &world, &merchant, 100, "in").await.unwrap();
    transfer(&db, &merchant, &world, 30, "out").await.unwrap();

    assert_eq!(ledger::balance(&db, &world).await.unwrap(), -70);
    assert_eq!(stored(&db, &world).await, 0, "no payment waits on the system account's row");
    assert_eq!(ledger::balance(&db, &merchant).await.unwrap(), 70);
}

#[tokio::test]
async fn credits_held_in_a_group_land_once_at_its_end_and_a_rolled_back_one_never() {
    let test_db = TestDb::new().await;
    let db = test_db.connect().await;
    let (world, merchant) = accounts(&db).await;

    let txn = begin_write(&db).await.unwrap();
    ledger::held::holding(async {
        post_in(&txn, &world, &merchant, 40, "first").await;
        assert_eq!(ledger::balance(&txn, &merchant).await.unwrap(), 0, "held until the group's end");

        txn.execute_unprepared("SAVEPOINT effect").await.unwrap();
        let before = ledger::held::mark();
        post_in(&txn, &world, &merchant, 5, "undone").await;
        txn.execute_unprepared("ROLLBACK TO SAVEPOINT effect").await.unwrap();
        ledger::held::restore(before);

        post_in(&txn, &world, &merchant, 2, "second").await;
        ledger::held::apply(&txn).await.unwrap();
        ledger::held::apply(&txn).await.unwrap();
    })
    .await;
    txn.commit().await.unwrap();

    assert_eq!(
        ledger::balance(&db, &merchant).await.unwrap(),
        42,
        "each kept credit once, the undone one never"
    );
    assert_eq!(ledger::balance(&db, &world).await.unwrap(), -42);
    let postings = ledger_postings::Entity::find().all(&db).await.unwrap();
    assert_eq!(postings.iter().filter(|p| p.account_id == merchant).map(|p| p.amount_minor).sum::<i64>(), 42);
}

async fn post_in(txn: &sea_orm::DatabaseTransaction, from: &str, to: &str, amount: i64, reference: &str) {
    ledger::post(txn, entry(from, to, amount, reference)).await.unwrap();
}
