//! The gateway against backends that fail after their 200 and headers: hang, stall mid-body,
//! send a corrupt event, or end the body early. Complete answers come whole from the next
//! route; a stream that has begun ends with one error event and `[DONE]`, never with junk
//! relayed or a false clean end.

use serde_json::Value;
use crate::support::*;

const MAPPING: &str = "models:\n  - name: coder\n    routes:\n      - provider: a\n        model: up-a\n      - provider: b\n        model: up-b\n";

/// Two fresh stubs of one kind behind a fresh gateway (no breaker state shared between cases),
/// `a` with the fault.
async fn gateway_with_faulty_first_route(fault: &Behaviour, ollama: bool) -> (String, std::sync::Arc<Stub>, std::sync::Arc<Stub>, hearth_testkit::ScratchDir) {
    let (a, b) = (start_stub("a", ollama).await, start_stub("b", ollama).await);
    let providers = format!("providers:\n{}{}", provider_yaml(&a, ollama, ""), provider_yaml(&b, ollama, ""));
    let (url, _gateway, config) = start_gateway(&providers, MAPPING, None).await;
    a.set(fault.clone());
    (url, a, b, config)
}

async fn complete_answer_comes_from_the_second_route(fault: Behaviour, ollama: bool) {
    let case = format!("{fault:?}, ollama backend: {ollama}");
    let (url, a, _b, _config) = gateway_with_faulty_first_route(&fault, ollama).await;
    let r = post(&url, &chat("coder", false)).await;
    assert_eq!(r.status(), 200, "{case}");
    assert_eq!(r.headers()["x-hearth-backend"], "b", "{case}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], WORDS.concat(), "{case}: {body}");
    assert_eq!(a.count(), 1, "{case}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_answers_broken_after_the_headers_come_whole_from_the_next_route() {
    let cases = [false, true].into_iter().flat_map(|ollama| Behaviour::MID_BODY.map(|fault| complete_answer_comes_from_the_second_route(fault, ollama)));
    futures_util::future::join_all(cases).await;
}

/// A stream whose first route failed after its first byte: what came is a prefix of the
/// answer, every event is JSON, then one `backend_stream_broken` error and `[DONE]`.
async fn broken_stream_ends_with_an_error_event(fault: Behaviour, ollama: bool) {
    let case = format!("{fault:?}, ollama backend: {ollama}");
    let (url, _a, b, _config) = gateway_with_faulty_first_route(&fault, ollama).await;
    let r = post(&url, &chat("coder", true)).await;
    assert_eq!(r.status(), 200, "{case}");
    let expected_backend = if fault == Behaviour::HangAfterHeaders { "b" } else { "a" };
    assert_eq!(r.headers()["x-hearth-backend"], expected_backend, "{case}");
    let ev = events(r).await;
    assert_eq!(ev.last().map(String::as_str), Some("[DONE]"), "{case}: {ev:?}");
    let chunks: Vec<Value> = ev[..ev.len() - 1].iter().map(|e| serde_json::from_str(e).unwrap_or_else(|_| panic!("{case}: not JSON: {e:?}"))).collect();
    let text = streamed_text(&ev);
    if fault == Behaviour::HangAfterHeaders {
        // no first byte within first_token_timeout_s: the stream moved on before it began
        assert_eq!(text, WORDS.concat(), "{case}");
        assert!(chunks.iter().all(|c| c.get("error").is_none()), "{case}: {ev:?}");
        return;
    }
    assert!(WORDS.concat().starts_with(&text) && text.len() < WORDS.concat().len(), "{case}: {text:?}");
    let errors: Vec<&Value> = chunks.iter().filter(|c| c.get("error").is_some()).collect();
    assert_eq!(errors.len(), 1, "{case}: {ev:?}");
    assert_eq!(chunks.last().unwrap()["error"]["code"], "backend_stream_broken", "{case}: the error is the last event before [DONE]");
    assert!(chunks.iter().all(|c| c["choices"][0]["finish_reason"].is_null()), "{case}: no false finish: {ev:?}");
    assert_eq!(b.count(), 0, "{case}: no retry once the client has bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_broken_after_the_headers_end_with_one_error_event() {
    let cases = [false, true].into_iter().flat_map(|ollama| Behaviour::MID_BODY.map(|fault| broken_stream_ends_with_an_error_event(fault, ollama)));
    futures_util::future::join_all(cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_event_is_reported_not_relayed() {
    let (url, _a, _b, _config) = gateway_with_faulty_first_route(&Behaviour::CorruptEvent, false).await;
    let body = post(&url, &chat("coder", true)).await.text().await.unwrap();
    assert!(body.contains("the backend sent an event that is not JSON"), "{body}");
    // the client's SSE framing holds: every frame is one data line of JSON (or [DONE]), and the
    // corrupt text appears only quoted in the error message
    for frame in body.split("\n\n").filter(|f| !f.is_empty()) {
        let data = frame.strip_prefix("data: ").unwrap_or_else(|| panic!("{frame:?}"));
        assert!(!data.contains('\n'), "{frame:?}");
        if data != "[DONE]" {
            let event: Value = serde_json::from_str(data).unwrap_or_else(|_| panic!("not JSON: {data:?}"));
            assert!(event.get("error").is_some() || !data.contains("<html>"), "{data}");
        }
    }
}
