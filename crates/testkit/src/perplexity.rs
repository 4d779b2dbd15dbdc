//! Perplexity by the rule of perplexity.json: chunks of n_ctx tokens, each from an empty cache,
//! scoring the prediction of token j+1 for j in n_ctx/2 .. n_ctx-2.

use hearth_model::{LogitsWanted, Model, SeqSpan};

/// (perplexity, tokens scored).
pub fn perplexity(model: &Model, ids: &[u32], n_ctx: usize) -> (f64, usize) {
    let mut nll = 0f64;
    let mut count = 0;
    for chunk in ids.chunks_exact(n_ctx) {
        let mut cache = model.new_cache();
        let logits = model.forward(&mut [SeqSpan { tokens: chunk, cache: &mut cache, logits: LogitsWanted::All }]).expect("forward pass");
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
