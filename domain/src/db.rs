//! Connecting to PostgreSQL or SQLite, and opening write transactions that behave the same on both.

use std::{fmt::Write, time::Duration};

use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    SqliteTransactionMode, Statement, TransactionOptions, TransactionSession, TransactionTrait,
    sea_query::{InsertStatement, PostgresQueryBuilder, QueryBuilder, SqlWriterValues},
};

/// How long a pooled connection may sit idle before it is pinged on checkout.
pub const POOL_PING_AFTER_IDLE: Duration = Duration::from_secs(10);

pub async fn connect(url: &str, max_connections: u32) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        // A connection in steady use is known to be alive; pinging it on every checkout
        // would add a round trip to every transaction. One idle long enough for a server,
        // proxy or firewall to have dropped it is still pinged first.
        .test_before_acquire_if_idle_for(POOL_PING_AFTER_IDLE)
        .sqlx_logging(false)
        // WAL lets readers proceed while one writer commits; foreign keys are off by default in
        // SQLite and the schema relies on them; the busy timeout makes a second writer wait
        // for the first rather than fail at once. Waiting writers poll rather than queue, so
        // under a hundred concurrent writers one can wait well past ten seconds; a minute
        // keeps such a burst from failing.
        .map_sqlx_sqlite_opts(|opts| {
            opts.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(60))
        })
        // The conditional updates that keep money and jobs consistent are written for READ
        // COMMITTED; set once per connection, it costs no statement per transaction.
        .map_sqlx_postgres_opts(|opts| opts.options([("default_transaction_isolation", "read committed")]));
    Database::connect(options).await
}

/// Begins a transaction that will write. On SQLite it is `BEGIN IMMEDIATE`: a deferred
/// transaction that reads and then writes can lose an update or fail with "database is locked"
/// when another writer got in between, while an immediate one simply waits its turn. On
/// PostgreSQL it is a plain `BEGIN` at the connection's READ COMMITTED ([`connect`]).
///
/// A connection the server dropped (PostgreSQL restarted, or an operator ended its sessions)
/// fails on its first statement; `BEGIN` changes nothing, so it is sent again on another
/// connection, and a request that had not started yet goes through.
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    let mut tries = 0;
    loop {
        let begun = match db.get_database_backend() {
            DbBackend::Sqlite => {
                let options = TransactionOptions {
                    sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                    ..Default::default()
                };
                db.begin_with_options(options).await
            }
            _ => db.begin().await,
        };
        match begun {
            Err(err) if tries < BEGIN_TRIES && connection_lost(&err) => tries += 1,
            begun => return begun,
        }
    }
}

/// How many dropped connections `BEGIN` moves past: a pool holds at most this many dead ones
/// in a row only when the server is truly gone.
const BEGIN_TRIES: u32 = 3;

/// The error came from a connection that is gone (reset, closed, or ended by the server)
/// rather than from the statement.
fn connection_lost(err: &DbErr) -> bool {
    use sea_orm::sqlx::Error;
    match sqlx_error(err) {
        Some(Error::Io(_) | Error::Protocol(_) | Error::WorkerCrashed) => true,
        Some(Error::Database(db_err)) => db_err.code().is_some_and(|code| is_connection_state(&code)),
        _ => false,
    }
}

/// Whether the statement that failed with `err` is known not to have taken effect, and a retry
/// may succeed: no connection could be had, or the server itself reported the failure as a
/// lost or ended connection, a shutdown, a deadlock or a serialization failure, all of which
/// roll the transaction back. A connection that broke while waiting for an answer says
/// nothing of whether a `COMMIT` or single statement went through, so it is not among them.
pub fn is_retryable(err: &DbErr) -> bool {
    use sea_orm::sqlx::Error;
    if matches!(err, DbErr::ConnectionAcquire(_)) {
        return true;
    }
    match sqlx_error(err) {
        Some(Error::PoolTimedOut | Error::PoolClosed) => true,
        Some(Error::Database(db_err)) => db_err
            .code()
            .is_some_and(|code| is_connection_state(&code) || matches!(code.as_ref(), "40001" | "40P01")),
        _ => false,
    }
}

/// SQLSTATE class 08 (connection exception) and 57P01-57P03 (admin or crash shutdown, cannot
/// connect now).
fn is_connection_state(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03")
}

fn sqlx_error(err: &DbErr) -> Option<&sea_orm::sqlx::Error> {
    match err {
        DbErr::Conn(sea_orm::RuntimeErr::SqlxError(inner))
        | DbErr::Exec(sea_orm::RuntimeErr::SqlxError(inner))
        | DbErr::Query(sea_orm::RuntimeErr::SqlxError(inner)) => Some(inner.as_ref()),
        _ => None,
    }
}

/// Writes rows that do not depend on one another, all or none, in `db`'s transaction or, given
/// a connection, in one of their own. On PostgreSQL they go as one statement, the first ones as
/// data-modifying `WITH` clauses of the last: one round trip where a payment would otherwise
/// take one per row, and atomic without `BEGIN` and `COMMIT`. SQLite has no such clauses and
/// takes them one by one in a transaction (a savepoint inside the caller's).
pub async fn insert_all<C>(db: &C, inserts: &[InsertStatement]) -> Result<(), DbErr>
where
    C: ConnectionTrait + TransactionTrait,
{
    let Some((last, first)) = inserts.split_last() else { return Ok(()) };
    if db.get_database_backend() != DbBackend::Postgres {
        let txn = db.begin().await?;
        for insert in inserts {
            txn.execute(insert).await?;
        }
        return txn.commit().await;
    }
    let unwritable = |err: std::fmt::Error| DbErr::Custom(format!("building a statement: {err}"));
    let mut sql = SqlWriterValues::new("$", true);
    for (index, insert) in first.iter().enumerate() {
        let lead = if index == 0 { "WITH" } else { "," };
        write!(sql, "{lead} w{index} AS (").map_err(unwritable)?;
        PostgresQueryBuilder.prepare_insert_statement(insert, &mut sql);
        sql.write_str(") ").map_err(unwritable)?;
    }
    PostgresQueryBuilder.prepare_insert_statement(last, &mut sql);
    let (sql, values) = sql.into_parts();
    db.execute_raw(Statement::from_sql_and_values(DbBackend::Postgres, sql, values)).await?;
    Ok(())
}

pub async fn ping(db: &DatabaseConnection) -> Result<(), DbErr> {
    db.execute_unprepared("SELECT 1").await.map(|_| ())
}
