//! Writes the architecture test bench's tiny models into a folder (for recording their golden
//! logits with llama.cpp: scripts/dev/record-tiny-goldens.sh), one line per file with its
//! golden token ids. `--moe-bench LAYERS FILE [q4_k|q8_0]` writes instead a Qwen3-30B-A3B-shaped
//! model with LAYERS layers (Q4_K by default; Q8_0 to requantize with llama-quantize to Q4_K_M's
//! mix), for side-by-side speed runs.

use hearth_testkit::tiny_models::{golden_tokens, tiny_gguf, TinyType, TINY_SEED};

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--moe-bench") {
        let usage = "usage: write_tiny_models DIR | --moe-bench LAYERS FILE [q4_k|q8_0]";
        let (layers, file) = (args.get(1).expect(usage), args.get(2).expect(usage));
        let ty = match args.get(3).map(String::as_str) {
            None | Some("q4_k") => TinyType::Q4K,
            Some("q8_0") => TinyType::Q8_0,
            Some(other) => panic!("{usage} (not {other})"),
        };
        let shape = hearth_testkit::tiny_models::qwen3_30b_a3b_shaped(layers.parse().expect("a layer count"));
        return std::fs::write(file, tiny_gguf(&shape, ty, TINY_SEED));
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
