//! Hugging Face model directories: `config.json` into a `ModelConfig`, and safetensors files
//! (sharded or not, mapped, bf16/f16/f32) into a tensor table under GGUF names.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hearth_kernels::ops::{RopeScaling, RopeStyle};
use hearth_kernels::QuantType;
use serde_json::Value;

use crate::config::{ArchSpec, ModelConfig};
use crate::error::ModelError;
use crate::int4::{Int4Format, Int4Scheme};
use crate::storage::{ByteSource, TensorBytes};
use crate::tensors::{TensorEntry, TensorTable};
use crate::{llama, qwen2};

fn config_error(path: &Path, message: String) -> ModelError {
    ModelError::Config { path: path.to_path_buf(), message }
}

/// Reads `config.json` of a llama or qwen2 checkpoint: the model's shape, and the int4
/// scheme of an AWQ or GPTQ checkpoint.
pub fn read_config(dir: &Path) -> Result<(ModelConfig, Option<Int4Scheme>), ModelError> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|e| config_error(&path, format!("cannot read: {e}")))?;
    parse_config(&path, &text)
}

/// The text of a `config.json` (named `path` in errors) into the model's shape and int4 scheme.
pub fn parse_config(path: &Path, text: &str) -> Result<(ModelConfig, Option<Int4Scheme>), ModelError> {
    let v: Value = serde_json::from_str(text).map_err(|e| config_error(path, format!("not valid JSON: {e}")))?;
    Ok((config_from_json(path, &v)?, int4_scheme(path, &v)?))
}

/// The int4 scheme of `quantization_config`, if any; other methods are refused by name.
fn int4_scheme(path: &Path, v: &Value) -> Result<Option<Int4Scheme>, ModelError> {
    let Some(q) = v.get("quantization_config").filter(|q| !q.is_null()) else { return Ok(None) };
    let bad = |message: String| config_error(path, format!("quantization_config: {message}"));
    let method = q["quant_method"].as_str().unwrap_or("(none)").to_ascii_lowercase();
    let bits = q.get("bits").or_else(|| q.get("w_bit")).and_then(Value::as_u64);
    if matches!(method.as_str(), "awq" | "gptq") && bits != Some(4) {
        return Err(bad(format!("{method} with {} bits is not supported (only 4)", bits.map_or("unknown".into(), |b| b.to_string()))));
    }
    let group_size = q.get("group_size").or_else(|| q.get("q_group_size")).and_then(Value::as_i64).unwrap_or(128);
    let group_size = match group_size {
        -1 if method == "gptq" => None,
        g if g > 0 => Some(g as usize),
        g => return Err(bad(format!("group_size {g} is not valid"))),
    };
    let format = match method.as_str() {
        "awq" => {
            let version = q["version"].as_str().unwrap_or("gemm").to_ascii_lowercase();
            if version != "gemm" {
                return Err(bad(format!("AWQ version `{version}` is not supported (only `gemm`)")));
            }
            if q.get("zero_point").and_then(Value::as_bool) == Some(false) {
                return Err(bad("AWQ without zero points is not supported".into()));
            }
            Int4Format::Awq
        }
        "gptq" => {
            if q.get("is_marlin_format").and_then(Value::as_bool) == Some(true) {
                return Err(bad("GPTQ in Marlin format is not supported".into()));
            }
            match q.get("checkpoint_format").and_then(Value::as_str).unwrap_or("gptq") {
                "gptq" => Int4Format::Gptq { zero_offset: 1 },
                "gptq_v2" => Int4Format::Gptq { zero_offset: 0 },
                other => return Err(bad(format!("GPTQ checkpoint_format `{other}` is not supported"))),
            }
        }
        other => return Err(bad(format!("method `{other}` is not supported (supported: awq with version gemm, gptq)"))),
    };
    Ok(Some(Int4Scheme { format, group_size }))
}

