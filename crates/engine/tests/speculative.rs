//! Speculative decoding on the real models: greedy and seeded outputs are token for token
//! those of decoding without it (golden prompts and 16 concurrent requests of mixed lengths),
//! sampled outputs keep their distribution, and drafts really were verified.

use hearth_engine::{
    EngineConfig, EngineEvent, EngineHandle, EngineRequest, ModelBundle, SamplingParams, SpecConfig, StopConditions,
};
use hearth_testkit::{greedy_cases, model_path, QWEN, SMOLLM};

fn bundle(name: &str) -> ModelBundle {
    hearth_kernels::threads::init(None);
    ModelBundle::load(&model_path(name)).unwrap()
}

fn engine(bundle: &ModelBundle, speculative: bool) -> EngineHandle {
    let config = EngineConfig {
        kv_cache_memory: Some(256 << 20),
        max_model_len: Some(2048),
        // every draft verified, so that the outputs checked here went through verification
        // whatever this machine's step costs
        speculative: speculative.then_some(SpecConfig { always_draft: true, ..SpecConfig::default() }),
        ..Default::default()
    };
    EngineHandle::spawn(bundle, &config).unwrap()
}

fn request(prompt: Vec<u32>, sampling: SamplingParams, max_tokens: usize) -> EngineRequest {
    EngineRequest {
        prompt,
        sampling,
        stop: StopConditions { max_tokens: Some(max_tokens), ..Default::default() },
        constraint: None,
        no_speculation: false,
    }
}

fn collect(stream: &mut hearth_engine::RequestStream) -> Vec<u32> {
    let mut tokens = Vec::new();
    loop {
        match stream.next_blocking().expect("stream ends with Finished") {
            EngineEvent::Token(t) => tokens.push(t.sampled.token),
            EngineEvent::Finished(_) => return tokens,
            EngineEvent::Error(e) => panic!("engine error: {e}"),
        }
    }
}

/// Submits all requests at once and collects each one's tokens.
fn run_concurrently(engine: &EngineHandle, requests: Vec<EngineRequest>) -> Vec<Vec<u32>> {
    let mut streams: Vec<_> = requests.into_iter().map(|r| engine.submit(r).unwrap()).collect();
    streams.iter_mut().map(collect).collect()
}

/// Chat prompts whose answers repeat their input (where drafts get accepted) and ones that
/// do not, all through the model's chat template.
fn chat_prompts(bundle: &ModelBundle) -> Vec<Vec<u32>> {
    let code = "def total(items):\n    result = 0\n    for item in items:\n        result += item.price * item.count\n    return result\n\n\ndef average(items):\n    if not items:\n        return 0\n    return total(items) / len(items)\n";
    let asks = [
        format!("Rename the variable `result` to `acc` and return the whole file:\n```python\n{code}```"),
        format!("Add a docstring to each function and return the whole file:\n```python\n{code}```"),
        "Repeat this list exactly: apple, banana, cherry, apple, banana, cherry, apple, banana.".to_string(),
        "Write a short poem about the sea.".to_string(),
        "Explain what a hash map is in two sentences.".to_string(),
        format!("Translate this Python to JavaScript:\n```python\n{code}```"),
    ];
    asks.iter()
        .map(|text| {
            let message = hearth_engine::ChatMessage { role: "user".into(), content: text.clone() };
            bundle.chat_prompt(&[message]).unwrap()
        })
        .collect()
}

