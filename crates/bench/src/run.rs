//! Drives a benchmark: requests at a fixed concurrency or arriving as a Poisson process,
//! bounded in time, with a progress callback.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::Semaphore;

use crate::client::{RequestOutcome, StreamingClient};
use crate::dataset::BenchPrompt;
use crate::stats::BenchReport;

/// How requests arrive.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Load {
    /// Always this many requests in flight.
    Concurrency(usize),
    /// Poisson arrivals at this mean rate (requests per second), at most `max_in_flight` at once.
    Rate { per_second: f64, max_in_flight: Option<usize> },
}

#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub load: Load,
    /// Stop starting requests after this long (those in flight finish).
    pub duration: Option<Duration>,
    pub seed: u64,
}

/// Runs every prompt (or as many as fit in the duration) and reports.
pub async fn run_benchmark(
    client: &StreamingClient,
    prompts: Vec<BenchPrompt>,
    config: &BenchConfig,
    label: String,
    progress: impl Fn(usize, usize) + Send + Sync + 'static,
) -> BenchReport {
    let total = prompts.len();
    let limit = match config.load {
        Load::Concurrency(n) => n.max(1),
        Load::Rate { max_in_flight, .. } => max_in_flight.unwrap_or(Semaphore::MAX_PERMITS),
    };
    let slots = Arc::new(Semaphore::new(limit));
    let progress = Arc::new(progress);
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut rng = StdRng::seed_from_u64(config.seed);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for prompt in prompts {
        if config.duration.is_some_and(|d| started.elapsed() >= d) {
            break;
        }
        if let Load::Rate { per_second, .. } = config.load {
            // exponential gaps between arrivals
            let gap = -(1.0 - rng.random::<f64>()).ln() / per_second.max(1e-9);
            tokio::time::sleep(Duration::from_secs_f64(gap)).await;
        }
        let permit = slots.clone().acquire_owned().await.expect("semaphore open");
        let (client, progress, done) = (client.clone(), progress.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let outcome = client.complete(&prompt).await;
            drop(permit);
            let finished = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            progress(finished, total);
            outcome
        }));
    }
    let mut outcomes: Vec<RequestOutcome> = Vec::with_capacity(tasks.len());
    for task in tasks {
        outcomes.push(task.await.unwrap_or_else(|e| RequestOutcome { error: Some(e.to_string()), ..Default::default() }));
    }
    BenchReport::new(label, &outcomes, started.elapsed())
}
