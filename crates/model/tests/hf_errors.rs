//! Corrupt or inconsistent Hugging Face directories give errors that name the file and the
//! problem, never a panic.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use hearth_model::Model;

const CONFIG: &str = r#"{"model_type": "llama", "hidden_size": 8, "num_attention_heads": 2, "num_key_value_heads": 1,
    "num_hidden_layers": 1, "intermediate_size": 16, "rms_norm_eps": 1e-5, "vocab_size": 4, "max_position_embeddings": 32}"#;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hearth-hf-errors-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A safetensors file of f32 zeros with the given (name, shape) tensors.
fn write_tensors(path: &Path, tensors: &[(&str, Vec<usize>)]) {
    let typed: Vec<_> = tensors.iter().map(|(n, s)| (n.to_string(), safetensors::Dtype::F32, s.clone())).collect();
    write_typed(path, &typed);
}

/// Every tensor of the one-layer config above, in HF names and shapes.
fn full_model() -> Vec<(&'static str, Vec<usize>)> {
    vec![
        ("model.embed_tokens.weight", vec![4, 8]),
        ("model.norm.weight", vec![8]),
        ("model.layers.0.input_layernorm.weight", vec![8]),
        ("model.layers.0.self_attn.q_proj.weight", vec![8, 8]),
        ("model.layers.0.self_attn.k_proj.weight", vec![4, 8]),
        ("model.layers.0.self_attn.v_proj.weight", vec![4, 8]),
        ("model.layers.0.self_attn.o_proj.weight", vec![8, 8]),
        ("model.layers.0.post_attention_layernorm.weight", vec![8]),
        ("model.layers.0.mlp.gate_proj.weight", vec![16, 8]),
        ("model.layers.0.mlp.up_proj.weight", vec![16, 8]),
        ("model.layers.0.mlp.down_proj.weight", vec![8, 16]),
    ]
}