fn config_from_json(path: &Path, v: &Value) -> Result<ModelConfig, ModelError> {
    let bad = |message: String| config_error(path, message);
    // HF keeps llama's q/k weights in rotate-half order (GGUF converters permute them), so
    // both architectures use NeoX-style rotary embeddings here.
    let arch: ArchSpec = match v["model_type"].as_str() {
        Some("llama") => ArchSpec { rope_style: RopeStyle::Neox, ..llama::SPEC },
        Some("qwen2") => qwen2::SPEC,
        other => return Err(ModelError::UnsupportedArchitecture { path: path.into(), arch: other.unwrap_or("(none)").to_string() }),
    };
    let int = |key: &str| v[key].as_u64().map(|n| n as usize).ok_or_else(|| bad(format!("`{key}` is missing or not an integer")));
    let hidden = int("hidden_size")?;
    let n_heads = int("num_attention_heads")?;
    let n_kv_heads = if v.get("num_key_value_heads").is_some() { int("num_key_value_heads")? } else { n_heads };
    if n_heads == 0 || n_kv_heads == 0 || hidden % n_heads != 0 || n_heads % n_kv_heads != 0 {
        return Err(bad(format!("inconsistent heads: hidden {hidden}, heads {n_heads}, kv heads {n_kv_heads}")));
    }
    let head_dim = v["head_dim"].as_u64().map(|n| n as usize).unwrap_or(hidden / n_heads);
    let max_positions = int("max_position_embeddings")?;
    let rope_scaling = rope_scaling(v.get("rope_scaling").unwrap_or(&Value::Null), max_positions).map_err(|m| bad(format!("rope_scaling: {m}")))?;
    // as vLLM does: a stretched rope serves `factor` times the original context
    let context_length = match rope_scaling {
        RopeScaling::Linear { factor } => (max_positions as f32 * factor) as usize,
        RopeScaling::Yarn { factor, original_context, .. } => max_positions.max((original_context * factor) as usize),
        _ => max_positions,
    };
    Ok(ModelConfig {
        arch,
        vocab_size: int("vocab_size")?,
        hidden,
        n_layers: int("num_hidden_layers")?,
        n_heads,
        n_kv_heads,
        head_dim,
        ffn_hidden: int("intermediate_size")?,
        rms_eps: v["rms_norm_eps"].as_f64().ok_or_else(|| bad("`rms_norm_eps` is missing".into()))? as f32,
        rope_base: v["rope_theta"].as_f64().unwrap_or(10_000.0) as f32,
        rope_scaling,
        context_length,
        moe: None,
    })
}

/// `rope_scaling` of config.json: linear, llama3 and yarn; `null` or `default` for none.
fn rope_scaling(r: &Value, max_positions: usize) -> Result<RopeScaling, String> {
    if r.is_null() {
        return Ok(RopeScaling::None);
    }
    let kind = r.get("rope_type").or_else(|| r.get("type")).and_then(Value::as_str).unwrap_or("default");
    let float = |key: &str| r.get(key).and_then(Value::as_f64).map(|x| x as f32);
    let factor = float("factor");
    let need_factor = || factor.filter(|f| *f >= 1.0).ok_or_else(|| format!("`{kind}` needs a `factor` of at least 1"));
    let original = float("original_max_position_embeddings");
    Ok(match kind {
        "default" => RopeScaling::None,
        "linear" => RopeScaling::Linear { factor: need_factor()? },
        "llama3" => RopeScaling::Llama3 {
            factor: need_factor()?,
            low_freq_factor: float("low_freq_factor").ok_or("`llama3` needs `low_freq_factor`")?,
            high_freq_factor: float("high_freq_factor").ok_or("`llama3` needs `high_freq_factor`")?,
            original_context: original.ok_or("`llama3` needs `original_max_position_embeddings`")?,
        },
        "yarn" => {
            let factor = need_factor()?;
            RopeScaling::Yarn {
                factor,
                original_context: original.unwrap_or(max_positions as f32),
                beta_fast: float("beta_fast").unwrap_or(32.0),
                beta_slow: float("beta_slow").unwrap_or(1.0),
                attention_factor: float("attention_factor").unwrap_or_else(|| RopeScaling::yarn_attention_factor(factor)),
            }
        }
        other => return Err(format!("type `{other}` is not supported (supported: linear, llama3, yarn)")),
    })
}

/// Whole-model tensors: (GGUF name, Hugging Face name).
const MODEL_TENSORS: [(&str, &str); 3] = [
    ("token_embd.weight", "model.embed_tokens.weight"),
    ("output.weight", "lm_head.weight"),
    ("output_norm.weight", "model.norm.weight"),
];

/// Per-layer modules: (GGUF `blk.N.<name>`, Hugging Face `model.layers.N.<name>`).
const LAYER_MODULES: [(&str, &str); 9] = [
    ("attn_norm", "input_layernorm"),
    ("attn_q", "self_attn.q_proj"),
    ("attn_k", "self_attn.k_proj"),
    ("attn_v", "self_attn.v_proj"),
    ("attn_output", "self_attn.o_proj"),
    ("ffn_norm", "post_attention_layernorm"),
    ("ffn_gate", "mlp.gate_proj"),
    ("ffn_up", "mlp.up_proj"),
    ("ffn_down", "mlp.down_proj"),
];

