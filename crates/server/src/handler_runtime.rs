//! A runtime of its own for the API handlers, so that parsing, rendering and tokenizing a
//! multi-megabyte prompt never runs on the threads that serve connections, `/health` and
//! `/metrics`.

use std::sync::OnceLock;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::runtime::{Handle, Runtime};
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::error::ApiError;

/// The handlers' runtime, started on first use and kept for the life of the process (one per
/// process, whatever the number of servers in it).
fn handle() -> &'static Handle {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).max(2);
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads)
                .thread_name("hearth-handler")
                .enable_all()
                .build()
                .expect("the handler runtime starts")
        })
        .handle()
}

/// Middleware: runs the rest of the request on the handler runtime and hands its response (a
/// stream's body included) back to the connection's thread. If the client goes away first,
/// the handler is cancelled, as it would be inline. The request's tracing span goes along.
pub async fn run_on_handler_runtime(request: Request, next: Next) -> Response {
    let task = CancelOnDrop(handle().spawn(next.run(request).instrument(tracing::Span::current())));
    match task.join().await {
        Ok(response) => response,
        Err(e) if e.is_panic() => {
            tracing::error!("a request handler panicked: {e}");
            ApiError::internal("The request failed inside the server.").into_response()
        }
        Err(_) => ApiError::unavailable("The request was cancelled because the server is shutting down.", 5).into_response(),
    }
}

/// A task that is aborted when its handle is dropped unfinished.
struct CancelOnDrop<T>(JoinHandle<T>);

impl<T> CancelOnDrop<T> {
    async fn join(mut self) -> Result<T, tokio::task::JoinError> {
        (&mut self.0).await
    }
}

impl<T> Drop for CancelOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
