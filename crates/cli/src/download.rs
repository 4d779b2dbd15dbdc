//! Model download into the Hugging Face cache (`hf-hub`): `hearth download ORG/NAME`, and
//! `hearth serve ORG/NAME` for a model not yet in the cache (unless `HF_HUB_OFFLINE` is set).
//! Files land where `huggingface_hub` puts them (`HF_HOME`, `HF_ENDPOINT` and a saved token
//! are honoured), so both tools share one cache.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use hf_hub::api::sync::ApiBuilder;

#[derive(Args, Debug)]
pub struct DownloadArgs {
    /// The model repository, e.g. Qwen/Qwen2.5-Coder-7B-Instruct-AWQ
    pub repo: String,
    /// Revision (branch, tag or commit)
    #[arg(long, default_value = "main")]
    pub revision: String,
}

pub fn run(args: DownloadArgs) -> anyhow::Result<()> {
    let dir = download_model(&args.repo, &args.revision)?;
    println!("{}", dir.display());
    Ok(())
}

/// Whether `HF_HUB_OFFLINE` forbids network access (as `huggingface_hub` reads it).
pub fn offline() -> bool {
    std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"))
}

/// The files a model directory needs: config, weights, tokenizer, chat template, defaults.
fn wanted(file: &str) -> bool {
    !file.contains('/')
        && (file.ends_with(".safetensors")
            || matches!(
                file,
                "config.json"
                    | "model.safetensors.index.json"
                    | "generation_config.json"
                    | "tokenizer.json"
                    | "tokenizer_config.json"
                    | "special_tokens_map.json"
                    | "chat_template.jinja"
                    | "chat_template.json"
            ))
}

/// Downloads the model directory files of `repo` at `revision` (skipping those already
/// cached) with a progress bar per file; returns the snapshot folder.
pub fn download_model(repo: &str, revision: &str) -> anyhow::Result<PathBuf> {
    if offline() {
        bail!("`{repo}` is not in the Hugging Face cache and HF_HUB_OFFLINE is set");
    }
    let api = ApiBuilder::from_env().with_progress(true).build().context("cannot set up the Hugging Face hub client")?;
    let remote = api.repo(hf_hub::Repo::with_revision(repo.to_string(), hf_hub::RepoType::Model, revision.to_string()));
    let info = remote.info().with_context(|| format!("cannot list `{repo}` on the Hugging Face hub"))?;
    let files: Vec<&str> = info.siblings.iter().map(|s| s.rfilename.as_str()).filter(|f| wanted(f)).collect();
    if !files.contains(&"config.json") || !files.iter().any(|f| f.ends_with(".safetensors")) {
        bail!("`{repo}` has no config.json with safetensors weights; hearth serves such directories or a GGUF file");
    }
    let mut snapshot = None;
    for file in files {
        let path = remote.get(file).with_context(|| format!("cannot download `{file}` of `{repo}`"))?;
        snapshot = path.parent().map(PathBuf::from);
    }
    snapshot.context("nothing was downloaded")
}

#[cfg(test)]
mod tests {
    use super::wanted;

    #[test]
    fn only_the_files_a_model_directory_needs() {
        for yes in ["config.json", "model-00001-of-00002.safetensors", "model.safetensors.index.json", "tokenizer.json", "chat_template.jinja"] {
            assert!(wanted(yes), "{yes}");
        }
        for no in ["README.md", "pytorch_model.bin", "onnx/model.onnx", "original/consolidated.safetensors", ".gitattributes"] {
            assert!(!wanted(no), "{no}");
        }
    }
}
