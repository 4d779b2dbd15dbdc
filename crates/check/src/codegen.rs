//! Code generation quality: the model writes small Python functions; each runs in a
//! sandboxed `python3` subprocess (isolated mode, empty environment, temporary folder,
//! CPU-time, memory and wall-clock limits) against hidden asserts; pass@1 is reported.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;

use crate::http::Http;
use crate::result::CheckResult;

/// One task: what is asked, and the asserts the answer must pass.
pub struct CodeTask {
    pub name: &'static str,
    pub prompt: &'static str,
    pub asserts: &'static str,
}

pub const TASKS: &[CodeTask] = &[
    CodeTask {
        name: "is_prime",
        prompt: "Write a Python function `is_prime(n)` that returns True if the integer n is a prime number and False otherwise.",
        asserts: "assert [n for n in range(30) if is_prime(n)] == [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]\nassert is_prime(7919) and not is_prime(-7) and not is_prime(1)",
    },
    CodeTask {
        name: "fibonacci",
        prompt: "Write a Python function `fibonacci(n)` that returns the n-th Fibonacci number, with fibonacci(0) == 0 and fibonacci(1) == 1.",
        asserts: "assert [fibonacci(i) for i in range(10)] == [0, 1, 1, 2, 3, 5, 8, 13, 21, 34]\nassert fibonacci(50) == 12586269025",
    },
    CodeTask {
        name: "reverse_words",
        prompt: "Write a Python function `reverse_words(s)` that returns the words of the string s in reverse order, joined by single spaces.",
        asserts: "assert reverse_words('hello world') == 'world hello'\nassert reverse_words('a b  c') == 'c b a'\nassert reverse_words('one') == 'one'",
    },
    CodeTask {
        name: "is_palindrome",
        prompt: "Write a Python function `is_palindrome(s)` that returns True if s reads the same backwards, ignoring case and any non-alphanumeric characters.",
        asserts: "assert is_palindrome('A man, a plan, a canal: Panama')\nassert not is_palindrome('hello')\nassert is_palindrome('')",
    },
    CodeTask {
        name: "gcd",
        prompt: "Write a Python function `gcd(a, b)` that returns the greatest common divisor of two non-negative integers.",
        asserts: "assert gcd(12, 18) == 6 and gcd(17, 5) == 1 and gcd(0, 9) == 9 and gcd(100, 75) == 25",
    },
    CodeTask {
        name: "flatten",
        prompt: "Write a Python function `flatten(xs)` that flattens an arbitrarily nested list of lists into a flat list.",
        asserts: "assert flatten([1, [2, [3, [4]], 5]]) == [1, 2, 3, 4, 5]\nassert flatten([]) == []\nassert flatten([[[]]]) == []",
    },
];

/// The code in the first fenced block of `text` (or all of it when there is no fence).
pub fn extract_code(text: &str) -> String {
    let Some(start) = text.find("```") else { return text.trim().to_string() };
    let after = &text[start + 3..];
    let body = after.split_once('\n').map(|(_, rest)| rest).unwrap_or(after);
    body.split("```").next().unwrap_or(body).trim_end().to_string()
}

/// Runs `code` then `asserts` in a sandboxed interpreter; Err says why it failed.
pub async fn run_sandboxed(python: &str, code: &str, asserts: &str, dir: &Path) -> Result<(), String> {
    let file = dir.join("solution.py");
    std::fs::write(&file, format!("{code}\n\n{asserts}\n")).map_err(|e| format!("cannot write the program: {e}"))?;
    // CPU seconds and address space are capped inside; the wall clock outside.
    let script = format!("ulimit -t 10; ulimit -v 1048576; exec {python} -I -S solution.py");
    let child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/bin:/bin:/usr/local/bin")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {python}: {e}"))?;
    let output = tokio::time::timeout(Duration::from_secs(15), child.wait_with_output())
        .await
        .map_err(|_| "timed out after 15 s".to_string())?
        .map_err(|e| e.to_string())?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    Err(stderr.lines().last().unwrap_or("failed without a message").to_string())
}

/// Asks for every task, runs the answers, and requires pass@1 >= `min_pass_rate`.
pub async fn code_quality(http: &Http, model: &str, python: &str, min_pass_rate: f64) -> CheckResult {
    let mut r = CheckResult::new("Code generation quality", true);
    let dir = std::env::temp_dir().join(format!("hearth-check-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        r.check(format!("a scratch folder ({e})"), false);
        return r;
    }
    let mut passed = 0;
    for task in TASKS {
        let prompt = format!("{} Reply with only the code in one ```python block, no explanation.", task.prompt);
        let body = json!({"model": model, "temperature": 0, "max_tokens": 400, "messages": [{"role": "user", "content": prompt}]});
        let x = http.post("/v1/chat/completions", &body).await;
        let answer = x.json().and_then(|v| v["choices"][0]["message"]["content"].as_str().map(str::to_string));
        if !r.record(&x) {
            continue;
        }
        let outcome = match answer {
            Some(text) => run_sandboxed(python, &extract_code(&text), task.asserts, &dir).await,
            None => Err(format!("no answer (HTTP {})", x.status)),
        };
        match outcome {
            Ok(()) => passed += 1,
            Err(e) => r.note(format!("{}: {}", task.name, e)),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    let rate = passed as f64 / TASKS.len() as f64;
    r.note(format!("pass@1 = {passed}/{} = {:.0}%", TASKS.len(), rate * 100.0));
    r.check(format!("pass@1 {:.0}% >= {:.0}%", rate * 100.0, min_pass_rate * 100.0), rate >= min_pass_rate);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_the_first_fenced_block() {
        assert_eq!(extract_code("Here:\n```python\ndef f():\n    return 1\n```\nDone."), "def f():\n    return 1");
        assert_eq!(extract_code("```\nx = 1\n```"), "x = 1");
        assert_eq!(extract_code("def g(): pass"), "def g(): pass");
    }

    #[tokio::test]
    async fn the_sandbox_runs_asserts_and_reports_failures() {
        let dir = std::env::temp_dir().join(format!("hearth-check-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = run_sandboxed("python3", "def sq(x):\n    return x * x", "assert sq(3) == 9", &dir).await;
        assert_eq!(good, Ok(()));
        let wrong = run_sandboxed("python3", "def sq(x):\n    return x + x", "assert sq(3) == 9", &dir).await;
        assert!(wrong.unwrap_err().contains("AssertionError"));
        let env = run_sandboxed("python3", "import os", "assert 'HOME' not in os.environ", &dir).await;
        assert_eq!(env, Ok(()), "the environment is empty");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
