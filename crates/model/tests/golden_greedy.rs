//! Greedy continuations of both real models match the reference runtime's (greedy.json).

use hearth_model::{LogitsWanted, Model, SeqSpan};
use hearth_testkit::{greedy_cases, model_path, GreedyCase};

fn argmax(xs: &[f32]) -> u32 {
    xs.iter().enumerate().fold((0, f32::MIN), |best, (i, &v)| if v > best.1 { (i, v) } else { best }).0 as u32
}

fn greedy(model: &Model, prompt: &[u32], n: usize) -> Vec<u32> {
    let mut cache = model.new_cache();
    let mut out = Vec::new();
    let mut next = prompt.to_vec();
    for _ in 0..n {
        let logits = model.forward(&mut [SeqSpan { tokens: &next, cache: &mut cache, logits: LogitsWanted::Last }]).unwrap();
        let tok = argmax(&logits[0]);
        out.push(tok);
        next = vec![tok];
    }
    out
}

fn check_model(name: &str) {
    hearth_kernels::threads::init(None);
    let model = Model::load(model_path(name)).unwrap();
    let cases: Vec<GreedyCase> = greedy_cases().into_iter().filter(|c| c.model == name).collect();
    assert!(!cases.is_empty());
    let mut beyond = (0, 0);
    for case in &cases {
        let n = case.greedy_ids.len().min(32);
        let got = greedy(&model, &case.prompt_ids, n);
        assert_eq!(&got[..16.min(n)], &case.greedy_ids[..16.min(n)], "{name} {} prompt {:?}", case.kind, &case.prompt_ids[..5.min(case.prompt_ids.len())]);
        let agree = got.iter().zip(&case.greedy_ids).take_while(|(a, b)| a == b).count();
        beyond = (beyond.0 + agree, beyond.1 + n);
    }
    eprintln!("{name}: {} cases, {} of {} reference tokens agree before the first difference", cases.len(), beyond.0, beyond.1);
}

#[test]
fn smollm_greedy_matches_reference() {
    check_model(hearth_testkit::SMOLLM);
}

#[test]
fn qwen_greedy_matches_reference() {
    check_model(hearth_testkit::QWEN);
}
