//! `hearth check` against a server that closes keep-alive connections after each streamed
//! answer and after 1 s idle: no check reports the client's own reused-connection fault.

use std::time::Duration;

use hearth_check::http::Http;
use hearth_testkit::closing_server::ClosingServer;
use serde_json::json;

#[tokio::test]
async fn requests_after_a_stream_do_not_fail_on_the_closed_connection() {
    let stub = ClosingServer::start();
    let http = Http::new(&stub.url(), None, Duration::from_secs(10));
    let chat = |stream: bool| json!({"model": "stub", "stream": stream, "messages": [{"role": "user", "content": "hi"}]});
    for round in 0..3 {
        let streamed = http.post("/v1/chat/completions", &chat(true)).await;
        assert_eq!((streamed.status, &streamed.transport_error), (200, &None), "round {round}");
        let plain = http.post("/v1/chat/completions", &chat(false)).await;
        assert_eq!((plain.status, &plain.transport_error), (200, &None), "round {round}");
        assert!(plain.body.contains("Hello there."), "{}", plain.body);
    }
    assert!(stub.dropped() >= 3, "the stub closed connections under requests ({} times)", stub.dropped());

    let perf = hearth_check::perf::performance(&stub.url(), None, "stub").await;
    assert!(perf.passed(), "{perf:?}");
}
