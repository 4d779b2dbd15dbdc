//! `hearth convert`: a GGUF model as a Hugging Face directory in bf16 — dequantized weights in
//! `model.safetensors` (llama's q/k rows put back in rotate-half order), `config.json`, and
//! `tokenizer.json` / `tokenizer_config.json` made from the GGUF's tokenizer and chat template.

use std::path::Path;

use half::bf16;
use hearth_kernels::ops::RopeScaling;
use hearth_kernels::QMatrix;
use hearth_model::hf::hf_name;
use hearth_model::tensors::{TensorEntry, TensorTable};
use hearth_model::{GgufFile, ModelConfig};
use hearth_tokenizer::Tokenizer;
use serde_json::json;

use crate::tensor_out::OutTensor;

#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error(transparent)]
    Model(#[from] hearth_model::ModelError),
    #[error(transparent)]
    Tokenizer(#[from] hearth_tokenizer::TokenizerError),
    #[error("{path}: {message}")]
    Write { path: String, message: String },
    #[error("{path}: converting the `{arch}` architecture to a Hugging Face directory is not supported (llama, qwen2)")]
    Unsupported { path: String, arch: String },
}

/// Writes the directory; returns the number of tensors written.
pub fn gguf_to_hf_dir(gguf_path: &Path, out: &Path) -> Result<usize, ConvertError> {
    let write_err = |path: &Path, e: &dyn std::fmt::Display| ConvertError::Write { path: path.display().to_string(), message: e.to_string() };
    let file = GgufFile::open(gguf_path).map_err(hearth_model::ModelError::from)?;
    let config = ModelConfig::from_gguf(&file)?;
    if !matches!(config.arch.name, "llama" | "qwen2") {
        return Err(ConvertError::Unsupported { path: gguf_path.display().to_string(), arch: config.arch.name.to_string() });
    }
    let tokenizer = Tokenizer::from_gguf(&file)?;
    let table = TensorTable::from_gguf(&file);
    std::fs::create_dir_all(out).map_err(|e| write_err(out, &e))?;
    let mut tensors = Vec::new();
    for info in file.tensors() {
        let Some(name) = hf_name(&info.name) else { continue };
        let entry = table.get(&info.name).expect("listed tensor");
        tensors.push((name, dequantize(&info.name, entry, &config)));
    }
    let st_path = out.join("model.safetensors");
    safetensors::serialize_to_file(tensors.iter().map(|(n, t)| (n.as_str(), t)), None, &st_path).map_err(|e| write_err(&st_path, &e))?;
    let tied = table.get("output.weight").is_none();
    write_json(&out.join("config.json"), &config_json(&config, &tokenizer, tied))?;
    let tok_path = out.join("tokenizer.json");
    std::fs::write(&tok_path, tokenizer.to_json()?).map_err(|e| write_err(&tok_path, &e))?;
    let special = |id: Option<u32>| tokenizer.special_text(id);
    let tok_config = json!({
        "bos_token": special(tokenizer.bos_token()),
        "eos_token": special(tokenizer.eos_token()),
        "add_bos_token": tokenizer.adds_bos(),
        "chat_template": tokenizer.chat_template(),
    });
    write_json(&out.join("tokenizer_config.json"), &tok_config)?;
    Ok(tensors.len())
}

fn write_json(path: &Path, value: &serde_json::Value) -> Result<(), ConvertError> {
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    std::fs::write(path, text).map_err(|e| ConvertError::Write { path: path.display().to_string(), message: e.to_string() })
}

fn config_json(c: &ModelConfig, tokenizer: &Tokenizer, tied: bool) -> serde_json::Value {
    let class = if c.arch.name == "qwen2" { "Qwen2ForCausalLM" } else { "LlamaForCausalLM" };
    json!({
        "architectures": [class],
        "model_type": c.arch.name,
        "hidden_size": c.hidden,
        "intermediate_size": c.ffn_hidden,
        "num_hidden_layers": c.n_layers,
        "num_attention_heads": c.n_heads,
        "num_key_value_heads": c.n_kv_heads,
        "head_dim": c.head_dim,
        "rms_norm_eps": c.rms_eps,
        "rope_theta": c.rope_base,
        "max_position_embeddings": c.context_length,
        "vocab_size": c.vocab_size,
        "tie_word_embeddings": tied,
        "bos_token_id": tokenizer.bos_token(),
        "eos_token_id": tokenizer.eos_token(),
        "torch_dtype": "bfloat16",
        "hidden_act": "silu",
        "rope_scaling": rope_scaling_json(c.rope_scaling),
    })
}

/// config.json's `rope_scaling` for the scalings a GGUF can carry.
fn rope_scaling_json(scaling: RopeScaling) -> serde_json::Value {
    match scaling {
        RopeScaling::None => serde_json::Value::Null,
        RopeScaling::Linear { factor } => json!({"rope_type": "linear", "factor": factor}),
        RopeScaling::Llama3 { factor, low_freq_factor, high_freq_factor, original_context } => json!({
            "rope_type": "llama3", "factor": factor, "low_freq_factor": low_freq_factor,
            "high_freq_factor": high_freq_factor, "original_max_position_embeddings": original_context as u64,
        }),
        RopeScaling::Yarn { factor, original_context, beta_fast, beta_slow, attention_factor } => json!({
            "rope_type": "yarn", "factor": factor, "original_max_position_embeddings": original_context as u64,
            "beta_fast": beta_fast, "beta_slow": beta_slow, "attention_factor": attention_factor,
        }),
    }
}

/// A tensor as bf16 in Hugging Face layout (rows x cols, row-major).
fn dequantize(gguf_name: &str, entry: &TensorEntry, config: &ModelConfig) -> OutTensor {
    let cols = entry.dims[0] as usize;
    let rows = entry.dims.get(1).copied().unwrap_or(1) as usize;
    let matrix = QMatrix::new(entry.dtype, rows, cols, entry.bytes.as_slice()).expect("validated by the model loader");
    let mut row = vec![0f32; cols];
    let mut data = vec![0u8; rows * cols * 2];
    // llama GGUFs hold q/k rows pairwise-interleaved per head; HF wants rotate-half order
    let heads = match gguf_name.rsplit('.').nth(1) {
        Some("attn_q") if config.arch.name == "llama" => Some(config.n_heads),
        Some("attn_k") if config.arch.name == "llama" => Some(config.n_kv_heads),
        _ => None,
    };
    for r in 0..rows {
        matrix.dequantize_row(r, &mut row);
        let target = match heads {
            Some(_) => hf_row(r, config.head_dim),
            None => r,
        };
        for (c, v) in row.iter().enumerate() {
            data[(target * cols + c) * 2..][..2].copy_from_slice(&bf16::from_f32(*v).to_le_bytes());
        }
    }
    let shape = if entry.dims.len() == 1 { vec![cols] } else { vec![rows, cols] };
    OutTensor { dtype: safetensors::Dtype::BF16, shape, data }
}

/// Where GGUF row `r` of a llama q/k projection goes in Hugging Face order: within each head,
/// GGUF interleaves the two rotary halves (2i, 2i+1), HF keeps them apart (i, i + head_dim/2).
fn hf_row(r: usize, head_dim: usize) -> usize {
    let (head, within) = (r / head_dim, r % head_dim);
    let (i, j) = (within / 2, within % 2);
    head * head_dim + j * (head_dim / 2) + i
}

#[cfg(test)]
mod tests {
    use super::hf_row;

    #[test]
    fn rotary_rows_go_back_to_rotate_half_order() {
        // head_dim 4: GGUF rows (0,1,2,3) = (x0, y0, x1, y1) -> HF (x0, x1, y0, y1)
        assert_eq!((0..4).map(|r| hf_row(r, 4)).collect::<Vec<_>>(), vec![0, 2, 1, 3]);
        assert_eq!(hf_row(5, 4), 6, "the second head keeps its own rows");
        let mut seen: Vec<usize> = (0..64).map(|r| hf_row(r, 8)).collect();
        seen.sort();
        assert_eq!(seen, (0..64).collect::<Vec<_>>(), "a permutation");
    }
}
