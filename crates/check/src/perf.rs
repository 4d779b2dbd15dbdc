//! Performance characteristics: time to first token and decode speed of one streaming
//! request, and aggregate speed with 1, 4 and 8 concurrent clients. Reported, not judged.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use hearth_protocol::sse::EventSplitter;
use serde_json::json;

use crate::result::CheckResult;

/// Timings of one streaming request.
struct StreamTiming {
    ttft: Duration,
    total: Duration,
    chunks: usize,
}

async fn timed_stream(client: &hearth_http::Client, url: &str, key: Option<&str>, model: &str, max_tokens: u32) -> Result<StreamTiming, String> {
    let body = json!({"model": model, "temperature": 0, "max_tokens": max_tokens, "stream": true,
        "messages": [{"role": "user", "content": "Write a short paragraph about rivers."}]});
    let build = |client: &reqwest::Client| {
        let request = client.post(url).json(&body);
        match key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
    };
    let started = Instant::now();
    let response = client.send(build).await.map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("HTTP {}", response.status()));
    }
    let (mut ttft, mut chunks, mut stream, mut events) = (None, 0, response.bytes_stream(), EventSplitter::sse());
    while let Some(piece) = stream.next().await {
        for data in events.push(&piece.map_err(|e| e.to_string())?) {
            // each chunk with text counts as one token
            if carries_text(&data) {
                ttft.get_or_insert_with(|| started.elapsed());
                chunks += 1;
            }
        }
    }
    Ok(StreamTiming { ttft: ttft.unwrap_or_default(), total: started.elapsed(), chunks })
}

/// Whether an SSE payload is a chunk with content text.
fn carries_text(data: &str) -> bool {
    let chunk: serde_json::Value = serde_json::from_str(data).unwrap_or_default();
    chunk["choices"][0]["delta"]["content"].as_str().is_some_and(|t| !t.is_empty())
}

pub async fn performance(base: &str, api_key: Option<&str>, model: &str) -> CheckResult {
    let mut r = CheckResult::new("Performance characteristics", false);
    let client = hearth_http::Client::new(|| reqwest::Client::builder().timeout(Duration::from_secs(600))).expect("HTTP client");
    let url = format!("{}/v1/chat/completions", base.trim_end_matches('/'));
    r.request = "POST /v1/chat/completions (streaming, max_tokens 64; then 1, 4 and 8 concurrent with max_tokens 32)".into();
    match timed_stream(&client, &url, api_key, model, 64).await {
        Ok(t) => {
            let decode = t.chunks.saturating_sub(1) as f64 / (t.total - t.ttft).as_secs_f64().max(1e-9);
            r.note(format!("one request: time to first token {:.0} ms, decode {:.1} tokens/s", t.ttft.as_secs_f64() * 1000.0, decode));
            r.elapsed_ms += t.total.as_secs_f64() * 1000.0;
        }
        Err(e) => {
            r.check(format!("a streaming request succeeds ({e})"), false);
            return r;
        }
    }
    for clients in [1usize, 4, 8] {
        let started = Instant::now();
        let runs = futures_util::future::join_all((0..clients).map(|_| timed_stream(&client, &url, api_key, model, 32))).await;
        let wall = started.elapsed().as_secs_f64();
        let ok: Vec<&StreamTiming> = runs.iter().filter_map(|r| r.as_ref().ok()).collect();
        let tokens: usize = ok.iter().map(|t| t.chunks).sum();
        let mean_ttft = ok.iter().map(|t| t.ttft.as_secs_f64()).sum::<f64>() / ok.len().max(1) as f64;
        r.note(format!("{clients} concurrent: {:.1} tokens/s in total, mean time to first token {:.0} ms", tokens as f64 / wall, mean_ttft * 1000.0));
        r.check(format!("{clients} concurrent requests all succeed"), ok.len() == clients);
    }
    r.response = r.notes.join("\n");
    r
}
