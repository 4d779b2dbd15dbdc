//! `hearth bench` against a server that closes keep-alive connections after each streamed
//! answer: every request still succeeds (the client resends on a new connection).

use std::time::Duration;

use hearth_bench::client::StreamingClient;
use hearth_bench::dataset::{BenchPrompt, PromptBody};
use hearth_testkit::closing_server::ClosingServer;

#[tokio::test]
async fn every_request_succeeds_when_the_server_closes_reused_connections() {
    let stub = ClosingServer::start();
    let client = StreamingClient::new(&stub.url(), "stub", None, Duration::from_secs(10));
    let prompt = BenchPrompt { prompt: PromptBody::Text("hi".into()), output_len: 3 };
    for i in 0..6 {
        let outcome = client.complete(&prompt).await;
        assert!(outcome.ok, "request {i}: {:?}", outcome.error);
        assert_eq!(outcome.output_tokens, 3);
    }
    assert!(stub.dropped() >= 2, "the stub closed connections under requests ({} times)", stub.dropped());
}
