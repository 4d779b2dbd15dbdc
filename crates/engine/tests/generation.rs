//! End-to-end generation: the Qwen chat answer, stop strings, max tokens, seeds.

use std::ops::ControlFlow;

use hearth_engine::{generate, ChatMessage, FinishReason, ModelBundle, SamplingParams, StopConditions};
use hearth_testkit::{model_path, QWEN, SMOLLM};

fn load(name: &str) -> ModelBundle {
    hearth_kernels::threads::init(None);
    ModelBundle::load(&model_path(name)).unwrap()
}

fn run(bundle: &ModelBundle, prompt: &[u32], sampling: SamplingParams, stop: &StopConditions) -> hearth_engine::Generation {
    let mut streamed = String::new();
    let out = generate(&bundle.model, &bundle.tokenizer, prompt, sampling, stop, bundle.context_length(), |e| {
        streamed.push_str(&e.text);
        ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(streamed, out.text, "streamed deltas add up to the final text");
    out
}

#[test]
fn qwen_writes_a_python_prime_function() {
    let bundle = load(QWEN);
    let prompt = bundle
        .chat_prompt(&[ChatMessage {
            role: "user".into(),
            content: "Write a one-line Python function to check if a number is prime.".into(),
        }])
        .unwrap();
    let stop = StopConditions { max_tokens: Some(96), ..Default::default() };
    let out = run(&bundle, &prompt, SamplingParams::greedy(), &stop);
    eprintln!("{}", out.text);
    assert!(out.text.contains("def "), "no Python function in: {}", out.text);
    assert_eq!(out.finish_reason, FinishReason::Stop, "the answer ends with <|im_end|>");
    assert!(!out.text.contains("<|im_end|>"));
}

#[test]
fn max_tokens_and_stop_strings_end_generation() {
    let bundle = load(SMOLLM);
    let prompt = bundle.tokenizer.encode("The capital of France is").unwrap();
    let out = run(&bundle, &prompt, SamplingParams::greedy(), &StopConditions { max_tokens: Some(5), ..Default::default() });
    assert_eq!(out.tokens.len(), 5);
    assert_eq!(out.finish_reason, FinishReason::Length);
    // A stop string taken from the middle of the free greedy text cuts the text just before it.
    let free = run(&bundle, &prompt, SamplingParams::greedy(), &StopConditions { max_tokens: Some(30), ..Default::default() });
    let words: Vec<&str> = free.text.split_whitespace().collect();
    assert!(words.len() > 4, "greedy text too short: {:?}", free.text);
    let stop_word = words[3];
    let cut = free.text.find(stop_word).unwrap();
    let stop = StopConditions { max_tokens: Some(30), stop_strings: vec![stop_word.to_string()], ..Default::default() };
    let out = run(&bundle, &prompt, SamplingParams::greedy(), &stop);
    assert_eq!(out.finish_reason, FinishReason::Stop);
    assert_eq!(out.text, free.text[..cut], "stop string {stop_word:?}");
}

#[test]
fn same_seed_same_text_and_context_overflow_is_an_error() {
    let bundle = load(SMOLLM);
    let prompt = bundle.tokenizer.encode("Once upon a time").unwrap();
    let sampling = SamplingParams { temperature: 0.9, seed: Some(7), ..Default::default() };
    let stop = StopConditions { max_tokens: Some(12), ignore_eos: true, ..Default::default() };
    let a = run(&bundle, &prompt, sampling.clone(), &stop);
    let b = run(&bundle, &prompt, sampling, &stop);
    assert_eq!(a.tokens, b.tokens);
    let generate_within = |stop: &StopConditions, limit: usize| {
        generate(&bundle.model, &bundle.tokenizer, &prompt, SamplingParams::greedy(), stop, limit, |_| ControlFlow::Continue(()))
    };
    // max_tokens beyond what the context has left: generation runs to the context's end
    let cut = generate_within(&StopConditions { max_tokens: Some(10), ignore_eos: true, ..Default::default() }, 8).unwrap();
    assert_eq!((prompt.len(), cut.tokens.len(), cut.finish_reason), (4, 4, FinishReason::Length));
    // a prompt that fills the context by itself is the context error
    let err = generate_within(&StopConditions { max_tokens: Some(10), ..Default::default() }, 4).unwrap_err();
    assert_eq!(err.to_string(), "This model's maximum context length is 4 tokens. However, you requested 14 tokens (4 in the messages, 10 in the completion). Please reduce the length of the messages or completion.");
}