fn load_error(dir: &Path) -> String {
    match Model::load_dir(dir) {
        Ok(_) => panic!("{} loaded", dir.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_complete_directory_loads() {
    let dir = scratch("ok");
    std::fs::write(dir.join("config.json"), CONFIG).unwrap();
    write_tensors(&dir.join("model.safetensors"), &full_model());
    let model = Model::load_dir(&dir).unwrap();
    assert_eq!(model.config().n_layers, 1);
}

#[test]
fn faults_are_named() {
    let dir = scratch("no-config");
    assert!(load_error(&dir).contains("config.json: cannot read"), "{}", load_error(&dir));

    std::fs::write(dir.join("config.json"), "{ not json").unwrap();
    assert!(load_error(&dir).contains("not valid JSON"));

    std::fs::write(dir.join("config.json"), CONFIG.replace("\"hidden_size\": 8,", "")).unwrap();
    assert!(load_error(&dir).contains("`hidden_size` is missing"));

    std::fs::write(dir.join("config.json"), CONFIG).unwrap();
    assert!(load_error(&dir).contains("holds no .safetensors file"));

    let mut missing = full_model();
    missing.retain(|(n, _)| !n.contains("down_proj"));
    write_tensors(&dir.join("model.safetensors"), &missing);
    let e = load_error(&dir);
    assert!(e.contains("model.layers.0.mlp.down_proj.weight") && e.contains("missing"), "{e}");

    let mut wrong = full_model();
    wrong[3].1 = vec![8, 7];
    write_tensors(&dir.join("model.safetensors"), &wrong);
    let e = load_error(&dir);
    assert!(e.contains("model.layers.0.self_attn.q_proj.weight") && e.contains("shape"), "{e}");

    write_tensors(&dir.join("model.safetensors"), &full_model());
    let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    std::fs::write(dir.join("model.safetensors"), &bytes[..bytes.len() - 10]).unwrap();
    let e = load_error(&dir);
    assert!(e.contains("model.safetensors") && e.contains("not a valid safetensors file"), "{e}");
}

/// A one-layer model wide enough for int4 (inputs of 32 and 64), its down projection packed.
const INT4_CONFIG: &str = r#"{"model_type": "llama", "hidden_size": 32, "num_attention_heads": 2, "num_key_value_heads": 1,
    "num_hidden_layers": 1, "intermediate_size": 64, "rms_norm_eps": 1e-5, "vocab_size": 4, "max_position_embeddings": 32,
    "quantization_config": QUANT}"#;

/// Writes zero-filled tensors of any dtype: (name, dtype, shape).
fn write_typed(path: &Path, tensors: &[(String, safetensors::Dtype, Vec<usize>)]) {
    let data: Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)> =
        tensors.iter().map(|(n, d, s)| (n.clone(), *d, s.clone(), vec![0u8; d.bitsize() / 8 * s.iter().product::<usize>()])).collect();
    let views: HashMap<String, safetensors::tensor::TensorView> =
        data.iter().map(|(n, d, s, b)| (n.clone(), safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap())).collect();
    safetensors::serialize_to_file(views, None, path).unwrap();
}

/// The float tensors of the int4 config, and the given packed tensors of its down projection.
fn int4_model(packed: &[(&str, safetensors::Dtype, Vec<usize>)]) -> Vec<(String, safetensors::Dtype, Vec<usize>)> {
    use safetensors::Dtype::F32;
    let float = [
        ("model.embed_tokens.weight", vec![4, 32]),
        ("model.norm.weight", vec![32]),
        ("model.layers.0.input_layernorm.weight", vec![32]),
        ("model.layers.0.self_attn.q_proj.weight", vec![32, 32]),
        ("model.layers.0.self_attn.k_proj.weight", vec![16, 32]),
        ("model.layers.0.self_attn.v_proj.weight", vec![16, 32]),
        ("model.layers.0.self_attn.o_proj.weight", vec![32, 32]),
        ("model.layers.0.post_attention_layernorm.weight", vec![32]),
        ("model.layers.0.mlp.gate_proj.weight", vec![64, 32]),
        ("model.layers.0.mlp.up_proj.weight", vec![64, 32]),
    ];
    let mut all: Vec<_> = float.into_iter().map(|(n, s)| (n.to_string(), F32, s)).collect();
    all.extend(packed.iter().map(|(n, d, s)| (format!("model.layers.0.mlp.down_proj.{n}"), *d, s.clone())));
    all
}

#[test]
fn sharded_checkpoints_follow_their_index() {
    let dir = scratch("sharded");
    std::fs::write(dir.join("config.json"), CONFIG).unwrap();
    let (first, second): (Vec<_>, Vec<_>) = full_model().into_iter().partition(|(n, _)| !n.contains("mlp"));
    write_tensors(&dir.join("model-00001-of-00002.safetensors"), &first);
    write_tensors(&dir.join("model-00002-of-00002.safetensors"), &second);
    // a stray file the index does not list is not read (it would clash with the shards)
    write_tensors(&dir.join("consolidated.safetensors"), &[("model.embed_tokens.weight", vec![5, 8])]);
    let shard = |n: &str| if n.contains("mlp") { "model-00002-of-00002.safetensors" } else { "model-00001-of-00002.safetensors" };
    let weight_map: serde_json::Map<String, serde_json::Value> = full_model().iter().map(|(n, _)| (n.to_string(), shard(n).into())).collect();
    let index = serde_json::json!({ "metadata": {}, "weight_map": weight_map });
    std::fs::write(dir.join("model.safetensors.index.json"), index.to_string()).unwrap();
    Model::load_dir(&dir).unwrap();
    std::fs::remove_file(dir.join("model-00002-of-00002.safetensors")).unwrap();
    assert!(load_error(&dir).contains("lists shard `model-00002-of-00002.safetensors`, which is missing"), "{}", load_error(&dir));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn int4_directories_load_and_their_faults_are_named() {
    use safetensors::Dtype::{F16, F32, I32};
    let dir = scratch("int4");
    let awq = r#"{"quant_method": "awq", "bits": 4, "group_size": 32, "zero_point": true, "version": "gemm"}"#;
    let gptq = r#"{"quant_method": "gptq", "bits": 4, "group_size": 32, "desc_act": true, "sym": false}"#;
    // AWQ down_proj: 64 inputs, 32 outputs, groups of 32
    let awq_packed = vec![("qweight", I32, vec![64, 4]), ("qzeros", I32, vec![2, 4]), ("scales", F16, vec![2, 32])];
    std::fs::write(dir.join("config.json"), INT4_CONFIG.replace("QUANT", awq)).unwrap();
    write_typed(&dir.join("model.safetensors"), &int4_model(&awq_packed));
    Model::load_dir(&dir).unwrap();

    std::fs::write(dir.join("config.json"), INT4_CONFIG.replace(",\n    \"quantization_config\": QUANT", "")).unwrap();
    assert!(load_error(&dir).contains("`model.layers.0.mlp.down_proj.qweight`: packed int4 weights, but config.json has no"), "{}", load_error(&dir));

    std::fs::write(dir.join("config.json"), INT4_CONFIG.replace("QUANT", awq)).unwrap();
    let mut wrong_shape = awq_packed.clone();
    wrong_shape[0].2 = vec![64, 8];
    write_typed(&dir.join("model.safetensors"), &int4_model(&wrong_shape));
    assert!(load_error(&dir).contains("`model.layers.0.mlp.down_proj.qweight` has shape [8, 64], expected [4, 64]"), "{}", load_error(&dir));

    let mut f32_scales = awq_packed.clone();
    f32_scales[2].1 = F32;
    write_typed(&dir.join("model.safetensors"), &int4_model(&f32_scales));
    assert!(load_error(&dir).contains("int4 scales (F16 expected)"), "{}", load_error(&dir));

    // GPTQ: qweight [in/8, out]; g_idx must name existing groups
    std::fs::write(dir.join("config.json"), INT4_CONFIG.replace("QUANT", gptq)).unwrap();
    let gptq_packed = vec![("qweight", I32, vec![8, 32]), ("qzeros", I32, vec![2, 4]), ("scales", F16, vec![2, 32]), ("g_idx", I32, vec![64])];
    write_typed(&dir.join("model.safetensors"), &int4_model(&gptq_packed));
    Model::load_dir(&dir).unwrap();
    let path = dir.join("model.safetensors");
    let mut bytes = std::fs::read(&path).unwrap();
    let (header, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let (start, _) = meta.info("model.layers.0.mlp.down_proj.g_idx").unwrap().data_offsets;
    bytes[8 + header + start..][..4].copy_from_slice(&7u32.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    assert!(load_error(&dir).contains("g_idx names group 7 but the layer has 2"), "{}", load_error(&dir));

    std::fs::write(dir.join("config.json"), INT4_CONFIG.replace("QUANT", &awq.replace("\"awq\"", "\"bitsandbytes\""))).unwrap();
    assert!(load_error(&dir).contains("method `bitsandbytes` is not supported"), "{}", load_error(&dir));
    let _ = std::fs::remove_dir_all(&dir);
}
