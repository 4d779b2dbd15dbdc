//! Fill-in-the-middle on Qwen2.5-Coder-1.5B-Instruct (greedy) through every front door an
//! editor uses: single-line Python holes whose suffix asserts the function's behaviour, judged
//! by running the filled file; `/infill`, `/v1/fim/completions` and Ollama's `suffix` give the
//! same middle as `/v1/completions` with `suffix`, streamed and not; `/api/show` lists
//! `insert`; a custom Ollama template is refused by name.

use hearth_engine::EngineConfig;
use serde_json::{json, Value};

use crate::ollama::ndjson;
use crate::support::*;

async fn start_qwen() -> TestServer {
    let server = start_unloaded(server_config()).await;
    let engine = EngineConfig { kv_cache_memory: Some(256 << 20), max_model_len: Some(2048), ..Default::default() };
    load_model(&server.state, hearth_testkit::QWEN, &engine);
    server
}

fn tasks() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(format!("{}/tests/fixtures/fim/tasks.json", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let tasks: Vec<Value> = serde_json::from_str(&text).unwrap();
    tasks.iter().map(|t| (t["prefix"].as_str().unwrap().to_string(), t["suffix"].as_str().unwrap().to_string())).collect()
}

/// Whether the filled file runs (its asserts hold).
fn passes(prefix: &str, middle: &str, suffix: &str) -> bool {
    let program = format!("{prefix}{middle}{suffix}");
    std::process::Command::new("python3").arg("-c").arg(&program).output().map(|o| o.status.success()).unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holes_are_filled_the_same_through_every_front_door() {
    let server = start_qwen().await;
    let mut passed = 0;
    let tasks = tasks();
    for (i, (prefix, suffix)) in tasks.iter().enumerate() {
        let body = json!({"prompt": prefix, "suffix": suffix, "max_tokens": 48, "temperature": 0});
        let (status, answer) = post(&server, "/v1/completions", &body).await;
        assert_eq!(status, 200, "{answer}");
        let middle = answer["choices"][0]["text"].as_str().unwrap().to_string();
        assert!(!middle.contains("<|"), "no FIM or end tokens in the middle: {middle:?}");
        passed += passes(prefix, &middle, suffix) as usize;
        if i > 2 {
            continue;
        }
        // the same hole through the other doors: the same greedy middle
        let (_, infill) = post(&server, "/infill", &json!({"input_prefix": prefix, "input_suffix": suffix, "n_predict": 48, "temperature": 0})).await;
        assert_eq!(infill["content"], middle.as_str(), "{infill}");
        assert!(infill["timings"]["predicted_n"].as_u64().is_some() && infill["tokens_cached"].as_u64().is_some(), "{infill}");
        let (_, mistral) = post(&server, "/v1/fim/completions", &json!({"prompt": prefix, "suffix": suffix, "max_tokens": 48, "temperature": 0})).await;
        assert_eq!(mistral["choices"][0]["message"]["content"], middle.as_str(), "{mistral}");
        let ollama = json!({"model": MODEL_NAME, "prompt": prefix, "suffix": suffix, "stream": false, "options": {"num_predict": 48, "temperature": 0}});
        let (_, generated) = post(&server, "/api/generate", &ollama).await;
        assert_eq!(generated["response"], middle.as_str(), "{generated}");
        let mut streamed = ollama.clone();
        streamed["stream"] = json!(true);
        let lines = ndjson(&server, "/api/generate", &streamed).await;
        let joined: String = lines.iter().filter_map(|l| l["response"].as_str()).collect();
        assert_eq!(joined, middle, "streamed Ollama insert");
        let chunks = stream(&server, "/v1/completions", &json!({"prompt": prefix, "suffix": suffix, "max_tokens": 48, "temperature": 0, "stream": true})).await;
        let joined: String = chunks.iter().filter_map(|c| c["choices"][0]["text"].as_str()).collect();
        assert_eq!(joined, middle, "streamed completion");
    }
    eprintln!("FIM holes filled: {passed} of {}", tasks.len());
    // Qwen2.5-Coder-1.5B-Instruct, greedy: measured 10 of 10 here; the bound leaves room for
    // the kernel paths' last-bit differences
    assert!(passed >= 8, "{passed} of {} holes filled correctly", tasks.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infill_streams_limits_and_repository_context() {
    let server = start_qwen().await;
    let extra = json!([{"filename": "geometry.py", "text": "PI = 3.14159\n"}]);
    let body = json!({"input_prefix": "from geometry import PI\n\ndef circle_area(r):\n    return ", "input_suffix": "\n",
        "input_extra": extra, "n_predict": 24, "temperature": 0, "n_indent": 4});
    let (status, answer) = post(&server, "/infill", &body).await;
    assert_eq!(status, 200, "{answer}");
    let content = answer["content"].as_str().unwrap();
    assert!(content.contains("PI"), "the context file informs the answer: {content:?}");
    assert!(content.lines().skip(1).all(|l| l.trim().is_empty() || l.starts_with("    ")), "n_indent cuts shallower lines: {content:?}");
    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let response = client().post(server.url("/infill")).json(&streamed).send().await.unwrap();
    let events = sse_events(response).await;
    let values: Vec<Value> = events.iter().map(|e| serde_json::from_str(e).unwrap()).collect();
    let joined: String = values.iter().filter_map(|v| v["content"].as_str()).collect();
    assert_eq!(joined, content, "the stream assembles to the answer");
    assert_eq!(values.last().unwrap()["stop"], true);
    let several = json!({"input_prefix": "x = ", "input_suffix": "\n", "n_predict": 4, "n_cmpl": 2, "temperature": 0});
    let (_, answers) = post(&server, "/infill", &several).await;
    assert_eq!(answers.as_array().map(Vec::len), Some(2), "n_cmpl answers as a list: {answers}");

    let (_, show) = post(&server, "/api/show", &json!({"model": MODEL_NAME})).await;
    assert!(show["capabilities"].as_array().unwrap().contains(&json!("insert")), "{show}");
    assert!(show["template"].as_str().unwrap().contains(".Suffix"), "Continue looks for .Suffix");
    let custom = json!({"model": MODEL_NAME, "prompt": "x", "template": "{{ .System }} {{ .Prompt }}", "stream": false});
    let (status, error) = post(&server, "/api/generate", &custom).await;
    assert_eq!(status, 400, "{error}");
    let echo = json!({"prompt": "a", "suffix": "b", "echo": true});
    let (status, _) = post(&server, "/v1/completions", &echo).await;
    assert_eq!(status, 400, "echo and suffix do not mix");
}
