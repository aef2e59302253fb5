//! The `ultra` binary: one executable for every process of the platform.

mod allocator;
mod dev;
mod services;
mod settings;
mod shutdown;
mod telemetry;
mod users_cmd;

use clap::Parser;

use crate::settings::{Cli, Command, UsersCommand};

fn main() -> anyhow::Result<()> {
    allocator::limit_arenas();
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Command::Openapi { public_url } = &cli.command {
        println!("{}", ultra_api::openapi_spec(public_url));
        return Ok(());
    }
    telemetry::init_logging(cli.log_format);
    match cli.command {
        Command::Api { db, redis, shared, api } => {
            let db = services::database(&db).await?;
            services::require_migrated(&db).await?;
            let redis_conn = services::redis(&redis.redis_url).await?;
            let keys = services::Keys::required(&api, &shared)?;
            let metrics = telemetry::init_metrics()?;
            let state = services::api_state(db.clone(), redis_conn.clone(), &keys, &api, &shared, &redis)?;
            let shutdown = shutdown::on_signal();
            tokio::try_join!(
                ultra_api::serve(state, &api.api_addr, shutdown.clone().cancelled_owned()),
                async {
                    if api.api_operator_addr.is_empty() {
                        return Ok(());
                    }
                    ultra_worker::operator::serve(
                        &api.api_operator_addr,
                        db,
                        redis_conn,
                        metrics,
                        shutdown.clone(),
                    )
                    .await
                },
            )?;
        }
        Command::Worker { db, redis, shared, worker } => {
            let env = services::job_env(&shared, &services::encryption_key(&shared)?, &worker)?;
            let db = services::database(&db).await?;
            services::require_migrated(&db).await?;
            let redis_conn = services::redis(&redis.redis_url).await?;
            let queue = ultra_jobs::QueueClient::new(redis_conn.clone(), &redis.redis_prefix);
            let settings = services::worker_settings(&worker);
            ultra_worker::run(
                db,
                redis_conn,
                redis::Client::open(redis.redis_url.as_str())?,
                queue,
                settings,
                env,
                telemetry::init_metrics()?,
                shutdown::on_signal(),
            )
            .await?;
        }
        Command::Scheduler { db, redis, scheduler } => {
            let db = services::database(&db).await?;
            services::require_migrated(&db).await?;
            let redis_conn = services::redis(&redis.redis_url).await?;
            let queue = ultra_jobs::QueueClient::new(redis_conn.clone(), &redis.redis_prefix);
            let settings = services::scheduler_settings(&scheduler);
            ultra_scheduler::run(db, redis_conn, queue, settings, shutdown::on_signal()).await?;
        }
        Command::Migrate { db } => {
            let db = services::database(&db).await?;
            services::migrate(&db).await?;
        }
        Command::Sandbox { sandbox } => {
            ultra_sandbox::serve(
                &sandbox.sandbox_addr,
                sandbox.config(),
                shutdown::on_signal().cancelled_owned(),
            )
            .await?;
        }
        Command::Dev { db, redis, shared, api, worker, scheduler, sandbox } => {
            dev::run(db, redis, shared, api, worker, scheduler, sandbox).await?;
        }
        Command::Users {
            command: UsersCommand::Create { db, email, name, role, password, tier, super_admin, phone },
        } => {
            let db = services::database(&db).await?;
            services::require_migrated(&db).await?;
            let user = users_cmd::create(
                &db,
                users_cmd::Create { email, name, role, password, tier, super_admin, phone },
            )
            .await?;
            println!("created user {} <{}>", user.id, user.email);
        }
        Command::Openapi { .. } => unreachable!("handled before logging starts"),
    }
    Ok(())
}
