//! The short soak CI runs: `hearth serve` on SmolLM2 driven by `hearth soak` for 90 s with the
//! full request mix; it must answer every request as due and show no upward trend in memory or
//! open files (latency is reported: CI machines share their cores), and the
//! samples and chart must be written. The KV cache is small: its pages become resident as
//! blocks are first used, which in a long soak the warm-up covers but in 90 s would not.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_ready(port: u16, server: &mut Child) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(120) {
        assert!(server.try_wait().unwrap().is_none(), "hearth serve exited early");
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read, Write};
            let _ = stream.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut answer = String::new();
            let _ = stream.read_to_string(&mut answer);
            if answer.starts_with("HTTP/1.1 200") {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("hearth serve was not ready within 120 s");
}

#[test]
fn a_short_soak_finds_no_leak_and_no_wrong_answer() {
    let port = free_port();
    let model = hearth_testkit::model_path(hearth_testkit::SMOLLM);
    let server = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["serve", model.to_str().unwrap(), "--served-model-name", "smollm", "--port", &port.to_string()])
        .args(["--kv-cache-memory", "56MiB", "--max-model-len", "2048", "--max-num-seqs", "8", "--max-queued-requests", "16"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("hearth serve starts");
    let mut server = Killed(server);
    wait_ready(port, &mut server.0);
    let out = hearth_testkit::ScratchDir::new("soak");
    let soak = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["soak", "--url", &format!("http://127.0.0.1:{port}"), "--model", "smollm", "--pid", &server.0.id().to_string()])
        .args(["--duration", "90", "--sample-every", "3", "--concurrency", "4", "--no-latency-verdict"])
        .args(["--out", out.path().to_str().unwrap()])
        .output()
        .expect("hearth soak runs");
    let stdout = String::from_utf8_lossy(&soak.stdout);
    println!("{stdout}");
    assert!(soak.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&soak.stderr));
    assert!(stdout.contains("server memory, RSS MiB") && stdout.contains("KV cache in use when idle"), "{stdout}");
    let csv = std::fs::read_to_string(out.path().join("soak.csv")).unwrap();
    assert!(csv.lines().count() >= 25, "{csv}");
    let svg = std::fs::read_to_string(out.path().join("soak.svg")).unwrap();
    assert_eq!(svg.matches("<polyline").count(), 5, "one line per curve");
}