/// The GGUF name of a Hugging Face tensor name (None for tensors the model does not use).
pub fn gguf_name(hf: &str) -> Option<String> {
    translate(hf, ("model.layers.", "blk."), |(gguf, hf)| (hf, gguf))
}

/// The Hugging Face name of a GGUF tensor name (the inverse of `gguf_name`).
pub fn hf_name(gguf: &str) -> Option<String> {
    translate(gguf, ("blk.", "model.layers."), |pair| pair)
}

/// Renames `name` with the tables above; `orient` turns a (gguf, hf) pair into (from, to).
fn translate(name: &str, layer_prefix: (&str, &str), orient: fn((&'static str, &'static str)) -> (&'static str, &'static str)) -> Option<String> {
    if let Some((_, to)) = MODEL_TENSORS.into_iter().map(orient).find(|(from, _)| *from == name) {
        return Some(to.to_string());
    }
    let rest = name.strip_prefix(layer_prefix.0)?;
    let (layer, part) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let (module, suffix) = part.rsplit_once('.')?;
    let (_, to) = LAYER_MODULES.into_iter().map(orient).find(|(from, _)| *from == module)?;
    Some(format!("{}{layer}.{to}.{suffix}", layer_prefix.1))
}

/// The weight files of `dir`, mapped, as one tensor table under GGUF names: the shards
/// `model.safetensors.index.json` lists when there is one, else every `*.safetensors` file.
pub fn read_tensors(dir: &Path) -> Result<TensorTable, ModelError> {
    let mut files = match shards_in_index(dir)? {
        Some(files) => files,
        None => std::fs::read_dir(dir)
            .map_err(|e| config_error(dir, format!("cannot list: {e}")))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
            .collect(),
    };
    files.sort();
    if files.is_empty() {
        return Err(config_error(dir, "holds no .safetensors file".into()));
    }
    let mut tensors = HashMap::new();
    for file in &files {
        read_file(file, &mut tensors)?;
    }
    Ok(TensorTable::new(dir.to_path_buf(), tensors, hf_name))
}

/// The shard files named by `model.safetensors.index.json`'s `weight_map`, each checked to exist.
fn shards_in_index(dir: &Path) -> Result<Option<Vec<PathBuf>>, ModelError> {
    let path = dir.join("model.safetensors.index.json");
    let Ok(text) = std::fs::read_to_string(&path) else { return Ok(None) };
    let v: Value = serde_json::from_str(&text).map_err(|e| config_error(&path, format!("not valid JSON: {e}")))?;
    let map = v["weight_map"].as_object().ok_or_else(|| config_error(&path, "`weight_map` is missing or not an object".into()))?;
    let mut names: Vec<&str> = map.values().filter_map(Value::as_str).collect();
    names.sort_unstable();
    names.dedup();
    let mut files = Vec::with_capacity(names.len());
    for name in names {
        let file = dir.join(name);
        if !file.is_file() {
            return Err(config_error(&path, format!("lists shard `{name}`, which is missing")));
        }
        files.push(file);
    }
    Ok(Some(files))
}

/// One safetensors file held in memory (named `path` in errors) as a tensor table.
pub fn tensors_from_bytes(path: &Path, bytes: Vec<u8>) -> Result<TensorTable, ModelError> {
    let mut tensors = HashMap::new();
    read_source(path, Arc::new(ByteSource::Owned(bytes)), &mut tensors)?;
    Ok(TensorTable::new(path.to_path_buf(), tensors, hf_name))
}

fn read_file(path: &Path, out: &mut HashMap<String, TensorEntry>) -> Result<(), ModelError> {
    let source = Arc::new(ByteSource::map_file(path).map_err(|e| config_error(path, format!("cannot map: {e}")))?);
    read_source(path, source, out)
}

