//! `hearth serve` and `hearth gateway` raise the soft open-files limit to the hard one at start
//! and log it (one file per connection: a low soft limit locks clients out early).

use std::process::Command;

/// Runs `hearth ARGS` under a soft limit of 256 open files; returns the hard limit and stderr.
fn run_with_low_soft_limit(args: &str) -> (u64, String) {
    let script = format!("ulimit -Sn 256 && ulimit -Hn >&2 && exec {} {args}", env!("CARGO_BIN_EXE_hearth"));
    let output = Command::new("bash").arg("-c").arg(script).env("NO_COLOR", "1").output().expect("bash runs");
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    let hard = stderr.lines().next().and_then(|l| l.trim().parse::<u64>().ok()).unwrap_or(u64::MAX);
    (hard, stderr)
}

#[test]
fn serve_and_gateway_raise_the_soft_limit_at_start() {
    for args in ["serve /nonexistent/model.gguf", "gateway --config /nonexistent/config"] {
        let (hard, stderr) = run_with_low_soft_limit(args);
        if hard > 256 {
            let want = format!("open files limit raised from 256 to {}", hard.min(1 << 20));
            assert!(stderr.contains(&want), "{args}: no `{want}` in:\n{stderr}");
        } else {
            assert!(stderr.contains("open files limit: 256"), "{args}:\n{stderr}");
        }
    }
}
