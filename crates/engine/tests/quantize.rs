//! `hearth quantize` on the bf16 directory converted from Qwen2.5-Coder-1.5B: the AWQ, RTN
//! and GPTQ (act order) checkpoints it writes use the standard tensor names, dtypes
//! and `quantization_config`, load and answer the prime-function chat with code, and keep
//! perplexity on the evaluation text within 10% of the bf16 model's; AWQ's searched scales do
//! no worse than plain round-to-nearest.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use hearth_engine::convert::gguf_to_hf_dir;
use hearth_engine::quantize::{quantize_dir, Method, QuantizeOptions};
use hearth_engine::{generate, ChatMessage, ModelBundle, SamplingParams, StopConditions};
use hearth_testkit::perplexity::perplexity;
use hearth_testkit::{eval_text, model_path, perplexity_cases, QWEN};

/// (dtype, shape) of every tensor in a safetensors file, read from its header.
fn tensor_index(path: &Path) -> HashMap<String, (String, Vec<usize>)> {
    let bytes = std::fs::read(path).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    meta.tensors().into_iter().map(|(name, info)| (name, (format!("{:?}", info.dtype), info.shape.clone()))).collect()
}

fn quantized(bf16: &Path, name: &str, opts: &QuantizeOptions) -> PathBuf {
    let out = bf16.with_file_name(format!("{}-{name}", bf16.file_name().unwrap().to_string_lossy()));
    let report = quantize_dir(bf16, &out, opts).unwrap();
    if let Some((rtn, searched)) = report.searched.iter().map(|(_, s)| (s.rtn_loss, s.loss)).reduce(|a, b| (a.0 + b.0, a.1 + b.1)) {
        eprintln!("{name}: calibration output error {searched:.4e} vs RTN {rtn:.4e} over {} groups", report.searched.len());
        assert!(searched <= rtn);
    }
    out
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
    let bf16 = std::env::temp_dir().join(format!("hearth-quant-{}", std::process::id()));
    gguf_to_hf_dir(&model_path(QWEN), &bf16).unwrap();
    let awq = quantized(&bf16, "awq", &QuantizeOptions::new(Method::Awq));
    let rtn = quantized(&bf16, "rtn", &QuantizeOptions::new(Method::Rtn));
    let gptq_opts = QuantizeOptions { desc_act: true, ..QuantizeOptions::new(Method::Gptq) };
    let gptq = quantized(&bf16, "gptq", &gptq_opts);

    // the layouts other tools expect
    let awq_index = tensor_index(&awq.join("model.safetensors"));
    assert_eq!(awq_index["model.layers.0.self_attn.q_proj.qweight"], ("I32".into(), vec![1536, 1536 / 8]));
    assert_eq!(awq_index["model.layers.0.self_attn.q_proj.qzeros"], ("I32".into(), vec![1536 / 128, 1536 / 8]));
    assert_eq!(awq_index["model.layers.0.self_attn.q_proj.scales"], ("F16".into(), vec![1536 / 128, 1536]));
    assert_eq!(awq_index["model.layers.0.self_attn.q_proj.bias"].0, "F16");
    assert!(!awq_index.contains_key("model.layers.0.self_attn.q_proj.weight"));
    let gptq_index = tensor_index(&gptq.join("model.safetensors"));
    assert_eq!(gptq_index["model.layers.0.mlp.down_proj.qweight"], ("I32".into(), vec![8960 / 8, 1536]));
    assert_eq!(gptq_index["model.layers.0.mlp.down_proj.g_idx"], ("I32".into(), vec![8960]));
    let config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(awq.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["quantization_config"]["quant_method"], "awq");
    assert_eq!(config["quantization_config"]["version"], "gemm");
    let config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(gptq.join("config.json")).unwrap()).unwrap();
    assert_eq!((config["quantization_config"]["desc_act"].as_bool(), config["quantization_config"]["sym"].as_bool()), (Some(true), Some(false)));

    let n_ctx = perplexity_cases().into_iter().find(|c| c.model == QWEN).unwrap().n_ctx;
    let base = ModelBundle::load(&bf16).unwrap();
    let ids = base.tokenizer.encode(&eval_text()).unwrap();
    let (bf16_ppl, _) = perplexity(&base.model, &ids, n_ctx);
    drop(base);
    let mut ppl = HashMap::new();
    for (name, dir) in [("awq", &awq), ("rtn", &rtn), ("gptq", &gptq)] {
        let bundle = ModelBundle::load(dir).unwrap();
        let text = writes_code(&bundle);
        assert!(text.contains("def "), "{name}: no Python function in: {text}");
        let (p, _) = perplexity(&bundle.model, &ids, n_ctx);
        eprintln!("{name}: perplexity {p:.4} (bf16 {bf16_ppl:.4}, {:+.2}%)", 100.0 * (p / bf16_ppl - 1.0));
        assert!(p < bf16_ppl * 1.10, "{name}: perplexity {p} vs bf16 {bf16_ppl}");
        ppl.insert(name, p);
    }
    assert!(ppl["awq"] <= ppl["rtn"], "AWQ {} is worse than RTN {}", ppl["awq"], ppl["rtn"]);
    for dir in [&bf16, &awq, &rtn, &gptq] {
        let _ = std::fs::remove_dir_all(dir);
    }
}
