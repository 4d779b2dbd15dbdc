//! Writes the architecture test bench's tiny models into a folder (for recording their golden
//! logits with llama.cpp: scripts/dev/record-tiny-goldens.sh), one line per file with its
//! golden token ids. `--moe-bench LAYERS FILE` writes instead a Qwen3-30B-A3B-shaped model with
//! LAYERS layers in Q4_K, for side-by-side speed runs.

use hearth_testkit::tiny_models::{golden_tokens, tiny_gguf, TinyType, TINY_SEED};

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, layers, file] = args.as_slice() {
        assert_eq!(flag, "--moe-bench", "usage: write_tiny_models DIR | --moe-bench LAYERS FILE");
        let shape = hearth_testkit::tiny_models::qwen3_30b_a3b_shaped(layers.parse().expect("a layer count"));
        return std::fs::write(file, tiny_gguf(&shape, TinyType::Q4K, TINY_SEED));
    }
    let dir = std::path::PathBuf::from(args.first().expect("usage: write_tiny_models DIR | --moe-bench LAYERS FILE"));
    std::fs::create_dir_all(&dir)?;
    for (name, shape) in hearth_testkit::tiny_models::bench() {
        for ty in [TinyType::F32, TinyType::Q8_0, TinyType::Q4K] {
            let path = dir.join(format!("{name}-{}.gguf", ty.name()));
            std::fs::write(&path, tiny_gguf(&shape, ty, TINY_SEED))?;
            let tokens: Vec<String> = golden_tokens(shape.vocab).iter().map(u32::to_string).collect();
            println!("{} {}", path.display(), tokens.join(","));
        }
    }
    Ok(())
}
