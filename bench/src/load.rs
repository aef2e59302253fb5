//! A closed-loop load generator: a fixed number of clients, each sending its next request as
//! soon as the last one is answered, for a bounded time and count; latencies in an HDR
//! histogram.

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;

/// What one run measured.
pub struct Summary {
    pub requests: u64,
    pub errors: u64,
    pub seconds: f64,
    pub histogram: Histogram<u64>,
}

impl Summary {
    pub fn rate(&self) -> f64 {
        self.requests as f64 / self.seconds
    }

    /// The latency at quantile `q`, in milliseconds.
    pub fn ms(&self, q: f64) -> f64 {
        self.histogram.value_at_quantile(q) as f64 / 1000.0
    }
}

pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000, 3).expect("valid histogram bounds")
}

/// Runs `clients` loops of `request(n)` until `duration` has passed or `limit` requests were
/// sent. `request` answers whether the request succeeded.
pub async fn closed_loop<F, Fut>(clients: usize, duration: Duration, limit: u64, request: F) -> Summary
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send,
{
    let request = Arc::new(request);
    let sent = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (request, sent, errors) = (Arc::clone(&request), Arc::clone(&sent), Arc::clone(&errors));
            tokio::spawn(async move {
                let mut latencies = histogram();
                loop {
                    let n = sent.fetch_add(1, Ordering::Relaxed);
                    if n >= limit || Instant::now() >= deadline {
                        sent.fetch_sub(1, Ordering::Relaxed);
                        return latencies;
                    }
                    let began = Instant::now();
                    if !request(n).await {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    latencies.saturating_record(began.elapsed().as_micros() as u64);
                }
            })
        })
        .collect();
    let mut all = histogram();
    for task in tasks {
        all.add(task.await.expect("load task")).expect("histograms of one shape");
    }
    Summary {
        requests: sent.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
        seconds: start.elapsed().as_secs_f64(),
        histogram: all,
    }
}

/// Starts `request(n)` for n in 0..count at `per_second`, each without waiting for the last
/// (an open loop: arrivals do not slow down when answers do), and waits for them all.
pub async fn paced<F, Fut>(per_second: u64, count: u64, request: F)
where
    F: Fn(u64) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut ticks = tokio::time::interval(Duration::from_micros(1_000_000 / per_second.max(1)));
    let mut started = Vec::with_capacity(count as usize);
    for n in 0..count {
        ticks.tick().await;
        started.push(tokio::spawn(request(n)));
    }
    for task in started {
        let _ = task.await;
    }
}

/// Samples a process's resident memory every 100 ms until dropped, keeping the peak.
pub struct PeakRss {
    peak: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl PeakRss {
    pub fn watch(pid: u32) -> Self {
        let peak = Arc::new(AtomicU64::new(0));
        let seen = Arc::clone(&peak);
        let task = tokio::spawn(async move {
            loop {
                let kib = (crate::usage::rss_mib(pid) * 1024.0) as u64;
                seen.fetch_max(kib, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Self { peak, task }
    }

    pub fn mib(&self) -> f64 {
        self.peak.load(Ordering::Relaxed) as f64 / 1024.0
    }
}

impl Drop for PeakRss {
    fn drop(&mut self) {
        self.task.abort();
    }
}
