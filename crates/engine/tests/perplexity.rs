//! Perplexity over the shared evaluation text matches the reference runtime within 2%.

use hearth_model::Model;
use hearth_testkit::perplexity::perplexity;
use hearth_testkit::{eval_text, model_path, perplexity_cases, QWEN, SMOLLM};
use hearth_tokenizer::Tokenizer;

fn check(name: &str) {
    hearth_kernels::threads::init(None);
    let model = Model::load(model_path(name)).unwrap();
    let tokenizer = Tokenizer::from_gguf(model.gguf().unwrap()).unwrap();
    let ids = tokenizer.encode(&eval_text()).unwrap();
    let case = perplexity_cases().into_iter().find(|c| c.model == name).unwrap();
    assert_eq!(ids.len() / case.n_ctx, case.chunks, "chunk count");
    let (ppl, scored) = perplexity(&model, &ids, case.n_ctx);
    eprintln!("{name}: perplexity {ppl:.4} (reference {:.4}, {scored} tokens scored)", case.ppl);
    assert!((ppl / case.ppl - 1.0).abs() < 0.02, "{name}: perplexity {ppl} vs reference {}", case.ppl);
}

#[test]
fn smollm_perplexity_matches_reference() {
    check(SMOLLM);
}

#[test]
fn qwen_perplexity_matches_reference() {
    check(QWEN);
}
