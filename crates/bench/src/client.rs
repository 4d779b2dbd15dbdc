//! One streaming completion request with client-side timings: time to first token, the
//! gaps between chunks, end-to-end latency and the token counts the server reports.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use hearth_protocol::sse::EventSplitter;
use serde_json::{json, Value};

use crate::dataset::{BenchPrompt, PromptBody};

/// The timings of one request, or why it failed.
#[derive(Debug, Clone, Default)]
pub struct RequestOutcome {
    pub ok: bool,
    pub error: Option<String>,
    pub prompt_tokens: usize,
    pub output_tokens: usize,
    pub ttft: Duration,
    /// Gaps between successive content chunks.
    pub itl: Vec<Duration>,
    pub latency: Duration,
}

impl RequestOutcome {
    /// Time per output token after the first.
    pub fn tpot(&self) -> Option<Duration> {
        (self.output_tokens > 1).then(|| (self.latency - self.ttft) / (self.output_tokens as u32 - 1))
    }
}

/// Sends streaming `/v1/completions` requests to one server.
#[derive(Clone)]
pub struct StreamingClient {
    http: hearth_http::Client,
    base_url: String,
    model: String,
    api_key: Option<String>,
}

impl StreamingClient {
    pub fn new(base_url: &str, model: &str, api_key: Option<String>, timeout: Duration) -> Self {
        let http = hearth_http::Client::new(|| reqwest::Client::builder().timeout(timeout).pool_max_idle_per_host(1024)).expect("HTTP client");
        StreamingClient { http, base_url: base_url.trim_end_matches('/').to_string(), model: model.to_string(), api_key }
    }

    /// Runs one prompt to completion (greedy, end-of-sequence ignored so the output length is exact).
    pub async fn complete(&self, prompt: &BenchPrompt) -> RequestOutcome {
        let prompt_value = match &prompt.prompt {
            PromptBody::Tokens(ids) => json!(ids),
            PromptBody::Text(text) => json!(text),
        };
        let body = json!({
            "model": self.model,
            "prompt": prompt_value,
            "max_tokens": prompt.output_len,
            "temperature": 0,
            "ignore_eos": true,
            "stream": true,
            "stream_options": {"include_usage": true},
        });
        let started = Instant::now();
        let known_len = match &prompt.prompt {
            PromptBody::Tokens(ids) => ids.len(),
            PromptBody::Text(_) => 0, // taken from the server's usage
        };
        let mut outcome = RequestOutcome { prompt_tokens: known_len, ..Default::default() };
        match self.stream_into(&body, started, &mut outcome).await {
            Ok(()) => outcome.ok = true,
            Err(e) => outcome.error = Some(e),
        }
        outcome.latency = started.elapsed();
        outcome
    }

    async fn stream_into(&self, body: &Value, started: Instant, out: &mut RequestOutcome) -> Result<(), String> {
        let url = format!("{}/v1/completions", self.base_url);
        let build = |client: &reqwest::Client| {
            let request = client.post(&url).json(body);
            match &self.api_key {
                Some(key) => request.bearer_auth(key),
                None => request,
            }
        };
        let response = self.http.send(build).await.map_err(|e| format!("request failed: {e}"))?;
        if !response.status().is_success() {
            let status = response.status();
            return Err(format!("HTTP {status}: {}", response.text().await.unwrap_or_default()));
        }
        let mut body = response.bytes_stream();
        let (mut events, mut last_chunk, mut chunks) = (EventSplitter::sse(), None::<Instant>, 0usize);
        while let Some(piece) = body.next().await {
            for data in events.push(&piece.map_err(|e| format!("stream broke: {e}"))?) {
                let data = data.trim();
                if data == "[DONE]" {
                    out.output_tokens = out.output_tokens.max(chunks);
                    return Ok(());
                }
                let chunk: Value = serde_json::from_str(data).map_err(|e| format!("bad chunk {data:?}: {e}"))?;
                if let Some(error) = chunk.get("error") {
                    return Err(format!("error mid-stream: {error}"));
                }
                if let Some(tokens) = chunk["usage"]["completion_tokens"].as_u64() {
                    out.output_tokens = tokens as usize;
                }
                if let Some(tokens) = chunk["usage"]["prompt_tokens"].as_u64() {
                    out.prompt_tokens = tokens as usize;
                }
                let has_text = chunk["choices"].get(0).and_then(|c| c["text"].as_str()).is_some_and(|t| !t.is_empty());
                if has_text {
                    let now = Instant::now();
                    match last_chunk {
                        None => out.ttft = now - started,
                        Some(prev) => out.itl.push(now - prev),
                    }
                    last_chunk = Some(now);
                    chunks += 1;
                }
            }
        }
        Err("the stream ended without [DONE]".into())
    }
}
