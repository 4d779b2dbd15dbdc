//! Stepping a model through a golden greedy continuation: our pick at each step and how far
//! the reference token's logit is behind it.

use hearth_model::{LogitsWanted, Model, SeqSpan};

use crate::GreedyCase;

pub fn argmax(xs: &[f32]) -> u32 {
    xs.iter().enumerate().fold((0, f32::MIN), |best, (i, &v)| if v > best.1 { (i, v) } else { best }).0 as u32
}

/// Steps through the reference continuation; `follow_reference` feeds the reference token
/// (teacher forcing) instead of our own pick. Returns our picks and their logit margins.
pub fn walk(model: &Model, case: &GreedyCase, follow_reference: bool) -> Vec<(u32, f32)> {
    let mut cache = model.new_cache();
    let mut next = case.prompt_ids.clone();
    let mut out = Vec::new();
    for &reference in &case.greedy_ids {
        let logits = model.forward(&mut [SeqSpan { tokens: &next, cache: &mut cache, logits: LogitsWanted::Last }]).expect("forward pass");
        let ours = argmax(&logits[0]);
        out.push((ours, logits[0][ours as usize] - logits[0][reference as usize]));
        next = vec![if follow_reference { reference } else { ours }];
    }
    out
}
