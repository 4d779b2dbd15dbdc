//! The soak test: a realistic mix of requests (streaming and not, client disconnects, client
//! errors, long and short prompts) for a long time, with the server's memory, open files, KV
//! cache and latency sampled every few seconds and judged for upward trends.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::soak_verdict::{judge, Verdict};

#[derive(Debug, Clone)]
pub struct SoakConfig {
    pub base_url: String,
    pub model: String,
    pub api_key: Option<String>,
    /// The server's process, for its memory and open files (`/proc/PID`); None: not sampled.
    pub pid: Option<u32>,
    pub duration: Duration,
    pub sample_every: Duration,
    /// Clients sending requests one after another.
    pub concurrency: usize,
    pub seed: u64,
    /// Whether a latency trend fails the soak (off on machines shared with other work).
    pub judge_latency: bool,
}

/// One sample of the server's state.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    pub at_s: f64,
    pub rss_mib: Option<f64>,
    pub open_files: Option<f64>,
    pub kv_usage: Option<f64>,
    pub running: Option<f64>,
    /// Median end-to-end latency of the short requests finished since the last sample.
    pub latency_p50_ms: Option<f64>,
    pub requests: u64,
}

/// What a soak saw.
#[derive(Debug, Clone)]
pub struct SoakReport {
    pub samples: Vec<Sample>,
    /// Requests answered as they should be (errors included where one was due).
    pub as_expected: u64,
    /// Requests answered otherwise (5xx, transport errors, wrong shapes), with the first few.
    pub unexpected: u64,
    pub unexpected_examples: Vec<String>,
    /// The server's state before the load and once it had settled after it.
    pub before: Sample,
    pub after: Sample,
    pub verdict: Verdict,
}

/// The kinds of request in the mix, with their shares.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    ShortStream,
    ShortPlain,
    LongStream,
    Disconnect,
    Completion,
    BadJson,
    UnknownModel,
    TooManyChoices,
}

const MIX: [(Kind, u32); 8] = [
    (Kind::ShortStream, 30),
    (Kind::ShortPlain, 20),
    (Kind::LongStream, 10),
    (Kind::Disconnect, 15),
    (Kind::Completion, 10),
    (Kind::BadJson, 5),
    (Kind::UnknownModel, 5),
    (Kind::TooManyChoices, 5),
];

fn pick(rng: &mut StdRng) -> Kind {
    let total: u32 = MIX.iter().map(|(_, w)| w).sum();
    let mut roll = rng.random_range(0..total);
    for (kind, weight) in MIX {
        if roll < weight {
            return kind;
        }
        roll -= weight;
    }
    Kind::ShortStream
}

/// What the clients share: counts and the latencies since the last sample.
#[derive(Default)]
struct Tally {
    as_expected: AtomicU64,
    unexpected: AtomicU64,
    examples: Mutex<Vec<String>>,
    latencies_ms: Mutex<Vec<f64>>,
}

impl Tally {
    fn record(&self, outcome: Result<Option<f64>, String>) {
        match outcome {
            Ok(latency) => {
                self.as_expected.fetch_add(1, Ordering::Relaxed);
                if let Some(ms) = latency {
                    self.latencies_ms.lock().unwrap_or_else(|e| e.into_inner()).push(ms);
                }
            }
            Err(what) => {
                self.unexpected.fetch_add(1, Ordering::Relaxed);
                let mut examples = self.examples.lock().unwrap_or_else(|e| e.into_inner());
                if examples.len() < 10 {
                    examples.push(what);
                }
            }
        }
    }
}

