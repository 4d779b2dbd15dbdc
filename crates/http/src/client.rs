//! An HTTP client that reuses connections safely: a request that fails because the server had
//! already closed the pooled connection it went out on is sent once more on a new connection.

use std::error::Error as _;
use std::io;

/// A pooled `reqwest` client, plus one that never reuses a connection, for the resend.
#[derive(Debug, Clone)]
pub struct Client {
    pooled: reqwest::Client,
    fresh: reqwest::Client,
}

impl Client {
    /// Both clients from the same settings (`settings` is called twice).
    pub fn new(settings: impl Fn() -> reqwest::ClientBuilder) -> Result<Self, reqwest::Error> {
        Ok(Client { pooled: settings().build()?, fresh: settings().pool_max_idle_per_host(0).build()? })
    }

    /// The pooled client, for requests that need no resend (probes).
    pub fn pooled(&self) -> &reqwest::Client {
        &self.pooled
    }

    /// Sends the request `build` makes on the pooled client; if the connection turns out to be
    /// one the server had closed (it failed before any answer came), builds it again and
    /// sends it on a new connection. Any other error is returned as it is.
    pub async fn send(&self, build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder) -> reqwest::Result<reqwest::Response> {
        match build(&self.pooled).send().await {
            Err(e) if is_stale_connection(&e) => {
                tracing::debug!("resending on a new connection: the pooled one was closed ({e})");
                build(&self.fresh).send().await
            }
            other => other,
        }
    }
}

/// Whether an error means the connection was closed under the request before the server
/// answered (hyper's "connection closed before message completed", a reset or a broken pipe),
/// not a refused connection, a timeout or a bad answer.
pub fn is_stale_connection(error: &reqwest::Error) -> bool {
    if error.is_timeout() || error.is_connect() || error.is_status() || error.is_decode() || error.is_body() {
        return false;
    }
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(hyper_error) = cause.downcast_ref::<hyper::Error>() {
            if hyper_error.is_incomplete_message() || hyper_error.is_canceled() {
                return true;
            }
        }
        if let Some(io_error) = cause.downcast_ref::<io::Error>() {
            if matches!(
                io_error.kind(),
                io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionAborted | io::ErrorKind::UnexpectedEof
            ) {
                return true;
            }
        }
        source = cause.source();
    }
    false
}
