//! HTTP exchanges for the checks: what was sent, what came back, how long it took; SSE parsing.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::Value;

/// One request and its answer, kept for the report.
#[derive(Debug, Clone, Default)]
pub struct Exchange {
    pub request: String,
    pub status: u16,
    pub content_type: String,
    pub body: String,
    pub elapsed: Duration,
    /// Set when no answer came (connection refused, timeout).
    pub transport_error: Option<String>,
}

impl Exchange {
    pub fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.body).ok()
    }
}

/// A client bound to one server and key.
#[derive(Clone)]
pub struct Http {
    client: hearth_http::Client,
    base: String,
    api_key: Option<String>,
}

impl Http {
    pub fn new(base: &str, api_key: Option<String>, timeout: Duration) -> Self {
        let client = hearth_http::Client::new(|| reqwest::Client::builder().timeout(timeout)).expect("HTTP client");
        Http { client, base: base.trim_end_matches('/').to_string(), api_key }
    }

    pub async fn get(&self, path: &str) -> Exchange {
        self.send(reqwest::Method::GET, path, None, format!("GET {path}")).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Exchange {
        let text = body.to_string();
        let described = format!("POST {path}\n{}", serde_json::to_string_pretty(body).unwrap_or_default());
        self.send(reqwest::Method::POST, path, Some(text), described).await
    }

    /// Sends a body as is (for malformed JSON).
    pub async fn post_raw(&self, path: &str, body: &str) -> Exchange {
        self.send(reqwest::Method::POST, path, Some(body.to_string()), format!("POST {path}\n{body}")).await
    }

    /// POSTs with extra headers and reads the answer only until `until` appears in it (or it
    /// ends); then the connection is dropped, which stops a long generation on the server.
    pub async fn post_opening(&self, path: &str, body: &Value, headers: &[(&str, &str)], until: &str) -> Exchange {
        let described = format!("POST {path}\n{}", serde_json::to_string_pretty(body).unwrap_or_default());
        let request = Outgoing { method: reqwest::Method::POST, path, body: Some(body.to_string()), headers, until: Some(until) };
        self.exchange(request, described).await
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<String>, described: String) -> Exchange {
        self.exchange(Outgoing { method, path, body, headers: &[], until: None }, described).await
    }

    async fn exchange(&self, outgoing: Outgoing<'_>, described: String) -> Exchange {
        let Outgoing { method, path, body, headers, until } = outgoing;
        let url = format!("{}{}", self.base, path);
        let build = |client: &reqwest::Client| {
            let mut request = client.request(method.clone(), &url);
            if let Some(key) = &self.api_key {
                request = request.bearer_auth(key);
            }
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            if let Some(body) = &body {
                request = request.header("content-type", "application/json").body(body.clone());
            }
            request
        };
        let started = Instant::now();
        let mut exchange = Exchange { request: described, ..Default::default() };
        match self.client.send(build).await {
            Ok(response) => {
                exchange.status = response.status().as_u16();
                exchange.content_type = header(&response, "content-type");
                let mut stream = response.bytes_stream();
                let mut bytes = Vec::new();
                while let Some(piece) = stream.next().await {
                    match piece {
                        Ok(b) => {
                            bytes.extend_from_slice(&b);
                            if until.is_some_and(|marker| String::from_utf8_lossy(&bytes).contains(marker)) {
                                break;
                            }
                        }
                        Err(e) => {
                            exchange.transport_error = Some(format!("the body broke off: {e}"));
                            break;
                        }
                    }
                }
                exchange.body = String::from_utf8_lossy(&bytes).into_owned();
            }
            Err(e) => exchange.transport_error = Some(e.to_string()),
        }
        exchange.elapsed = started.elapsed();
        exchange
    }
}

/// A request as `exchange` sends it.
struct Outgoing<'a> {
    method: reqwest::Method,
    path: &'a str,
    body: Option<String>,
    headers: &'a [(&'a str, &'a str)],
    /// Stop reading once the answer contains this.
    until: Option<&'a str>,
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
}

/// The `data:` payloads of an SSE body, in order; Err names the first framing fault. Lines may
/// end with LF or CRLF, as the SSE spec allows.
pub fn sse_data(body: &str) -> Result<Vec<String>, String> {
    let body = &body.replace("\r\n", "\n");
    let mut events = Vec::new();
    for block in body.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let data: Vec<&str> = block
            .lines()
            .filter(|l| !l.starts_with(':')) // comments (keep-alives)
            .map(|l| l.strip_prefix("data:").map(str::trim_start).ok_or_else(|| format!("a line without `data:`: {l:?}")))
            .collect::<Result<_, _>>()?;
        if !data.is_empty() {
            events.push(data.join("\n"));
        }
    }
    if !body.ends_with("\n\n") && !body.is_empty() {
        return Err("the stream does not end with a blank line".into());
    }
    Ok(events)
}

/// At most `limit` characters of `text`, marked when cut.
pub fn trim(text: &str, limit: usize) -> String {
    match text.char_indices().nth(limit) {
        Some((cut, _)) => format!("{}… ({} more bytes)", &text[..cut], text.len() - cut),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sse_framing() {
        let body = "data: {\"a\":1}\n\n: keep-alive\n\ndata: [DONE]\n\n";
        assert_eq!(sse_data(body).unwrap(), vec!["{\"a\":1}".to_string(), "[DONE]".to_string()]);
        assert!(sse_data("{\"a\":1}\n\n").is_err());
        assert!(sse_data("data: x\n\ndata: y").is_err());
        assert_eq!(sse_data("data: x\r\n\r\ndata: [DONE]\r\n\r\n").unwrap(), vec!["x".to_string(), "[DONE]".to_string()]);
        assert_eq!(trim("héllo", 2), "hé… (3 more bytes)");
        assert_eq!(trim("hi", 5), "hi");
    }
}
