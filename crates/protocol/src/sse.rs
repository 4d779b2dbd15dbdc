//! Splitting a streamed body into events as its pieces arrive: SSE `data:` payloads (events end
//! with a blank line) or NDJSON lines. Bytes are kept until an event is complete, so a UTF-8
//! character split between two network pieces is never mangled. Also the typed frame the
//! Responses and Messages APIs send.

/// One typed server-sent event (`event:` then `data:`), as the Responses and Messages APIs
/// frame theirs.
pub fn typed_frame(event: &str, data: &str) -> String {
    format!("event: {event}\ndata: {data}\n\n")
}

/// Incremental splitter over the pieces of one response body. Lines may end with LF, CRLF or
/// CR (servers built on sse-starlette send CRLF); each byte is looked at once, so a long event
/// sent in small pieces costs linear time.
#[derive(Debug, Default)]
pub struct EventSplitter {
    /// The bytes of the line not yet ended.
    line: Vec<u8>,
    /// The current SSE event's data lines joined with `\n`; None before its first data line.
    data: Option<String>,
    /// The last piece ended with CR: an LF first in the next piece belongs to it.
    after_cr: bool,
    ndjson: bool,
}

impl EventSplitter {
    /// Server-sent events: yields each event's `data` (multi-line data joined with `\n`).
    pub fn sse() -> Self {
        EventSplitter::default()
    }

    /// Newline-delimited JSON: yields each non-empty line.
    pub fn ndjson() -> Self {
        EventSplitter { ndjson: true, ..EventSplitter::default() }
    }

    /// Adds a piece of the body; returns the events it completed, in order.
    pub fn push(&mut self, mut bytes: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        if self.after_cr && bytes.first() == Some(&b'\n') {
            bytes = &bytes[1..];
        }
        self.after_cr = false;
        while let Some(end) = bytes.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.line.extend_from_slice(&bytes[..end]);
            let line = std::mem::take(&mut self.line);
            self.end_line(&String::from_utf8_lossy(&line), &mut out);
            let crlf = bytes[end] == b'\r' && bytes.get(end + 1) == Some(&b'\n');
            self.after_cr = bytes[end] == b'\r' && end + 1 == bytes.len();
            bytes = &bytes[end + 1 + usize::from(crlf)..];
        }
        self.line.extend_from_slice(bytes);
        out
    }

    /// True when bytes of an unfinished line or event are held (a body that ends here was cut).
    pub fn holds_partial(&self) -> bool {
        !self.line.iter().all(u8::is_ascii_whitespace) || self.data.is_some()
    }

    fn end_line(&mut self, line: &str, out: &mut Vec<String>) {
        if self.ndjson {
            if !line.trim().is_empty() {
                out.push(line.trim().to_string());
            }
            return;
        }
        if line.is_empty() {
            out.extend(self.data.take());
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        // a line starting with ':' is a comment (field ""); event, id and retry carry no data
        if field == "data" {
            match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            }
        }
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

    #[test]
    fn crlf_and_cr_line_ends_split_like_lf_even_across_pieces() {
        let body = b"event: x\r\ndata: {\"a\":1}\r\n\r\ndata: one\rdata: two\r\rdata: [DONE]\r\n\r\n";
        let want: Vec<String> = ["{\"a\":1}", "one\ntwo", "[DONE]"].map(String::from).to_vec();
        assert_eq!(EventSplitter::sse().push(body), want);
        for cut in 0..body.len() {
            let mut s = EventSplitter::sse();
            let mut got = s.push(&body[..cut]);
            got.extend(s.push(&body[cut..]));
            assert_eq!(got, want, "cut at {cut}");
            assert!(!s.holds_partial());
        }
        let mut n = EventSplitter::ndjson();
        assert_eq!(n.push(b"{\"x\":1}\r\n{\"y\":2}\r"), vec!["{\"x\":1}".to_string(), "{\"y\":2}".to_string()]);
        assert!(n.push(b"\n").is_empty());
    }

    #[test]
    fn fields_follow_the_spec() {
        // one space after the colon is dropped, a bare "data" is an empty line, comments ignored
        let mut s = EventSplitter::sse();
        assert_eq!(s.push(b"data:  two spaces\ndata\n: note\nid: 7\n\n"), vec![" two spaces\n".to_string()]);
        assert_eq!(s.push(b"retry: 10\n\n"), Vec::<String>::new());
        assert!(s.push(b"data: cut").is_empty());
        assert!(s.holds_partial());
    }
}
