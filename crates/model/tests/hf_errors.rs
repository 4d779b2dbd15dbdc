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
    let data: Vec<(String, Vec<usize>, Vec<u8>)> =
        tensors.iter().map(|(n, s)| (n.to_string(), s.clone(), vec![0u8; 4 * s.iter().product::<usize>()])).collect();
    let views: HashMap<String, safetensors::tensor::TensorView> = data
        .iter()
        .map(|(n, s, b)| (n.clone(), safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize_to_file(views, None, path).unwrap();
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
