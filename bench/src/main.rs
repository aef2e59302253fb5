//! `ultra-bench`: Ultra's benchmarks, each against a fresh database, its own Redis prefix and
//! the real release binaries, on 127.0.0.1 and bounded in time and count. Method and the
//! latest figures: `bench/README.md`.

mod api;
mod capacity;
mod e2e;
mod export;
mod jobs;
mod load;
mod report;
mod usage;
mod volume;
mod webhooks;
mod world;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Ultra's benchmarks (bench/README.md)")]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// POST and GET payments at 64 connections, against GET /healthz and a bare insert loop.
    Api {
        /// Seconds each load runs.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// Jobs per second through the pipeline, by one worker and by two.
    Jobs {
        #[arg(long, default_value_t = 20_000)]
        count: u64,
    },
    /// Webhook deliveries per second, CPU per delivery, completion-to-receipt latency.
    Webhooks {
        #[arg(long, default_value_t = 10_000)]
        count: u64,
        #[arg(long, default_value_t = 500)]
        latency_count: u64,
    },
    /// A live payment against the sandbox until its webhook arrives.
    EndToEnd {
        #[arg(long, default_value_t = 500)]
        count: u64,
    },
    /// A CSV export of a million payments, built by the worker and downloaded: time and peak
    /// resident memory of both.
    Export {
        #[arg(long, default_value_t = 1_000_000)]
        count: u64,
    },
    /// Live payments at rising rates through the whole platform until its backlog no longer
    /// drains: the sustained capacity.
    Capacity {
        /// Payments a second offered, one step each, in order.
        #[arg(long, value_delimiter = ',', default_values_t = [50, 100, 200, 400, 800, 1600])]
        rates: Vec<u64>,
        /// Seconds each rate is offered.
        #[arg(long, default_value_t = 30)]
        seconds: u64,
    },
    /// The same operations on a fresh database and on a year of a large merchant's data.
    Volume {
        /// Payments in the year.
        #[arg(long, default_value_t = 10_000_000)]
        payments: u64,
    },
    /// Everything above with its defaults.
    All,
}

#[tokio::main]
async fn main() {
    // The `ultra` binary built beside this one, unless told otherwise.
    if std::env::var_os("ULTRA_BIN").is_none()
        && let Some(dir) = std::env::current_exe().ok().and_then(|exe| exe.parent().map(|p| p.to_owned()))
    {
        // SAFETY: set before any other thread of this process reads the environment.
        unsafe { std::env::set_var("ULTRA_BIN", dir.join("ultra")) };
    }
    // PostgreSQL over loopback without TLS, as a single-host install runs it; both Ultra and
    // the baselines connect the same way.
    if std::env::var_os("ULTRA_TEST_PG_URL").is_none() {
        // SAFETY: as above.
        unsafe {
            std::env::set_var(
                "ULTRA_TEST_PG_URL",
                "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable",
            )
        };
    }
    let mut report = report::Report::default();
    let bench = Cli::parse().bench;
    let run = async {
        match bench {
            Bench::Api { seconds } => api::run(&mut report, seconds).await,
            Bench::Jobs { count } => jobs::run(&mut report, count).await,
            Bench::Webhooks { count, latency_count } => {
                webhooks::run(&mut report, count, latency_count).await
            }
            Bench::EndToEnd { count } => e2e::run(&mut report, count).await,
            Bench::Export { count } => export::run(&mut report, count).await,
            Bench::Capacity { rates, seconds } => capacity::run(&mut report, &rates, seconds).await,
            Bench::Volume { payments } => volume::run(&mut report, payments).await,
            Bench::All => {
                api::run(&mut report, 10).await;
                jobs::run(&mut report, 20_000).await;
                webhooks::run(&mut report, 10_000, 500).await;
                e2e::run(&mut report, 500).await;
                export::run(&mut report, 1_000_000).await;
                capacity::run(&mut report, &[50, 100, 200, 400, 800, 1600], 30).await;
                volume::run(&mut report, 10_000_000).await;
            }
        }
    };
    // An interrupted run drops its worlds, which remove what they made (see `world`).
    tokio::select! {
        () = run => report.print(),
        _ = tokio::signal::ctrl_c() => eprintln!("interrupted"),
    }
}