/// Greedy outputs with and without speculation, for the golden prompts one at a time and
/// for 16 concurrent requests of mixed lengths; returns how many drafted tokens were accepted.
fn greedy_unchanged(name: &str, golden_tokens: usize, lengths: &[usize]) {
    let bundle = bundle(name);
    let (plain, spec) = (engine(&bundle, false), engine(&bundle, true));
    let greedy = SamplingParams::greedy;
    for case in greedy_cases().into_iter().filter(|c| c.model == name) {
        let want = collect(&mut plain.submit(request(case.prompt_ids.clone(), greedy(), golden_tokens)).unwrap());
        let got = collect(&mut spec.submit(request(case.prompt_ids.clone(), greedy(), golden_tokens)).unwrap());
        assert_eq!(got, want, "{name} {} case differs with speculation", case.kind);
    }
    let prompts = chat_prompts(&bundle);
    let batch = |engine: &EngineHandle| {
        let requests = (0..16).map(|i| request(prompts[i % prompts.len()].clone(), greedy(), lengths[i % lengths.len()]));
        run_concurrently(engine, requests.collect())
    };
    let (want, got) = (batch(&plain), batch(&spec));
    for (i, (w, g)) in want.iter().zip(&got).enumerate() {
        assert_eq!(g, w, "{name}: concurrent request {i} differs with speculation");
    }
    let m = &spec.metrics().spec;
    let accepted = hearth_engine::EngineMetrics::get(&m.accepted_tokens);
    eprintln!(
        "{name}: {} drafts, {} drafted tokens, {accepted} accepted ({:.0}%), {:.2} tokens per verified draft",
        hearth_engine::EngineMetrics::get(&m.drafts),
        hearth_engine::EngineMetrics::get(&m.draft_tokens),
        100.0 * m.acceptance_rate(),
        m.mean_emitted_per_draft()
    );
    assert!(accepted > 20, "speculation was hardly exercised: {accepted} accepted tokens");
}

#[test]
fn smollm_greedy_is_unchanged_by_speculation() {
    greedy_unchanged(SMOLLM, 48, &[24, 64, 100, 40, 80, 12, 120, 56]);
}

#[test]
fn qwen_greedy_is_unchanged_by_speculation() {
    greedy_unchanged(QWEN, 24, &[12, 40, 64, 24, 48, 16, 72, 32]);
}

/// Sampled requests continuing a text that repeats itself (drafts get verified), at a
/// temperature where several continuations are common.
fn sampled_requests(bundle: &ModelBundle, count: usize, seed: Option<u64>) -> Vec<EngineRequest> {
    let text = "red green blue, red green blue, red green yellow, red green blue, red green";
    let prompt = bundle.tokenizer.encode(text).unwrap();
    (0..count)
        .map(|i| {
            let sampling = SamplingParams { temperature: 0.8, seed: seed.map(|s| s + i as u64), ..SamplingParams::default() };
            request(prompt.clone(), sampling, 5)
        })
        .collect()
}

/// Runs requests four at a time (few enough that the engine still drafts).
fn run_in_fours(engine: &EngineHandle, requests: Vec<EngineRequest>) -> Vec<Vec<u32>> {
    let mut outputs = Vec::new();
    let mut requests = requests.into_iter().peekable();
    while requests.peek().is_some() {
        outputs.extend(run_concurrently(engine, requests.by_ref().take(4).collect()));
    }
    outputs
}

/// Pearson's chi-square statistic for two samples over the same categories (categories
/// seen fewer than 10 times in both together are pooled), and its degrees of freedom.
fn chi_square_two_samples(a: &[Vec<u32>], b: &[Vec<u32>]) -> (f64, usize) {
    use std::collections::BTreeMap;
    let mut counts: BTreeMap<&[u32], (f64, f64)> = BTreeMap::new();
    a.iter().for_each(|o| counts.entry(o).or_default().0 += 1.0);
    b.iter().for_each(|o| counts.entry(o).or_default().1 += 1.0);
    let mut cells: Vec<(f64, f64)> = Vec::new();
    let mut pooled = (0.0, 0.0);
    for &(x, y) in counts.values() {
        if x + y >= 10.0 {
            cells.push((x, y));
        } else {
            pooled = (pooled.0 + x, pooled.1 + y);
        }
    }
    if pooled.0 + pooled.1 > 0.0 {
        cells.push(pooled);
    }
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let chi2 = cells
        .iter()
        .map(|&(x, y)| {
            let total = x + y;
            let (ea, eb) = (total * na / (na + nb), total * nb / (na + nb));
            (x - ea).powi(2) / ea + (y - eb).powi(2) / eb
        })
        .sum();
    (chi2, cells.len().saturating_sub(1))
}

/// The chi-square value exceeded with probability 0.001 (Wilson-Hilferty approximation).
fn chi_square_critical_001(df: usize) -> f64 {
    let k = df.max(1) as f64;
    let z = 3.090; // the standard normal's 0.999 quantile
    k * (1.0 - 2.0 / (9.0 * k) + z * (2.0 / (9.0 * k)).sqrt()).powi(3)
}

