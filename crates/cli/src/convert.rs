//! `hearth convert`: a GGUF model as a Hugging Face directory in bf16.

use std::path::PathBuf;

use clap::Args;

#[derive(Args, Debug)]
pub struct ConvertArgs {
    /// The GGUF file to convert
    pub gguf: PathBuf,
    /// The directory to write (config.json, model.safetensors, tokenizer files)
    pub out: PathBuf,
}

pub fn run(args: ConvertArgs) -> anyhow::Result<()> {
    let n = hearth_engine::convert::gguf_to_hf_dir(&args.gguf, &args.out)?;
    println!("wrote {n} tensors (bf16) and the config and tokenizer files to {}", args.out.display());
    Ok(())
}
