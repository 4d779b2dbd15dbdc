//! The gateway under hostile clients and backends: silent connections closed, connections over
//! its cap refused with a 503, and a backend that closes keep-alive connections under the next
//! request loses no request and trips no breaker.

use std::time::Duration;

use hearth_gateway::FrontLimits;
use hearth_http::ConnectionLimits;
use hearth_testkit::closing_server::ClosingServer;
use hearth_testkit::raw_http::{read_until_closed, wait_until};
use crate::support::*;

const MAPPING: &str = "models:\n  - name: coder\n    routes:\n      - provider: closing\n        model: up\n";

fn closing_provider(stub: &ClosingServer) -> String {
    format!("providers:\n  - name: closing\n    kind: openai\n    base_url: {}/v1\n    first_token_timeout_s: 5\n    timeout_s: 10\n    health:\n      enabled: false\n", stub.url())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_that_closes_reused_connections_loses_no_request() {
    let stub = ClosingServer::start();
    let (url, gateway, _config) = start_gateway(&closing_provider(&stub), MAPPING, None).await;
    for round in 0..3 {
        let streamed = post(&url, &chat("coder", true)).await;
        assert_eq!(streamed.status(), 200, "round {round}");
        assert!(streamed_text(&events(streamed).await).contains("Hello there."));
        let plain = post(&url, &chat("coder", false)).await;
        assert_eq!(plain.status(), 200, "round {round}");
        assert_eq!(plain.headers()["x-hearth-attempts"], "1", "round {round}: resent on a new connection, not failed over");
    }
    assert!(stub.dropped() >= 3, "the stub closed connections under requests ({} times)", stub.dropped());
    let metrics = reqwest::get(format!("{url}/metrics")).await.unwrap().text().await.unwrap();
    assert!(!metrics.contains("backend_failures_total{backend=\"closing\"}"), "{metrics}");
    assert_eq!(gateway.backends[0].outstanding.load(std::sync::atomic::Ordering::Acquire), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_are_closed_and_those_over_the_cap_refused() {
    let stub = ClosingServer::start();
    let connections = ConnectionLimits { max_connections: 2, keep_alive_timeout: Duration::from_millis(400), ..Default::default() };
    let front = FrontLimits { connections, ..Default::default() };
    let (url, gateway, _config) = start_gateway_with_front(&closing_provider(&stub), MAPPING, None, front).await;
    let addr: std::net::SocketAddr = url.trim_start_matches("http://").parse().unwrap();
    let held: Vec<_> = (0..2).map(|_| std::net::TcpStream::connect(addr).unwrap()).collect();
    wait_until("two open connections", || gateway.connections.open() == 2);
    let refused = tokio::task::spawn_blocking(move || read_until_closed(addr, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"));
    let refused = refused.await.unwrap();
    assert!(refused.starts_with("HTTP/1.1 503") && refused.contains("too_many_connections"), "{refused}");
    // the two silent connections are closed at the head deadline
    wait_until("the silent connections closed", || gateway.connections.open() == 0);
    drop(held);
    let metrics = reqwest::get(format!("{url}/metrics")).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("hearth_gateway:http_connections_refused_total 1\n"), "{metrics}");
}
