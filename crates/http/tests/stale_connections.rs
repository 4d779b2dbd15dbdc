//! A server that closes keep-alive connections under the client's next request: the plain
//! pooled client fails there, hearth's client resends on a new connection and never fails.

use hearth_http::{is_stale_connection, Client};
use hearth_testkit::closing_server::ClosingServer;
use serde_json::json;

fn chat(stream: bool) -> serde_json::Value {
    json!({"model": "stub", "stream": stream, "messages": [{"role": "user", "content": "hi"}]})
}

async fn streamed_then_plain(send: impl AsyncFn(serde_json::Value) -> reqwest::Result<reqwest::Response>) -> reqwest::Result<String> {
    let first = send(chat(true)).await?.text().await?;
    assert!(first.contains("[DONE]"), "{first}");
    send(chat(false)).await?.text().await
}

#[tokio::test]
async fn the_stub_breaks_a_plain_pooled_client() {
    let stub = ClosingServer::start();
    let url = format!("{}/v1/chat/completions", stub.url());
    let plain = reqwest::Client::new();
    let error = streamed_then_plain(async |body| plain.post(&url).json(&body).send().await).await.unwrap_err();
    assert!(is_stale_connection(&error), "{error:?}");
    assert_eq!(stub.dropped(), 1);
}

#[tokio::test]
async fn requests_on_a_closed_pooled_connection_are_resent_on_a_new_one() {
    let stub = ClosingServer::start();
    let url = format!("{}/v1/chat/completions", stub.url());
    let client = Client::new(reqwest::Client::builder).unwrap();
    for _ in 0..3 {
        let answer = streamed_then_plain(async |body| client.send(|c| c.post(&url).json(&body)).await).await.unwrap();
        assert!(answer.contains("Hello there."), "{answer}");
    }
    // idle past the stub's 1 s keep-alive: the pool drops or resends, the request succeeds
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    let answer = client.send(|c| c.post(&url).json(&chat(false))).await.unwrap().text().await.unwrap();
    assert!(answer.contains("Hello there."), "{answer}");
    assert_eq!(stub.answered(), 7);
}
