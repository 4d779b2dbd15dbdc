//! Shared body of the per-model memory tests (each runs in its own test binary, so its own
//! process, for an honest resident-set reading).

use hearth_engine::ModelBundle;
use hearth_model::{LogitsWanted, SeqSpan};
use hearth_testkit::{model_path, resident_bytes};

/// Loads model, tokenizer and template, runs one forward pass, and checks that resident
/// memory stays within 1.3x the GGUF file plus the KV cache.
pub fn check_resident_memory(name: &str) {
    hearth_kernels::threads::init(None);
    let path = model_path(name);
    let file_size = std::fs::metadata(&path).unwrap().len();
    let bundle = ModelBundle::load(&path).unwrap();
    let prompt = bundle.tokenizer.encode("def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n").unwrap();
    let mut cache = bundle.model.new_cache();
    bundle.model.forward(&mut [SeqSpan { tokens: &prompt, cache: &mut cache, logits: LogitsWanted::Last }]).unwrap();
    let rss = resident_bytes();
    let budget = (file_size as f64 * 1.3) as u64 + cache.bytes() as u64;
    eprintln!(
        "{name}: resident {:.1} MB, file {:.1} MB, ratio {:.2}, budget {:.1} MB",
        rss as f64 / 1e6,
        file_size as f64 / 1e6,
        rss as f64 / file_size as f64,
        budget as f64 / 1e6
    );
    assert!(rss <= budget, "resident {rss} bytes > budget {budget} bytes");
}
