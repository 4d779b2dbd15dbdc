//! The gateway leaks nothing under a hostile mix: malformed bodies, bursts over the backends'
//! limits, clients that hang up mid-stream and a backend cycling through mid-body faults. The
//! gateway runs on a runtime of its own so that its tasks can be counted; the one test in this
//! binary keeps the process's open files its own.

mod support;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use futures_util::StreamExt;
use hearth_gateway::Gateway;
use hearth_testkit::raw_http::wait_until;
use serde_json::Value;
use support::*;

const MAPPING: &str = "models:\n  - name: coder\n    routes:\n      - provider: a\n        model: up-a\n      - provider: b\n        model: up-b\n";
const WARM_UP_ROUNDS: usize = 2;
const MEASURED_ROUNDS: usize = 8;

/// What a leak would make grow, read with the gateway idle: tasks and open files beyond
/// those of the pooled keep-alive connections to the backends (each one is a task of the
/// gateway and two open sockets of this process, the gateway's end and the stub's), whose
/// number the pool settles on differently from run to run.
#[derive(Debug, Clone, Copy)]
struct Footprint {
    pooled_connections: usize,
    gateway_tasks: usize,
    open_files: usize,
}

impl Footprint {
    fn tasks_beyond_pool(&self) -> usize {
        self.gateway_tasks.saturating_sub(self.pooled_connections)
    }

    fn files_beyond_pool(&self) -> usize {
        self.open_files.saturating_sub(2 * self.pooled_connections)
    }
}

fn open_files() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}

/// The TCP sockets of the machine: (local port, remote port, state as /proc writes it).
fn sockets() -> Vec<(u16, u16, String)> {
    let tables = ["/proc/net/tcp", "/proc/net/tcp6"].map(|p| std::fs::read_to_string(p).unwrap_or_default());
    let port_of = |address: &str| address.rsplit(':').next().and_then(|p| u16::from_str_radix(p, 16).ok()).unwrap_or(0);
    tables
        .iter()
        .flat_map(|t| t.lines().skip(1))
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields.len() > 3).then(|| (port_of(fields[1]), port_of(fields[2]), fields[3].to_string()))
        })
        .collect()
}

/// Sockets on the given ports that the peer closed and this side did not (CLOSE_WAIT).
fn close_wait_sockets(ports: &[u16]) -> usize {
    sockets().iter().filter(|(local, remote, state)| state == "08" && (ports.contains(local) || ports.contains(remote))).count()
}

/// Open connections to the given (backend) ports, counted at the connecting end.
fn connections_to(ports: &[u16]) -> usize {
    sockets().iter().filter(|(_, remote, state)| state == "01" && ports.contains(remote)).count()
}

async fn malformed_bodies(client: &reqwest::Client, url: &str) {
    // what the gateway itself refuses (it passes well-formed requests on to the backend as they are)
    let bodies = ["{oops", "[]", "", r#"{"model": 5}"#, r#"{"model": "no-such-model", "messages": []}"#];
    for body in bodies {
        let r = client.post(format!("{url}/v1/chat/completions")).header("content-type", "application/json").body(body).send().await.unwrap();
        assert!(r.status().is_client_error(), "{body:?}: {}", r.status());
        let answer: Value = r.json().await.unwrap();
        assert!(answer["error"]["message"].is_string(), "{body:?}: {answer}");
    }
}

/// 16 requests at once against backends that take 4 each: answered or refused with an error.
async fn burst(client: &reqwest::Client, url: &str) {
    let requests = (0..16).map(|i| async move {
        let r = client.post(format!("{url}/v1/chat/completions")).json(&chat("coder", i % 2 == 0)).send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        assert!(matches!(status, 200 | 429 | 503), "{status}: {text}");
        assert!(status == 200 || text.contains("\"error\""), "{status}: {text}");
    });
    futures_util::future::join_all(requests).await;
}

/// Clients that read the first piece of a stream and hang up.
async fn hang_ups(url: &str) {
    let requests = (0..6).map(|_| async move {
        let client = reqwest::Client::new();
        let r = client.post(format!("{url}/v1/chat/completions")).json(&chat("coder", true)).send().await.unwrap();
        let mut body = r.bytes_stream();
        let _ = body.next().await;
    });
    futures_util::future::join_all(requests).await;
}

async fn round(url: &str, a: &Stub, index: usize) {
    let client = reqwest::Client::new();
    malformed_bodies(&client, url).await;
    burst(&client, url).await;
    hang_ups(url).await;
    a.set(Behaviour::MID_BODY[index % Behaviour::MID_BODY.len()].clone());
    for stream in [false, true] {
        let r = client.post(format!("{url}/v1/chat/completions")).json(&chat("coder", stream)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let _ = r.text().await;
    }
    a.set(Behaviour::Answer);
}

/// Waits until nothing is in flight, then reads the footprint.
fn idle_footprint(gateway: &Gateway, runtime: &tokio::runtime::Runtime, backend_ports: &[u16]) -> Footprint {
    wait_until("no request outstanding at any backend", || gateway.backends.iter().all(|b| b.outstanding.load(Ordering::Acquire) == 0));
    wait_until("no client connection open", || gateway.connections.open() == 0);
    // let the tasks of finished streams and hung-up clients wind down
    std::thread::sleep(std::time::Duration::from_millis(300));
    Footprint { pooled_connections: connections_to(backend_ports), gateway_tasks: runtime.metrics().num_alive_tasks(), open_files: open_files() }
}

#[test]
fn a_hostile_mix_leaks_no_task_socket_or_slot() {
    let gateway_runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let client_runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (a, b) = client_runtime.block_on(async { (start_stub("a", false).await, start_stub("b", false).await) });
    let limit = "    max_concurrent: 4\n    health:\n      enabled: false\n";
    let providers = format!("providers:\n{}{}", provider_yaml(&a, false, limit), provider_yaml(&b, false, limit));
    let (url, gateway, _config): (String, Arc<Gateway>, _) = gateway_runtime.block_on(start_gateway(&providers, MAPPING, None));
    let ports: Vec<u16> = [a.addr.port(), b.addr.port(), url.rsplit(':').next().unwrap().parse().unwrap()].to_vec();

    for i in 0..WARM_UP_ROUNDS {
        client_runtime.block_on(round(&url, &a, i));
    }
    let warm = idle_footprint(&gateway, &gateway_runtime, &ports[..2]);
    for i in 0..MEASURED_ROUNDS {
        client_runtime.block_on(round(&url, &a, WARM_UP_ROUNDS + i));
    }
    let after = idle_footprint(&gateway, &gateway_runtime, &ports[..2]);
    // a leak of anything per round would grow by at least MEASURED_ROUNDS
    assert!(after.tasks_beyond_pool() < warm.tasks_beyond_pool() + MEASURED_ROUNDS, "gateway tasks {warm:?} -> {after:?}");
    assert!(after.files_beyond_pool() < warm.files_beyond_pool() + MEASURED_ROUNDS, "open files {warm:?} -> {after:?}");
    assert_eq!(close_wait_sockets(&ports), 0, "sockets left half-closed");
    let metrics = client_runtime.block_on(async { reqwest::get(format!("{url}/metrics")).await.unwrap().text().await.unwrap() });
    assert!(metrics.contains("hearth_gateway:http_connections_open 1\n"), "only the metrics request itself: {metrics}");
    eprintln!("idle footprint after {WARM_UP_ROUNDS} warm-up rounds {warm:?}, after {MEASURED_ROUNDS} more {after:?}");
}
