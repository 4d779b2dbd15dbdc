//! The `requests` target: a body on one of the POST routes, through the real router and engine
//! over SmolLM2 with a 96-token context, so that every request ends quickly. The answer must be
//! a success, or a 4xx or 503 carrying an error, never another 5xx; and every answer, streamed
//! or not, must end within 60 s.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use hearth_engine::{EngineConfig, ModelBundle};
use hearth_server::{AppState, ResponseStore, ServedModel, ServerConfig};
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::targets::ROUTES;

/// The longest an answer may take, streamed or not.
const ANSWER_LIMIT: Duration = Duration::from_secs(60);

struct Served {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
}

/// The router over SmolLM2, started once per process.
fn served() -> &'static Served {
    static SERVED: OnceLock<Served> = OnceLock::new();
    SERVED.get_or_init(|| {
        hearth_kernels::threads::init(None);
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a tokio runtime");
        let path = hearth_testkit::model_path(hearth_testkit::SMOLLM);
        let bundle = ModelBundle::load(&path).unwrap_or_else(|e| panic!("the requests target needs the test models (scripts/fetch-models.sh): {e}"));
        let engine = EngineConfig { kv_cache_memory: Some(32 << 20), max_model_len: Some(96), ..Default::default() };
        let config = ServerConfig { served_model_names: vec!["smollm".into()], ..Default::default() };
        let state = Arc::new(AppState::new(config, ResponseStore::memory(64)));
        let _context = runtime.enter();
        state.set_model(ServedModel::start(bundle, &engine, None).expect("SmolLM2 starts"));
        Served { runtime, router: hearth_server::router(state) }
    })
}

/// What one request got: its status and its whole body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

/// Posts `body` to `route` and reads the whole answer; panics if that takes over 60 s or the
/// answer's body breaks.
pub fn send(route: &str, body: &[u8]) -> Answer {
    let served = served();
    let request = Request::post(route).header("content-type", "application/json").body(Body::from(body.to_vec())).expect("a valid request head");
    served.runtime.block_on(async {
        let exchange = async {
            let response = served.router.clone().oneshot(request).await.unwrap_or_else(|never| match never {});
            let status = response.status().as_u16();
            let bytes = response.into_body().collect().await.unwrap_or_else(|e| panic!("{route}: the answer's body broke: {e}")).to_bytes();
            Answer { status, body: String::from_utf8_lossy(&bytes).into_owned() }
        };
        tokio::time::timeout(ANSWER_LIMIT, exchange).await.unwrap_or_else(|_| panic!("{route}: no whole answer within {ANSWER_LIMIT:?}"))
    })
}

/// An input's first byte picks the route, the rest is the body.
pub fn requests(data: &[u8]) {
    if let (_, Some(fault)) = judge_with_status(data) {
        panic!("{fault}");
    }
}

/// Sends one input: the status it got (for callers that count how deep inputs get), and what
/// is wrong when the answer is neither a success nor a clear refusal.
pub fn judge_with_status(data: &[u8]) -> (Option<u16>, Option<String>) {
    let Some((&route, body)) = data.split_first() else { return (None, None) };
    let route = ROUTES[route as usize % ROUTES.len()];
    let answer = send(route, body);
    let refused_clearly = matches!(answer.status, 400..=499 | 503) && answer.body.contains("error");
    let start: String = answer.body.chars().take(300).collect();
    let fault = (!(200..300).contains(&answer.status) && !refused_clearly).then(|| format!("{route} answered {}: {start}", answer.status));
    (Some(answer.status), fault)
}
