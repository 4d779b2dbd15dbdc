//! The accept loop: open connections capped (refused with a 503 beyond the cap), a deadline for
//! each request head (which also closes idle keep-alive connections), graceful shutdown.

use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, HeaderValue, Request, Response, StatusCode};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt;

/// Connections beyond the cap that may be answered at once with a 503; past these, new
/// connections are closed without an answer.
const MAX_REFUSALS_IN_FLIGHT: usize = 64;

/// How a listener treats its connections.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Open connections served at once; one more gets `503` and is closed.
    pub max_connections: usize,
    /// How long the server waits for the head of a request, counted from when it starts
    /// waiting: a new connection, a keep-alive connection between requests, or a head sent
    /// only in part. Then the connection is closed.
    pub keep_alive_timeout: Duration,
    /// Time a request has to send its whole body (408 beyond; see `read_whole_body`).
    pub body_read_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits { max_connections: 8192, keep_alive_timeout: Duration::from_secs(30), body_read_timeout: Duration::from_secs(60) }
    }
}

/// Live counts of one server's connections, for its metrics.
#[derive(Debug)]
pub struct ConnectionStats {
    slots: Arc<Semaphore>,
    max: usize,
    refused: AtomicU64,
    last_refusal_warning: Mutex<Option<Instant>>,
}

impl ConnectionStats {
    pub fn new(max_connections: usize) -> Arc<Self> {
        let max = max_connections.clamp(1, Semaphore::MAX_PERMITS);
        Arc::new(ConnectionStats {
            slots: Arc::new(Semaphore::new(max)),
            max,
            refused: AtomicU64::new(0),
            last_refusal_warning: Mutex::new(None),
        })
    }

    /// Connections being served now.
    pub fn open(&self) -> usize {
        self.max - self.slots.available_permits()
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// Connections refused because the cap was reached, since start.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// The counts in Prometheus text format, named `{prefix}:http_connections_*`.
    pub fn render_prometheus(&self, prefix: &str) -> String {
        let metrics = [
            ("open", "gauge", "Connections being served.", self.open() as u64),
            ("max", "gauge", "Most connections served at once (--max-connections).", self.max as u64),
            ("refused_total", "counter", "Connections refused with a 503 because the limit was reached.", self.refused()),
        ];
        metrics
            .iter()
            .map(|(name, kind, help, value)| {
                format!("# HELP {prefix}:http_connections_{name} {help}\n# TYPE {prefix}:http_connections_{name} {kind}\n{prefix}:http_connections_{name} {value}\n")
            })
            .collect()
    }

    fn note_refusal(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
        let mut last = self.last_refusal_warning.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_none_or(|at| at.elapsed() > Duration::from_secs(10)) {
            *last = Some(Instant::now());
            tracing::warn!("refusing connections: {} are open, the limit (--max-connections) is {}", self.open(), self.max);
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves; then stops accepting, lets every
/// connection finish its requests and returns when all have closed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: &ConnectionLimits,
    stats: Arc<ConnectionStats>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS_IN_FLIGHT));
    tokio::pin!(shutdown);
    loop {
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    pause_after_accept_error(&e).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let timeout = limits.keep_alive_timeout;
        match stats.slots.clone().try_acquire_owned() {
            Ok(slot) => {
                let service = app.clone();
                tokio::spawn(serve_connection(stream, service, timeout, stop_rx.clone(), slot));
            }
            Err(_) => {
                stats.note_refusal();
                if let Ok(slot) = refusals.clone().try_acquire_owned() {
                    tokio::spawn(refuse_connection(stream, timeout, limits.max_connections, slot));
                }
            }
        }
    }
    drop(listener);
    drop(stop_rx);
    let _ = stop_tx.send(true);
    // every connection task holds a receiver; all gone means all connections closed
    stop_tx.closed().await;
    Ok(())
}

/// Accept errors: a full file table frees up only as connections close, so wait a little
/// rather than spin; a connection reset before it was accepted is nothing to wait for.
async fn pause_after_accept_error(error: &io::Error) {
    if matches!(error.kind(), io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset | io::ErrorKind::Interrupted) {
        return;
    }
    tracing::warn!("cannot accept a connection: {error}");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

fn connection_builder(timeout: Duration) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(timeout);
    builder.http2().timer(TokioTimer::new()).keep_alive_interval(Some(timeout));
    builder
}

async fn serve_connection(
    stream: TcpStream,
    app: Router,
    timeout: Duration,
    mut stop: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) {
    let chosen = tokio::select! {
        chosen = tokio::time::timeout(timeout, await_protocol_choice(&stream)) => matches!(chosen, Ok(Ok(()))),
        _ = stop.wait_for(|stop| *stop) => false,
    };
    if !chosen {
        return;
    }
    let service = app.map_request(|request: Request<Incoming>| request.map(Body::new));
    let builder = connection_builder(timeout);
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service));
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => return,
        _ = stop.wait_for(|stop| *stop) => connection.as_mut().graceful_shutdown(),
    }
    let _ = connection.await;
}

/// A connection over the cap: its request is read (within the head deadline) and answered
/// with a 503 and `Connection: close`, so that the client sees why rather than a hang.
async fn refuse_connection(stream: TcpStream, timeout: Duration, max_connections: usize, _slot: OwnedSemaphorePermit) {
    let refuse = tower::service_fn(move |_request: Request<Incoming>| async move {
        Ok::<_, std::convert::Infallible>(too_many_connections(max_connections))
    });
    let mut builder = auto::Builder::new(TokioExecutor::new()).http1_only();
    builder.http1().timer(TokioTimer::new()).header_read_timeout(timeout).keep_alive(false);
    let serving = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(refuse));
    let _ = tokio::time::timeout(timeout, serving).await;
}

fn too_many_connections(max_connections: usize) -> Response<Body> {
    let message = format!("The server has the most connections it takes open ({max_connections}); retry shortly.");
    let body = hearth_protocol::ErrorResponse::new(message, "server_error", None, Some("too_many_connections"));
    let mut response = Response::new(Body::from(serde_json::to_vec(&body).unwrap_or_default()));
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

const HTTP2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Waits until the first bytes tell HTTP/1 from HTTP/2 (hyper's own detection has no
/// deadline, so a silent client would hold the connection forever).
async fn await_protocol_choice(stream: &TcpStream) -> io::Result<()> {
    let mut first = [0u8; HTTP2_PREFACE.len()];
    loop {
        let seen = stream.peek(&mut first).await?;
        if seen == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if seen == first.len() || first[..seen] != HTTP2_PREFACE[..seen] {
            return Ok(());
        }
        // a prefix of the preface so far: peek again once more may have come
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
