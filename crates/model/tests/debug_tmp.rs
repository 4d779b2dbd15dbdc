use hearth_model::{LogitsWanted, Model, SeqSpan};
use hearth_testkit::*;
#[test]
fn debug() {
    let model = Model::load(model_path(SMOLLM)).unwrap();
    for case in greedy_cases().into_iter().filter(|c| c.model == SMOLLM) {
        let mut cache = model.new_cache();
        let mut next = case.prompt_ids.clone();
        let mut agree = 0;
        for (step, &want) in case.greedy_ids.iter().enumerate() {
            let l = model.forward(&mut [SeqSpan { tokens: &next, cache: &mut cache, logits: LogitsWanted::Last }]).unwrap().remove(0);
            let mut idx: Vec<usize> = (0..l.len()).collect();
            idx.sort_by(|a, b| l[*b].partial_cmp(&l[*a]).unwrap());
            if idx[0] as u32 != want {
                eprintln!("case {} step {step}: got {} ({}) want {} ({}) ", case.kind, idx[0], l[idx[0]], want, l[want as usize]);
                break;
            }
            agree += 1;
            next = vec![want];
        }
        eprintln!("agree {agree}/{}", case.greedy_ids.len());
    }
}
