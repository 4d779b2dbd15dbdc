//! Perplexity over the shared evaluation text matches the reference runtime within 2%.

use hearth_model::{LogitsWanted, Model, SeqSpan};
use hearth_testkit::{eval_text, model_path, perplexity_cases, QWEN, SMOLLM};
use hearth_tokenizer::Tokenizer;

/// The rule of perplexity.json: chunks of n_ctx tokens, each from an empty cache, scoring the
/// prediction of token j+1 for j in n_ctx/2 .. n_ctx-2.
fn perplexity(model: &Model, ids: &[u32], n_ctx: usize) -> (f64, usize) {
    let mut nll = 0f64;
    let mut count = 0;
    for chunk in ids.chunks_exact(n_ctx) {
        let mut cache = model.new_cache();
        let logits = model.forward(&mut [SeqSpan { tokens: chunk, cache: &mut cache, logits: LogitsWanted::All }]).unwrap();
        let vocab = model.config().vocab_size;
        for j in n_ctx / 2..n_ctx - 1 {
            let row = &logits[0][j * vocab..(j + 1) * vocab];
            let max = row.iter().cloned().fold(f32::MIN, f32::max) as f64;
            let log_sum = row.iter().map(|&v| (v as f64 - max).exp()).sum::<f64>().ln() + max;
            nll += log_sum - row[chunk[j + 1] as usize] as f64;
            count += 1;
        }
    }
    ((nll / count as f64).exp(), count)
}

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
