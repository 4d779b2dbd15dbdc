//! The batching engine on SmolLM2: batch invariance, prefix reuse, preemption under a small
//! KV cache, aborts that free blocks at once, graceful shutdown.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use hearth_engine::{
    EngineConfig, EngineEvent, EngineHandle, EngineMetrics, EngineRequest, FinishReason, ModelBundle, SamplingParams,
    StopConditions,
};
use hearth_testkit::{greedy_cases, model_path, SMOLLM};

fn bundle() -> ModelBundle {
    hearth_kernels::threads::init(None);
    ModelBundle::load(&model_path(SMOLLM)).unwrap()
}

fn engine(bundle: &ModelBundle, kv_bytes: u64) -> EngineHandle {
    let config = EngineConfig { kv_cache_memory: Some(kv_bytes), max_model_len: Some(1024), ..Default::default() };
    EngineHandle::spawn(bundle, &config).unwrap()
}

fn greedy(prompt: Vec<u32>, max_tokens: usize) -> EngineRequest {
    EngineRequest {
        prompt,
        sampling: SamplingParams::greedy(),
        stop: StopConditions { max_tokens: Some(max_tokens), ..Default::default() },
        constraint: None,
        no_speculation: false,
    }
}

/// Collects a stream to (tokens, finish reason).
fn collect(stream: &mut hearth_engine::RequestStream) -> (Vec<u32>, FinishReason) {
    let mut tokens = Vec::new();
    loop {
        match stream.next_blocking().expect("stream ends with Finished") {
            EngineEvent::Token(t) => tokens.push(t.sampled.token),
            EngineEvent::Finished(f) => return (tokens, f.reason),
            EngineEvent::Error(e) => panic!("engine error: {e}"),
        }
    }
}

fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < Duration::from_secs(30), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

const MIB: u64 = 1 << 20;

#[test]
fn batch_of_eight_gives_the_same_greedy_tokens_as_alone() {
    let bundle = bundle();
    let engine = engine(&bundle, 64 * MIB);
    let prompts: Vec<Vec<u32>> = greedy_cases().into_iter().filter(|c| c.model == SMOLLM).map(|c| c.prompt_ids).take(8).collect();
    assert_eq!(prompts.len(), 8);
    let solo: Vec<Vec<u32>> = prompts.iter().map(|p| collect(&mut engine.submit(greedy(p.clone(), 24)).unwrap()).0).collect();
    let mut streams: Vec<_> = prompts.iter().map(|p| engine.submit(greedy(p.clone(), 24)).unwrap()).collect();
    let batched: Vec<Vec<u32>> = streams.iter_mut().map(|s| collect(s).0).collect();
    for (i, (a, b)) in solo.iter().zip(&batched).enumerate() {
        assert_eq!(a, b, "prompt {i} differs between solo and batched decoding");
    }
}

#[test]
fn shared_prefix_is_computed_once() {
    let bundle = bundle();
    let engine = engine(&bundle, 64 * MIB);
    let prefix: Vec<u32> = (0..200).map(|i| 1000 + (i * 37) % 5000).collect();
    let first: Vec<u32> = prefix.iter().copied().chain([11, 12, 13]).collect();
    let second: Vec<u32> = prefix.iter().copied().chain([21, 22, 23, 24, 25]).collect();
    let m = engine.metrics().clone();
    collect(&mut engine.submit(greedy(first.clone(), 4)).unwrap());
    let computed_before = EngineMetrics::get(&m.prompt_tokens_computed);
    assert_eq!(computed_before, first.len() as u64);
    let mut stream = engine.submit(greedy(second.clone(), 4)).unwrap();
    let mut cached = 0;
    while let Some(event) = stream.next_blocking() {
        if let EngineEvent::Finished(f) = event {
            cached = f.cached_tokens;
        }
    }
    let computed = EngineMetrics::get(&m.prompt_tokens_computed) - computed_before;
    // 200 shared tokens = 12 full blocks of 16 (192 tokens) served from the cache
    assert_eq!(cached, 192);
    assert_eq!(computed, (second.len() - 192) as u64, "only the suffix is computed");
    assert!(m.prefix_hit_rate() > 0.4);
}