fn read_source(path: &Path, source: Arc<ByteSource>, out: &mut HashMap<String, TensorEntry>) -> Result<(), ModelError> {
    let (header_len, metadata) = safetensors::SafeTensors::read_metadata(source.bytes())
        .map_err(|e| config_error(path, format!("not a valid safetensors file: {e}")))?;
    let data_start = 8 + header_len;
    for (name, info) in metadata.tensors() {
        let Some(gguf) = gguf_name(&name) else { continue };
        let dtype = match info.dtype {
            safetensors::Dtype::BF16 => QuantType::BF16,
            safetensors::Dtype::F16 => QuantType::F16,
            safetensors::Dtype::F32 => QuantType::F32,
            safetensors::Dtype::I32 => QuantType::I32,
            other => {
                let message = format!("tensor `{name}` has dtype {other:?}; supported: BF16, F16, F32, and I32 for packed int4");
                return Err(config_error(path, message));
            }
        };
        let (start, end) = info.data_offsets;
        let bytes = TensorBytes::new(source.clone(), data_start + start, end - start);
        let dims = info.shape.iter().rev().map(|&d| d as u64).collect();
        out.insert(gguf, TensorEntry { dtype, dims, bytes });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hf_names_map_to_gguf_names() {
        assert_eq!(gguf_name("model.layers.3.self_attn.k_proj.bias").as_deref(), Some("blk.3.attn_k.bias"));
        assert_eq!(gguf_name("model.layers.12.mlp.down_proj.weight").as_deref(), Some("blk.12.ffn_down.weight"));
        assert_eq!(gguf_name("model.embed_tokens.weight").as_deref(), Some("token_embd.weight"));
        assert_eq!(gguf_name("model.layers.0.self_attn.rotary_emb.inv_freq"), None);
        for name in ["blk.7.attn_q.bias", "blk.0.ffn_gate.weight", "output_norm.weight", "output.weight"] {
            assert_eq!(gguf_name(&hf_name(name).unwrap()).as_deref(), Some(name));
        }
    }

    #[test]
    fn configs_are_read_and_refused_clearly() {
        let path = Path::new("config.json");
        let base = serde_json::json!({"model_type": "qwen2", "hidden_size": 64, "num_attention_heads": 4, "num_key_value_heads": 2,
            "num_hidden_layers": 2, "intermediate_size": 128, "rms_norm_eps": 1e-6, "rope_theta": 1e6, "vocab_size": 100,
            "max_position_embeddings": 512});
        let c = config_from_json(path, &base).unwrap();
        assert_eq!((c.head_dim, c.n_kv_heads, c.rope_base), (16, 2, 1e6));
        let mut awq = base.clone();
        awq["quantization_config"] = serde_json::json!({"quant_method": "awq", "bits": 4, "group_size": 128, "zero_point": true, "version": "GEMM"});
        assert_eq!(int4_scheme(path, &awq).unwrap(), Some(Int4Scheme { format: Int4Format::Awq, group_size: Some(128) }));
        awq["quantization_config"]["version"] = serde_json::json!("gemv");
        assert!(int4_scheme(path, &awq).unwrap_err().to_string().contains("gemv"));
        let mut gptq = base.clone();
        gptq["quantization_config"] = serde_json::json!({"quant_method": "gptq", "bits": 4, "group_size": -1, "desc_act": true, "sym": true});
        assert_eq!(int4_scheme(path, &gptq).unwrap(), Some(Int4Scheme { format: Int4Format::Gptq { zero_offset: 1 }, group_size: None }));
        gptq["quantization_config"]["bits"] = serde_json::json!(8);
        assert!(int4_scheme(path, &gptq).unwrap_err().to_string().contains("8 bits"));
        let mut yarn = base.clone();
        yarn["rope_scaling"] = serde_json::json!({"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 512});
        let c = config_from_json(path, &yarn).unwrap();
        assert!(matches!(c.rope_scaling, RopeScaling::Yarn { factor: 4.0, original_context: 512.0, .. }));
        assert_eq!(c.context_length, 2048, "four times the original context");
        let mut llama3 = base.clone();
        llama3["rope_scaling"] = serde_json::json!({"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192});
        assert!(matches!(config_from_json(path, &llama3).unwrap().rope_scaling, RopeScaling::Llama3 { factor: 8.0, .. }));
        llama3["rope_scaling"] = serde_json::json!({"rope_type": "longrope", "factor": 8.0});
        assert!(config_from_json(path, &llama3).unwrap_err().to_string().contains("`longrope` is not supported"));
        let mut fp8 = base.clone();
        fp8["quantization_config"] = serde_json::json!({"quant_method": "fp8"});
        assert!(int4_scheme(path, &fp8).unwrap_err().to_string().contains("`fp8` is not supported"));
        let mut other = base.clone();
        other["model_type"] = serde_json::json!("mamba");
        assert!(config_from_json(path, &other).unwrap_err().to_string().contains("mamba"));
    }
}
