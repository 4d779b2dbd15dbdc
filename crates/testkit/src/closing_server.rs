//! A stub OpenAI server that closes keep-alive connections the way some servers do: after every
//! streamed answer (it closes the connection as soon as the next request arrives on it, the
//! worst case of that race) and after 1 s idle. For testing clients' connection reuse.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const IDLE_CLOSE: Duration = Duration::from_secs(1);

/// A running stub; it serves until the process ends.
pub struct ClosingServer {
    pub addr: SocketAddr,
    answered: Arc<AtomicUsize>,
    dropped: Arc<AtomicUsize>,
}

impl ClosingServer {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the stub server");
        let addr = listener.local_addr().expect("stub address");
        let answered = Arc::new(AtomicUsize::new(0));
        let dropped = Arc::new(AtomicUsize::new(0));
        let counts = (answered.clone(), dropped.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let counts = (counts.0.clone(), counts.1.clone());
                std::thread::spawn(move || serve_connection(stream, &counts.0, &counts.1));
            }
        });
        ClosingServer { addr, answered, dropped }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests answered so far.
    pub fn answered(&self) -> usize {
        self.answered.load(Ordering::SeqCst)
    }

    /// Requests that arrived on a connection the stub then closed without answering.
    pub fn dropped(&self) -> usize {
        self.dropped.load(Ordering::SeqCst)
    }
}

struct Incoming {
    method: String,
    path: String,
    body: String,
}

fn serve_connection(stream: TcpStream, answered: &AtomicUsize, dropped: &AtomicUsize) {
    let _ = stream.set_read_timeout(Some(IDLE_CLOSE));
    let mut writer = match stream.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut reader = BufReader::new(stream);
    let mut closing = false;
    while let Some(request) = read_request(&mut reader) {
        if closing {
            dropped.fetch_add(1, Ordering::SeqCst);
            return;
        }
        let streamed = request.body.contains("\"stream\":true") || request.body.contains("\"stream\": true");
        // counted before the answer is written: a client that has read the answer must see it counted
        answered.fetch_add(1, Ordering::SeqCst);
        let written = match (request.method.as_str(), streamed) {
            ("POST", true) => write_stream(&mut writer, &request.path),
            ("POST", false) => write_json(&mut writer, &complete_answer(&request.path)),
            _ => write_json(&mut writer, &get_answer(&request.path)),
        };
        if written.is_err() {
            answered.fetch_sub(1, Ordering::SeqCst);
            return;
        }
        closing |= streamed;
    }
}

/// One request (head and Content-Length body); None at end of stream, idle timeout or junk.
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Incoming> {
    let mut line = String::new();
    reader.read_line(&mut line).ok().filter(|n| *n > 0)?;
    let mut words = line.split_whitespace();
    let (method, path) = (words.next()?.to_string(), words.next()?.to_string());
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok().filter(|n| *n > 0)?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).ok()?;
    Some(Incoming { method, path, body: String::from_utf8_lossy(&body).into_owned() })
}

fn write_json(writer: &mut TcpStream, body: &str) -> std::io::Result<()> {
    let head = format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n", body.len());
    writer.write_all(head.as_bytes())?;
    writer.write_all(body.as_bytes())?;
    writer.flush()
}

/// An SSE answer, chunked, for chat or text completions; the connection is kept open.
fn write_stream(writer: &mut TcpStream, path: &str) -> std::io::Result<()> {
    writer.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")?;
    let chat = path.ends_with("/chat/completions");
    let mut events: Vec<String> = Vec::new();
    if chat {
        events.push(r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"stub","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#.into());
    }
    for word in ["Hello", " there", "."] {
        events.push(match chat {
            true => format!(r#"{{"id":"c1","object":"chat.completion.chunk","created":1,"model":"stub","choices":[{{"index":0,"delta":{{"content":"{word}"}},"finish_reason":null}}]}}"#),
            false => format!(r#"{{"id":"c1","object":"text_completion","created":1,"model":"stub","choices":[{{"index":0,"text":"{word}","finish_reason":null}}]}}"#),
        });
    }
    let usage = r#""usage":{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8}"#;
    events.push(match chat {
        true => format!(r#"{{"id":"c1","object":"chat.completion.chunk","created":1,"model":"stub","choices":[{{"index":0,"delta":{{}},"finish_reason":"stop"}}],{usage}}}"#),
        false => format!(r#"{{"id":"c1","object":"text_completion","created":1,"model":"stub","choices":[{{"index":0,"text":"","finish_reason":"length"}}],{usage}}}"#),
    });
    events.push("[DONE]".into());
    for event in events {
        let frame = format!("data: {event}\n\n");
        writer.write_all(format!("{:x}\r\n{frame}\r\n", frame.len()).as_bytes())?;
    }
    writer.write_all(b"0\r\n\r\n")?;
    writer.flush()
}

fn complete_answer(path: &str) -> String {
    let usage = r#""usage":{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8}"#;
    match path.ends_with("/chat/completions") {
        true => format!(r#"{{"id":"c2","object":"chat.completion","created":1,"model":"stub","choices":[{{"index":0,"message":{{"role":"assistant","content":"Hello there."}},"finish_reason":"stop"}}],{usage}}}"#),
        false => format!(r#"{{"id":"c2","object":"text_completion","created":1,"model":"stub","choices":[{{"index":0,"text":"Hello there.","finish_reason":"length"}}],{usage}}}"#),
    }
}

fn get_answer(path: &str) -> String {
    match path {
        "/v1/models" => r#"{"object":"list","data":[{"id":"stub","object":"model","created":1,"owned_by":"stub"}]}"#.into(),
        _ => r#"{"status":"ok"}"#.into(),
    }
}
