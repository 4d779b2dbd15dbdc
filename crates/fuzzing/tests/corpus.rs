//! The fuzz targets on stable, in every test run: the committed seeds match the generator, the
//! tiny models load and run, every request seed gets a 2xx (so mutants start deep), every seed
//! and regression input passes, and a seeded mutation run of each target finds nothing.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hearth_engine::ModelBundle;
use hearth_fuzzing::mutate::Mutator;
use hearth_fuzzing::targets::ROUTES;
use hearth_fuzzing::{requests, seeds, Target};
use hearth_model::{GgufFile, LogitsWanted, Model, SeqSpan};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect()).unwrap_or_default();
    files.retain(|p| p.file_name().is_some_and(|n| n != "README.md"));
    files.sort();
    files
}

#[test]
fn committed_seeds_match_the_generator() {
    let write = std::env::var_os("HEARTH_WRITE_SEEDS").is_some();
    let generated = seeds::all();
    for seed in &generated {
        let path = fuzz_dir().join("seeds").join(seed.target.name()).join(&seed.name);
        if write {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &seed.bytes).unwrap();
        }
        let committed = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}; `HEARTH_WRITE_SEEDS=1 cargo test -p hearth-fuzzing` writes the seeds", path.display()));
        assert!(committed == seed.bytes, "{} differs from the generator; `HEARTH_WRITE_SEEDS=1 cargo test -p hearth-fuzzing` rewrites it", path.display());
    }
    for target in Target::ALL {
        for file in files_in(&fuzz_dir().join("seeds").join(target.name())) {
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            assert!(generated.iter().any(|s| s.target == target && s.name == name), "{}: a seed the generator no longer makes", file.display());
        }
    }
}

fn logits_of(model: &Model, tokens: &[u32]) -> Vec<f32> {
    let mut cache = model.new_cache();
    let logits = model.forward(&mut [SeqSpan { tokens, cache: &mut cache, logits: LogitsWanted::Last }]).unwrap();
    logits.into_iter().next().unwrap()
}

#[test]
fn the_tiny_models_load_and_run() {
    let file = GgufFile::from_bytes("tiny.gguf", seeds::tiny_gguf()).unwrap();
    let bundle = ModelBundle::from_gguf(Arc::new(file)).unwrap();
    let template = bundle.template.as_ref().expect("the tiny model has a template");
    let inputs = hearth_tokenizer::ChatInputs::<_, ()> { messages: &serde_json::json!([{"role": "user", "content": "hello"}]), tools: None, add_generation_prompt: true };
    let prompt = template.render(&inputs).unwrap();
    let tokens = bundle.tokenizer.encode(&prompt).unwrap();
    assert_eq!(bundle.tokenizer.decode(&tokens), prompt, "byte-level BPE round-trips");
    assert!(tokens.contains(&(bundle.model.config().vocab_size as u32 - 1)), "<|im_end|> is one special token: {tokens:?}");
    let gguf_logits = logits_of(&bundle.model, &tokens);
    assert_eq!(gguf_logits.len(), bundle.model.config().vocab_size);
    assert!(gguf_logits.iter().all(|l| l.is_finite()));

    let hf = seeds::tiny_hf_checkpoint();
    let length = u32::from_le_bytes(hf[..4].try_into().unwrap()) as usize;
    let config = std::str::from_utf8(&hf[4..4 + length]).unwrap();
    let (config, int4) = hearth_model::hf::parse_config(Path::new("config.json"), config).unwrap();
    let table = hearth_model::hf::tensors_from_bytes(Path::new("model.safetensors"), hf[4 + length..].to_vec()).unwrap();
    let model = Model::from_table(config, &table.with_int4(int4), None).unwrap();
    // the same numbers, but a checkpoint's rotary layout differs from GGUF's (llama.cpp permutes
    // q and k on conversion), so only the shape and finiteness are compared
    let hf_logits = logits_of(&model, &tokens);
    assert_eq!(hf_logits.len(), gguf_logits.len());
    assert!(hf_logits.iter().all(|l| l.is_finite()));
}

#[test]
fn every_request_seed_gets_a_success() {
    for seed in seeds::all().into_iter().filter(|s| s.target == Target::Requests) {
        let route = ROUTES[seed.bytes[0] as usize % ROUTES.len()];
        let answer = requests::send(route, &seed.bytes[1..]);
        assert!((200..300).contains(&answer.status), "{}: {route} answered {}: {}", seed.name, answer.status, answer.body);
    }
}

#[test]
fn seeds_and_regressions_pass() {
    for target in Target::ALL {
        for folder in ["seeds", "regressions"] {
            for file in files_in(&fuzz_dir().join(folder).join(target.name())) {
                let bytes = std::fs::read(&file).unwrap();
                if catch_unwind(AssertUnwindSafe(|| target.run(&bytes))).is_err() {
                    panic!("{}: the {} target fails on it", file.display(), target.name());
                }
            }
        }
    }
}

/// Runs `runs` seeded mutants of the target's seeds; a failing input is saved under
/// target/fuzz-findings for `cargo fuzz run <target> <file>` or a regression test.
fn mutants_find_nothing(target: Target, runs: usize) {
    let target_seeds: Vec<Vec<u8>> = seeds::all().into_iter().filter(|s| s.target == target).map(|s| s.bytes).collect();
    let mut mutator = Mutator::new(target_seeds, 0x5eed ^ target as u64);
    let findings = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/fuzz-findings");
    let mut failed = Vec::new();
    for run in 0..runs {
        let input = mutator.next_input();
        if catch_unwind(AssertUnwindSafe(|| target.run(&input))).is_err() {
            let path = findings.join(format!("{}-{run}", target.name()));
            let _ = std::fs::create_dir_all(&findings);
            let _ = std::fs::write(&path, &input);
            failed.push(path.display().to_string());
        }
    }
    assert!(failed.is_empty(), "the {} target failed on {} of {runs} mutants, saved as {failed:?}", target.name(), failed.len());
}

#[test]
fn gguf_mutants_find_nothing() {
    mutants_find_nothing(Target::Gguf, 3000);
}

#[test]
fn hf_checkpoint_mutants_find_nothing() {
    mutants_find_nothing(Target::HfCheckpoint, 3000);
}

#[test]
fn chat_template_mutants_find_nothing() {
    mutants_find_nothing(Target::ChatTemplate, 2000);
}

#[test]
fn stream_mutants_find_nothing() {
    mutants_find_nothing(Target::Streams, 5000);
}

#[test]
fn request_mutants_find_nothing_and_many_are_served() {
    mutants_find_nothing(Target::Requests, 300);
    // the same mutants again, counted: enough of them pass validation to reach the engine
    let target_seeds: Vec<Vec<u8>> = seeds::all().into_iter().filter(|s| s.target == Target::Requests).map(|s| s.bytes).collect();
    let mut mutator = Mutator::new(target_seeds, 0x5eed ^ Target::Requests as u64);
    let statuses: Vec<u16> = (0..300).filter_map(|_| requests::judge_with_status(&mutator.next_input()).0).collect();
    let served = statuses.iter().filter(|s| (200..300).contains(*s)).count();
    eprintln!("request mutants: {served} of {} answered with a 2xx", statuses.len());
    assert!(served >= statuses.len() / 10, "only {served} of {} mutants were served: the seeds do not lead deep", statuses.len());
}
