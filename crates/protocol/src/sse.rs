//! Splitting a streamed body into events as its pieces arrive: SSE `data:` payloads (events end
//! with a blank line) or NDJSON lines. Bytes are kept until an event is complete, so a UTF-8
//! character split between two network pieces is never mangled. Also the typed frame the
//! Responses and Messages APIs send.

/// One typed server-sent event (`event:` then `data:`), as the Responses and Messages APIs
/// frame theirs.
pub fn typed_frame(event: &str, data: &str) -> String {
    format!("event: {event}\ndata: {data}\n\n")
}

/// Incremental splitter over the pieces of one response body.
#[derive(Debug, Default)]
pub struct EventSplitter {
    buffer: Vec<u8>,
    ndjson: bool,
}

impl EventSplitter {
    /// Server-sent events: yields each event's `data` (multi-line data joined with `\n`).
    pub fn sse() -> Self {
        EventSplitter { buffer: Vec::new(), ndjson: false }
    }

    /// Newline-delimited JSON: yields each non-empty line.
    pub fn ndjson() -> Self {
        EventSplitter { buffer: Vec::new(), ndjson: true }
    }

    /// Adds a piece of the body; returns the events it completed, in order.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        self.buffer.extend_from_slice(bytes);
        let separator: &[u8] = if self.ndjson { b"\n" } else { b"\n\n" };
        let mut out = Vec::new();
        while let Some(end) = self.buffer.windows(separator.len()).position(|w| w == separator) {
            let event: Vec<u8> = self.buffer.drain(..end + separator.len()).collect();
            let event = String::from_utf8_lossy(&event);
            let event = event.trim();
            if event.is_empty() {
                continue;
            }
            if self.ndjson {
                out.push(event.to_string());
                continue;
            }
            let data: Vec<&str> = event.lines().filter_map(|l| l.strip_prefix("data:")).map(str::trim_start).collect();
            if !data.is_empty() {
                out.push(data.join("\n"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_events_across_pieces() {
        let mut s = EventSplitter::sse();
        assert!(s.push(b"data: {\"a\"").is_empty());
        assert_eq!(s.push(b":1}\n\n: ping\n\ndata: [DONE]\n\n"), vec!["{\"a\":1}".to_string(), "[DONE]".to_string()]);
        let mut n = EventSplitter::ndjson();
        assert_eq!(n.push(b"{\"x\":1}\n{\"y\""), vec!["{\"x\":1}".to_string()]);
        assert_eq!(n.push(b":2}\n"), vec!["{\"y\":2}".to_string()]);
    }

    #[test]
    fn a_character_split_between_pieces_survives() {
        let event = "data: {\"content\":\"café 日本\"}\n\n".as_bytes();
        let cut = event.iter().position(|&b| b == 0xA9).unwrap(); // inside 'é'
        let mut s = EventSplitter::sse();
        assert!(s.push(&event[..cut]).is_empty());
        assert_eq!(s.push(&event[cut..]), vec!["{\"content\":\"café 日本\"}".to_string()]);
    }
}