/// Runs the soak: a settled sample, the load with samples, then a settled sample again.
pub async fn run_soak(config: &SoakConfig, progress: impl Fn(&Sample)) -> SoakReport {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(300)).build().expect("HTTP client");
    let probe = Probe { http: http.clone(), base_url: config.base_url.trim_end_matches('/').to_string(), pid: config.pid };
    let before = probe.settled(Duration::from_secs(30)).await;
    let tally = Arc::new(Tally::default());
    let started = Instant::now();
    let clients: Vec<_> = (0..config.concurrency.max(1))
        .map(|i| {
            let client = Client { http: http.clone(), config: config.clone(), tally: tally.clone() };
            tokio::spawn(async move { client.run(started, config_seed(client.config.seed, i)).await })
        })
        .collect();
    let mut samples = Vec::new();
    while started.elapsed() < config.duration {
        tokio::time::sleep(config.sample_every.min(config.duration.saturating_sub(started.elapsed()))).await;
        let mut sample = probe.sample(started).await;
        let mut latencies = std::mem::take(&mut *tally.latencies_ms.lock().unwrap_or_else(|e| e.into_inner()));
        sample.requests = tally.as_expected.load(Ordering::Relaxed) + tally.unexpected.load(Ordering::Relaxed);
        sample.latency_p50_ms = median(&mut latencies);
        progress(&sample);
        samples.push(sample);
    }
    for client in clients {
        let _ = client.await;
    }
    let after = probe.settled(Duration::from_secs(60)).await;
    let verdict = judge(&samples, &before, &after, tally.unexpected.load(Ordering::Relaxed), config.concurrency, config.judge_latency);
    let unexpected_examples = tally.examples.lock().unwrap_or_else(|e| e.into_inner()).clone();
    SoakReport {
        samples,
        as_expected: tally.as_expected.load(Ordering::Relaxed),
        unexpected: tally.unexpected.load(Ordering::Relaxed),
        unexpected_examples,
        before,
        after,
        verdict,
    }
}

fn config_seed(seed: u64, client: usize) -> u64 {
    seed.wrapping_mul(1_000_003).wrapping_add(client as u64)
}

fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    Some(values[values.len() / 2])
}

/// Reads the server's state: `/proc/PID` and `/metrics`.
struct Probe {
    http: reqwest::Client,
    base_url: String,
    pid: Option<u32>,
}

