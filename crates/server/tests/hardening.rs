//! The server under heavy and hostile clients: multi-megabyte prompts are prepared off the
//! connection threads (so `/health` stays fast), silent connections are closed, and connections
//! over the cap get a 503.

mod support;

use std::time::{Duration, Instant};

use hearth_http::ConnectionLimits;
use hearth_server::ServerConfig;
use serde_json::json;
use hearth_testkit::raw_http::{read_until_closed, wait_until};
use support::*;

/// About `bytes` of varied code-like text.
fn big_prompt(bytes: usize, salt: usize) -> String {
    let mut text = String::with_capacity(bytes + 64);
    let mut i = 0;
    while text.len() < bytes {
        text.push_str(&format!("def function_{salt}_{i}(x):\n    return x * {i} + {}\n", i % 7));
        i += 1;
    }
    text
}

/// The server and these clients share one thread, as a busy server's connection threads
/// would be shared: before the fix, tokenizing a prompt there stalled every other request.
#[tokio::test(flavor = "current_thread")]
async fn health_stays_fast_while_big_prompts_are_prepared() {
    let server = start().await;
    let started = Instant::now();
    let big = (0..4).map(|i| {
        let body = chat(&big_prompt(5 << 20, i), json!({"max_tokens": 1}));
        let server = &server;
        async move { post(server, "/v1/chat/completions", &body).await }
    });
    let big = futures_util::future::join_all(big);
    tokio::pin!(big);
    let (mut latencies, mut answered_at) = (Vec::new(), vec![started]);
    let answers = loop {
        tokio::select! {
            answers = &mut big => break answers,
            _ = async {
                let sent = Instant::now();
                let (status, _) = get(&server, "/health").await;
                assert_eq!(status, 200);
                latencies.push(sent.elapsed());
                answered_at.push(Instant::now());
                tokio::time::sleep(Duration::from_millis(5)).await;
            } => {}
        }
    };
    let total = started.elapsed();
    answered_at.push(Instant::now());
    for (status, body) in &answers {
        assert_eq!(*status, 400, "{body}");
        assert_eq!(body["error"]["code"], "context_length_exceeded", "the whole prompt was tokenized: {body}");
    }
    // the longest stretch in which /health gave no answer (a stalled poll never even finishes)
    let worst_gap = answered_at.windows(2).map(|w| w[1] - w[0]).max().unwrap_or_default();
    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100];
    println!(
        "4 x 5 MB prompts in {total:?}; /health: {} answers, p50 {:?}, p99 {p99:?}, longest without an answer {worst_gap:?}",
        latencies.len(),
        latencies[latencies.len() / 2]
    );
    assert!(worst_gap * 10 < total, "/health went {worst_gap:?} without an answer while the big prompts took {total:?} in all");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_are_closed_and_those_over_the_cap_refused() {
    let connections = ConnectionLimits { max_connections: 2, keep_alive_timeout: Duration::from_millis(400), ..Default::default() };
    let server = start_unloaded(ServerConfig { connections, ..server_config() }).await;
    let held: Vec<_> = (0..2).map(|_| std::net::TcpStream::connect(server.addr).unwrap()).collect();
    wait_until("two open connections", || server.state.connections.open() == 2);
    let addr = server.addr;
    let refused = tokio::task::spawn_blocking(move || read_until_closed(addr, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"));
    let refused = refused.await.unwrap();
    assert!(refused.starts_with("HTTP/1.1 503") && refused.contains("too_many_connections"), "{refused}");
    wait_until("the silent connections closed", || server.state.connections.open() == 0);
    drop(held);
    let metrics = client().get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("hearth:http_connections_refused_total 1\n"), "{metrics}");
}
