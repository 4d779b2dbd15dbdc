//! `hearth quantize` on the bf16 directory converted from Qwen2.5-Coder-1.5B: the AWQ, RTN
//! and GPTQ (act order) checkpoints it writes use the standard tensor names, dtypes
//! and `quantization_config`, load and answer the prime-function chat with code, and keep
//! perplexity on the evaluation text within 10% of the bf16 model's; AWQ's searched scales do
//! no worse than plain round-to-nearest.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::Path;

use hearth_engine::convert::gguf_to_hf_dir;
use hearth_engine::quantize::{quantize_dir, Method, QuantizeOptions};
use hearth_engine::{generate, ChatMessage, ModelBundle, SamplingParams, StopConditions};
use hearth_testkit::perplexity::perplexity;
use hearth_testkit::{eval_text, model_path, perplexity_cases, ScratchDir, QWEN};

/// (dtype, shape) of every tensor in a safetensors file, read from its header.
fn tensor_index(path: &Path) -> HashMap<String, (String, Vec<usize>)> {
    let bytes = std::fs::read(path).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    meta.tensors().into_iter().map(|(name, info)| (name, (format!("{:?}", info.dtype), info.shape.clone()))).collect()
}

/// Quantizes `bf16` into a scratch folder. The test checks and removes each checkpoint (1.6 GB)
/// before it writes the next, so it needs free disk for the bf16 directory plus one checkpoint.
fn quantized(bf16: &Path, name: &str, opts: &QuantizeOptions) -> ScratchDir {
    let out = ScratchDir::new(&format!("quant-{name}"));
    let report = quantize_dir(bf16, out.path(), opts).unwrap();
    if let Some((rtn, searched)) = report.searched.iter().map(|(_, s)| (s.rtn_loss, s.loss)).reduce(|a, b| (a.0 + b.0, a.1 + b.1)) {
        eprintln!("{name}: calibration output error {searched:.4e} vs RTN {rtn:.4e} over {} groups", report.searched.len());
        assert!(searched <= rtn);
    }
    out
}

/// Loads the checkpoint, asks for the prime function and measures perplexity.
fn serves_with_perplexity(name: &str, dir: &Path, ids: &[u32], n_ctx: usize, bf16_ppl: f64) -> f64 {
    let bundle = ModelBundle::load(dir).unwrap();
    let text = writes_code(&bundle);
    assert!(text.contains("def "), "{name}: no Python function in: {text}");
    let (p, _) = perplexity(&bundle.model, ids, n_ctx);
    eprintln!("{name}: perplexity {p:.4} (bf16 {bf16_ppl:.4}, {:+.2}%)", 100.0 * (p / bf16_ppl - 1.0));
    assert!(p < bf16_ppl * 1.10, "{name}: perplexity {p} vs bf16 {bf16_ppl}");
    p
}

fn quantization_config(dir: &Path) -> serde_json::Value {
    let config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    config["quantization_config"].clone()
}

fn writes_code(bundle: &ModelBundle) -> String {
    let content = "Write a one-line Python function to check if a number is prime.".to_string();
    let prompt = bundle.chat_prompt(&[ChatMessage { role: "user".into(), content }]).unwrap();
    let stop = StopConditions { max_tokens: Some(64), ..Default::default() };
    let out = generate(&bundle.model, &bundle.tokenizer, &prompt, SamplingParams::greedy(), &stop, bundle.context_length(), |_| ControlFlow::Continue(()));
    out.unwrap().text
}

#[test]
fn qwen_awq_gptq_and_rtn_checkpoints_load_serve_and_keep_perplexity() {
    hearth_kernels::threads::init(None);
    let bf16 = ScratchDir::new("quant-bf16");
    gguf_to_hf_dir(&model_path(QWEN), bf16.path()).unwrap();
    let n_ctx = perplexity_cases().into_iter().find(|c| c.model == QWEN).unwrap().n_ctx;
    let base = ModelBundle::load(bf16.path()).unwrap();
    let ids = base.tokenizer.encode(&eval_text()).unwrap();
    let (bf16_ppl, _) = perplexity(&base.model, &ids, n_ctx);
    drop(base);

    let awq = quantized(bf16.path(), "awq", &QuantizeOptions::new(Method::Awq));
    let index = tensor_index(&awq.path().join("model.safetensors"));
    assert_eq!(index["model.layers.0.self_attn.q_proj.qweight"], ("I32".into(), vec![1536, 1536 / 8]));
    assert_eq!(index["model.layers.0.self_attn.q_proj.qzeros"], ("I32".into(), vec![1536 / 128, 1536 / 8]));
    assert_eq!(index["model.layers.0.self_attn.q_proj.scales"], ("F16".into(), vec![1536 / 128, 1536]));
    assert_eq!(index["model.layers.0.self_attn.q_proj.bias"].0, "F16");
    assert!(!index.contains_key("model.layers.0.self_attn.q_proj.weight"));
    let config = quantization_config(awq.path());
    assert_eq!((config["quant_method"].as_str(), config["version"].as_str()), (Some("awq"), Some("gemm")));
    let awq_ppl = serves_with_perplexity("awq", awq.path(), &ids, n_ctx, bf16_ppl);
    drop(awq);

    let rtn = quantized(bf16.path(), "rtn", &QuantizeOptions::new(Method::Rtn));
    let rtn_ppl = serves_with_perplexity("rtn", rtn.path(), &ids, n_ctx, bf16_ppl);
    drop(rtn);
    assert!(awq_ppl <= rtn_ppl, "AWQ {awq_ppl} is worse than RTN {rtn_ppl}");

    let gptq = quantized(bf16.path(), "gptq", &QuantizeOptions { desc_act: true, ..QuantizeOptions::new(Method::Gptq) });
    let index = tensor_index(&gptq.path().join("model.safetensors"));
    assert_eq!(index["model.layers.0.mlp.down_proj.qweight"], ("I32".into(), vec![8960 / 8, 1536]));
    assert_eq!(index["model.layers.0.mlp.down_proj.g_idx"], ("I32".into(), vec![8960]));
    let config = quantization_config(gptq.path());
    assert_eq!((config["desc_act"].as_bool(), config["sym"].as_bool()), (Some(true), Some(false)));
    serves_with_perplexity("gptq", gptq.path(), &ids, n_ctx, bf16_ppl);
}