impl Probe {
    async fn sample(&self, started: Instant) -> Sample {
        let metrics = match self.http.get(format!("{}/metrics", self.base_url)).send().await {
            Ok(response) => response.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        Sample {
            at_s: started.elapsed().as_secs_f64(),
            rss_mib: self.pid.and_then(rss_mib),
            open_files: self.pid.and_then(open_files),
            kv_usage: metric(&metrics, "hearth:kv_cache_usage_perc"),
            running: metric(&metrics, "hearth:num_requests_running"),
            ..Default::default()
        }
    }

    /// A sample once no request runs (or after `patience`).
    async fn settled(&self, patience: Duration) -> Sample {
        let since = Instant::now();
        loop {
            let sample = self.sample(since).await;
            if sample.running.unwrap_or(0.0) == 0.0 || since.elapsed() > patience {
                return sample;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn open_files(pid: u32) -> Option<f64> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as f64)
}

/// The first value of a Prometheus metric (any labels).
fn metric(text: &str, name: &str) -> Option<f64> {
    hearth_protocol::prometheus::first(text, name)
}

/// One client: requests of random kinds, one after another, until the time is up.
struct Client {
    http: reqwest::Client,
    config: SoakConfig,
    tally: Arc<Tally>,
}

impl Client {
    async fn run(&self, started: Instant, seed: u64) {
        let mut rng = StdRng::seed_from_u64(seed);
        while started.elapsed() < self.config.duration {
            let kind = pick(&mut rng);
            let salt = rng.random::<u32>();
            let outcome = self.one(kind, salt).await.map_err(|e| format!("{kind:?}: {e}"));
            self.tally.record(outcome);
        }
    }

    /// Sends one request; Ok(latency in ms, for the short kinds) when it was answered as due.
    async fn one(&self, kind: Kind, salt: u32) -> Result<Option<f64>, String> {
        let started = Instant::now();
        let short = |text: &str, extra: Value| self.chat_body(text, extra);
        let latency = || Some(started.elapsed().as_secs_f64() * 1000.0);
        match kind {
            Kind::ShortStream => {
                let body = short(&format!("Name a colour ({salt})."), json!({"stream": true, "max_tokens": 24, "temperature": 0.8, "seed": salt}));
                self.expect_stream("/v1/chat/completions", &body, None).await.map(|_| latency())
            }
            Kind::ShortPlain => {
                let body = short(&format!("Say a number ({salt})."), json!({"max_tokens": 16, "temperature": 0}));
                self.expect_status("/v1/chat/completions", body.to_string(), 200).await.map(|_| latency())
            }
            Kind::LongStream => {
                let text = (0..60).map(|i| format!("Line {i} of note {salt}: the river runs past the mill.")).collect::<Vec<_>>().join("\n");
                let body = short(&format!("{text}\nSummarise the note."), json!({"stream": true, "max_tokens": 8}));
                self.expect_stream("/v1/chat/completions", &body, None).await.map(|_| None)
            }
            Kind::Disconnect => {
                let body = short("Tell a long story about a lighthouse.", json!({"stream": true, "max_tokens": 400, "ignore_eos": true}));
                self.expect_stream("/v1/chat/completions", &body, Some(3)).await.map(|_| None)
            }
            Kind::Completion => {
                let body = json!({"model": self.config.model, "prompt": format!("Once upon a time ({salt})"), "max_tokens": 12});
                self.expect_status("/v1/completions", body.to_string(), 200).await.map(|_| None)
            }
            Kind::BadJson => self.expect_status("/v1/chat/completions", "{\"messages\": [".into(), 400).await.map(|_| None),
            Kind::UnknownModel => {
                let body = json!({"model": format!("no-such-model-{salt}"), "messages": [{"role": "user", "content": "hi"}]});
                self.expect_status("/v1/chat/completions", body.to_string(), 404).await.map(|_| None)
            }
            Kind::TooManyChoices => {
                let body = short("hi", json!({"n": 100_000}));
                self.expect_status("/v1/chat/completions", body.to_string(), 400).await.map(|_| None)
            }
        }
    }

    fn chat_body(&self, text: &str, extra: Value) -> Value {
        let mut body = json!({"model": self.config.model, "messages": [{"role": "user", "content": text}]});
        if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
            body.extend(extra);
        }
        body
    }

    fn post(&self, path: &str, body: String) -> reqwest::RequestBuilder {
        let request = self.http.post(format!("{}{}", self.config.base_url.trim_end_matches('/'), path)).header("content-type", "application/json").body(body);
        match &self.config.api_key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
    }

    async fn expect_status(&self, path: &str, body: String, want: u16) -> Result<(), String> {
        let response = self.post(path, body).send().await.map_err(|e| format!("transport: {e}"))?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|e| format!("body: {e}"))?;
        if status != want {
            return Err(format!("HTTP {status} (wanted {want}): {}", text.chars().take(200).collect::<String>()));
        }
        let value: Value = serde_json::from_str(&text).map_err(|e| format!("not JSON ({e}): {text:.200}"))?;
        match (want, value.get("error")) {
            (200, None) | (400..=499, Some(_)) => Ok(()),
            _ => Err(format!("HTTP {status} with the wrong shape: {text:.200}")),
        }
    }

    /// Reads an SSE answer to `[DONE]`, or goes away after `leave_after` events.
    async fn expect_stream(&self, path: &str, body: &Value, leave_after: Option<usize>) -> Result<(), String> {
        let response = self.post(path, body.to_string()).send().await.map_err(|e| format!("transport: {e}"))?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(format!("HTTP {status}: {:.200}", response.text().await.unwrap_or_default()));
        }
        let (mut text, mut stream) = (String::new(), response.bytes_stream());
        while let Some(piece) = stream.next().await {
            text.push_str(&String::from_utf8_lossy(&piece.map_err(|e| format!("stream broke: {e}"))?));
            if leave_after.is_some_and(|n| text.matches("\n\n").count() >= n) {
                return Ok(());
            }
        }
        match text.trim_end().ends_with("data: [DONE]") {
            true => Ok(()),
            false => Err(format!("the stream ended without [DONE]: {:.200}", text)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_read_with_or_without_labels() {
        let text = "# HELP x\nhearth:kv_cache_usage_perc{model_name=\"m\"} 0.25\nhearth:num_requests_running 3\nhearth:num_requests_running_total 9\n";
        assert_eq!(metric(text, "hearth:kv_cache_usage_perc"), Some(0.25));
        assert_eq!(metric(text, "hearth:num_requests_running"), Some(3.0));
        assert_eq!(metric(text, "hearth:missing"), None);
    }

    #[test]
    fn the_mix_picks_every_kind() {
        let mut rng = StdRng::seed_from_u64(1);
        let picked: Vec<Kind> = (0..2000).map(|_| pick(&mut rng)).collect();
        for (kind, _) in MIX {
            assert!(picked.contains(&kind), "{kind:?}");
        }
    }
}