#[test]
fn small_kv_cache_completes_every_request_by_preemption() {
    let bundle = bundle();
    let prompts: Vec<Vec<u32>> = (0..6u32).map(|r| (0..90).map(|i| 500 + (i * 13 + r * 101) % 9000).collect()).collect();
    // solo references with plenty of memory
    let roomy = engine(&bundle, 64 * MIB);
    let solo: Vec<Vec<u32>> = prompts.iter().map(|p| collect(&mut roomy.submit(greedy(p.clone(), 40)).unwrap()).0).collect();
    drop(roomy);
    // 20 blocks = 320 tokens for six requests of up to 130 tokens each
    let per_block = hearth_engine::kv::PagedKv::bytes_per_block(bundle.model.config(), 16) as u64;
    let config = EngineConfig { kv_cache_memory: Some(20 * per_block), max_model_len: Some(320), ..Default::default() };
    let tight = EngineHandle::spawn(&bundle, &config).unwrap();
    let mut streams: Vec<_> = prompts.iter().map(|p| tight.submit(greedy(p.clone(), 40)).unwrap()).collect();
    for (i, stream) in streams.iter_mut().enumerate() {
        let (tokens, reason) = collect(stream);
        assert_eq!(reason, FinishReason::Length);
        assert_eq!(tokens, solo[i], "request {i} was corrupted by preemption");
    }
    assert!(EngineMetrics::get(&tight.metrics().num_preemptions) > 0, "the cache was meant to be too small");
}

#[test]
fn dropping_a_stream_aborts_and_frees_blocks() {
    let bundle = bundle();
    let engine = engine(&bundle, 64 * MIB);
    let m = engine.metrics().clone();
    let mut stream = engine.submit(greedy((1..50).collect(), 900)).unwrap();
    // wait for the first token, then walk away
    assert!(matches!(stream.next_blocking(), Some(EngineEvent::Token(_))));
    wait_until("the request to show as running", || EngineMetrics::get(&m.num_running) == 1);
    drop(stream);
    wait_until("the request to be aborted", || EngineMetrics::get(&m.num_running) == 0);
    wait_until("its blocks to be freed", || m.kv_usage() == 0.0);
    assert_eq!(m.finished_abort.load(Relaxed), 1);
}

#[test]
fn shutdown_drains_in_flight_requests() {
    let bundle = bundle();
    let engine = engine(&bundle, 64 * MIB);
    let mut streams: Vec<_> = (0..3u32).map(|i| engine.submit(greedy(vec![100 + i, 200, 300], 8)).unwrap()).collect();
    engine.shutdown(true);
    for s in &mut streams {
        let (tokens, reason) = collect(s);
        assert_eq!((tokens.len(), reason), (8, FinishReason::Length));
    }
    assert!(!engine.is_running());
    assert!(
        matches!(engine.submit(greedy(vec![1, 2], 2)), Err(hearth_engine::GenerateError::EngineStopped)),
        "a stopped engine refuses work"
    );
}

#[test]
fn long_prefills_are_cut_into_steps_near_the_target_time() {
    let bundle = bundle();
    let config =
        EngineConfig { kv_cache_memory: Some(64 * MIB), max_model_len: Some(1024), max_step_seconds: 0.005, ..Default::default() };
    let engine = EngineHandle::spawn(&bundle, &config).unwrap();
    let prompt: Vec<u32> = (0..900).map(|i| 1000 + (i * 37) % 5000).collect();
    collect(&mut engine.submit(greedy(prompt, 1)).unwrap());
    // one step of the first 256 tokens measures the pace; the rest goes in chunks that fit
    // 5 ms (at least 16 tokens each), so the engine looks at its commands between them
    let steps = engine.metrics().step_duration.snapshot().count;
    assert!(steps >= 6, "a 900-token prompt at a 5 ms step target ran in {steps} steps");
}