#[test]
fn sampling_keeps_its_distribution_and_seeds_their_outputs() {
    let bundle = bundle(SMOLLM);
    let (plain, spec) = (engine(&bundle, false), engine(&bundle, true));
    // a seed fixes every sampler call, and speculation makes exactly the same calls
    let seeded = |engine: &EngineHandle| run_in_fours(engine, sampled_requests(&bundle, 24, Some(7)));
    assert_eq!(seeded(&spec), seeded(&plain), "seeded sampling differs with speculation");
    // unseeded: the distributions of whole 6-token answers agree (false alarm rate 0.1%)
    let n = 240;
    let off = run_in_fours(&plain, sampled_requests(&bundle, n, None));
    let accepted_before = hearth_engine::EngineMetrics::get(&spec.metrics().spec.accepted_tokens);
    let on = run_in_fours(&spec, sampled_requests(&bundle, n, None));
    let accepted = hearth_engine::EngineMetrics::get(&spec.metrics().spec.accepted_tokens) - accepted_before;
    let (chi2, df) = chi_square_two_samples(&off, &on);
    let critical = chi_square_critical_001(df);
    eprintln!("{n} sampled answers each: chi-square {chi2:.1} on {df} degrees of freedom (0.1% bound {critical:.1}); {accepted} drafted tokens accepted");
    assert!(df >= 2, "too few distinct answers for a test: {df}");
    assert!(accepted > 50, "sampling hardly verified drafts: {accepted} accepted tokens");
    assert!(chi2 < critical, "answer frequencies differ with speculation: chi-square {chi2:.1} > {critical:.1} (df {df})");
}

/// Everything a request's events say: each token with its logprobs and text, and the end.
fn events(stream: &mut hearth_engine::RequestStream) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        match stream.next_blocking().expect("stream ends with Finished") {
            EngineEvent::Token(t) => out.push(format!("{:?} {:?} {:?}", t.sampled, t.text, t.finish)),
            EngineEvent::Finished(f) => {
                // not `cached_tokens`: prefix-cache hits between concurrent requests that share
                // a prompt depend on timing, with or without speculation
                out.push(format!("{:?} {} {} {:?}", f.reason, f.prompt_tokens, f.completion_tokens, f.stop_string));
                return out;
            }
            EngineEvent::Error(e) => panic!("engine error: {e}"),
        }
    }
}

#[test]
fn penalties_bias_stops_logprobs_and_grammars_see_the_same_tokens() {
    let bundle = bundle(SMOLLM);
    let (plain, spec) = (engine(&bundle, false), engine(&bundle, true));
    let compiler = hearth_engine::GrammarCompiler::new(&bundle.tokenizer, bundle.model.config().vocab_size).unwrap();
    let schema = serde_json::json!({"type": "object", "properties": {"items": {"type": "array", "items": {"type": "string"}}}, "required": ["items"]});
    let prompts = chat_prompts(&bundle);
    let variants = |i: usize| -> EngineRequest {
        let mut r = request(prompts[i % prompts.len()].clone(), SamplingParams::greedy(), 48);
        match i % 5 {
            0 => (r.sampling.presence_penalty, r.sampling.frequency_penalty) = (0.6, 0.4),
            1 => r.sampling.repetition_penalty = 1.3,
            2 => {
                r.sampling.logprobs = Some(3);
                r.sampling.logit_bias = vec![(28, -5.0), (30, 2.0)];
            }
            3 => r.stop.stop_strings = vec!["banana".into(), "result +=".into()],
            _ => r.constraint = Some(compiler.compile(&hearth_engine::Grammar::JsonSchema(schema.clone())).unwrap()),
        }
        r
    };
    let run = |engine: &EngineHandle| {
        let mut streams: Vec<_> = (0..10).map(|i| engine.submit(variants(i)).unwrap()).collect();
        streams.iter_mut().map(events).collect::<Vec<_>>()
    };
    let (want, got) = (run(&plain), run(&spec));
    for (i, (w, g)) in want.iter().zip(&got).enumerate() {
        assert_eq!(g, w, "request {i} (variant {}) differs with speculation", i % 5);
    }
    let accepted = hearth_engine::EngineMetrics::get(&spec.metrics().spec.accepted_tokens);
    assert!(accepted > 10, "speculation was hardly exercised: {accepted} accepted tokens");
}
