//! Resident memory with the model, tokenizer and template loaded and one forward pass done
//! stays within 1.3x the GGUF file plus the KV cache (own test binary: its own process).

use hearth_engine::ModelBundle;
use hearth_model::{LogitsWanted, SeqSpan};
use hearth_testkit::{model_path, resident_bytes, SMOLLM};

#[test]
fn resident_memory_within_budget() {
    hearth_kernels::threads::init(None);
    let path = model_path(SMOLLM);
    let file_size = std::fs::metadata(&path).unwrap().len();
    let bundle = ModelBundle::load(&path).unwrap();
    let prompt = bundle.tokenizer.encode("def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n").unwrap();
    let mut cache = bundle.model.new_cache();
    bundle.model.forward(&mut [SeqSpan { tokens: &prompt, cache: &mut cache, logits: LogitsWanted::Last }]).unwrap();
    let rss = resident_bytes();
    let budget = (file_size as f64 * 1.3) as u64 + cache.bytes() as u64;
    eprintln!("{}: resident {:.1} MB, file {:.1} MB, ratio {:.2}, budget {:.1} MB", SMOLLM,
        rss as f64 / 1e6, file_size as f64 / 1e6, rss as f64 / file_size as f64, budget as f64 / 1e6);
    assert!(rss <= budget, "resident {rss} bytes > budget {budget} bytes");
}
