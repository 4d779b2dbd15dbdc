//! The accept loop's limits on raw sockets: silent, half-sent and idle connections are closed
//! at the head deadline, a trickled body gets 408, and connections over the cap get a 503.

use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::routing::{get, post};
use axum::{middleware, Router};
use hearth_http::{read_whole_body, serve, BodyLimits, ConnectionLimits, ConnectionStats};
use hearth_testkit::raw_http::{read_until_closed, wait_until};

async fn start(limits: ConnectionLimits) -> (SocketAddr, Arc<ConnectionStats>) {
    let body_limits = BodyLimits { max_bytes: 1000, read_timeout: limits.body_read_timeout };
    let app = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/echo", post(|body: Bytes| async move { format!("{} bytes", body.len()) }))
        .layer(middleware::from_fn_with_state(body_limits, read_whole_body));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stats = ConnectionStats::new(limits.max_connections);
    let serving = stats.clone();
    tokio::spawn(async move { serve(listener, app, &limits, serving, std::future::pending()).await });
    (addr, stats)
}

fn limits(max_connections: usize, keep_alive_ms: u64) -> ConnectionLimits {
    let keep_alive_timeout = Duration::from_millis(keep_alive_ms);
    ConnectionLimits { max_connections, keep_alive_timeout, body_read_timeout: Duration::from_millis(500) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_half_sent_and_idle_connections_are_closed() {
    let (addr, stats) = start(limits(64, 300)).await;
    let cases: [(&str, &[u8]); 4] = [
        ("silent", b""),
        ("half-sent head", b"GET /health HTTP/1.1\r\nHost: x\r\n"),
        ("a stalled HTTP/2 preface", b"PRI * HTTP/2"),
        ("idle keep-alive", b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"),
    ];
    for (case, sent) in cases {
        let text = tokio::task::spawn_blocking(move || read_until_closed(addr, sent)).await.unwrap();
        if case == "idle keep-alive" {
            assert!(text.starts_with("HTTP/1.1 200") && text.ends_with("ok"), "{case}: {text:?}");
        } else {
            assert!(!text.contains(" 200 "), "{case}: {text:?}");
        }
    }
    wait_until("no open connections", || stats.open() == 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_does_not_arrive_in_time_gets_408() {
    let (addr, _) = start(limits(64, 5000)).await;
    let sent = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789";
    let text = tokio::task::spawn_blocking(move || read_until_closed(addr, sent)).await.unwrap();
    assert!(text.starts_with("HTTP/1.1 408"), "{text:?}");
    assert!(text.contains("\"code\":\"request_timeout\""), "{text:?}");
    let sent = b"POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 10\r\n\r\n0123456789";
    let text = tokio::task::spawn_blocking(move || read_until_closed(addr, sent)).await.unwrap();
    assert!(text.starts_with("HTTP/1.1 200") && text.ends_with("10 bytes"), "{text:?}");
    let sent = b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n7d0\r\n";
    let mut request = sent.to_vec();
    request.extend(std::iter::repeat_n(b'x', 2000));
    request.extend_from_slice(b"\r\n0\r\n\r\n");
    let text = tokio::task::spawn_blocking(move || read_until_closed(addr, &request)).await.unwrap();
    assert!(text.starts_with("HTTP/1.1 413"), "a chunked body over the limit: {text:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_cap_get_503_until_one_closes() {
    let (addr, stats) = start(limits(2, 10_000)).await;
    let held: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(addr).unwrap()).collect();
    wait_until("two open connections", || stats.open() == 2);
    let sent = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
    let text = tokio::task::spawn_blocking(move || read_until_closed(addr, sent)).await.unwrap();
    assert!(text.starts_with("HTTP/1.1 503"), "{text:?}");
    assert!(text.to_ascii_lowercase().contains("retry-after: 1"), "{text:?}");
    assert!(text.contains("\"code\":\"too_many_connections\""), "{text:?}");
    assert_eq!(stats.refused(), 1);
    let metrics = stats.render_prometheus("hearth");
    assert!(metrics.contains("hearth:http_connections_open 2\n") && metrics.contains("hearth:http_connections_refused_total 1\n"), "{metrics}");
    drop(held);
    wait_until("no open connections", || stats.open() == 0);
    let sent = b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let text = tokio::task::spawn_blocking(move || read_until_closed(addr, sent)).await.unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text:?}");
}


#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_the_request_in_flight_finish_then_returns() {
    let app = Router::new().route("/slow", get(|| async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        "done"
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let limits = limits(64, 10_000);
    let serving = tokio::spawn(async move {
        serve(listener, app, &limits, ConnectionStats::new(64), async move {
            let _ = stopped.await;
        })
        .await
    });
    let idle = TcpStream::connect(addr).unwrap();
    let slow = tokio::spawn(async move { reqwest::get(format!("http://{addr}/slow")).await?.text().await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.send(()).unwrap();
    assert_eq!(slow.await.unwrap().unwrap(), "done");
    tokio::time::timeout(Duration::from_secs(5), serving).await.expect("serve returns once the connections close").unwrap().unwrap();
    drop(idle);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_longer_than_the_head_deadline_is_not_cut() {
    let app = Router::new().route("/slow-stream", get(|| async {
        let chunks = futures_util::stream::unfold(0, |i| async move {
            if i == 5 {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            Some((Ok::<_, std::convert::Infallible>(format!("chunk {i}\n")), i + 1))
        });
        axum::body::Body::from_stream(chunks)
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = limits(64, 200);
    tokio::spawn(async move { serve(listener, app, &limits, ConnectionStats::new(64), std::future::pending()).await });
    let body = reqwest::get(format!("http://{addr}/slow-stream")).await.unwrap().text().await.unwrap();
    assert_eq!(body.lines().count(), 5, "{body}");
}
