//! Fuzz targets for the code that reads untrusted input (GGUF files, Hugging Face checkpoints,
//! chat inputs rendered by real templates, request bodies on every route, backend streams),
//! their generated seed corpus, and a small seeded mutator that runs them on stable in the test
//! suite. `fuzz/` holds the libFuzzer harnesses over the same targets (`scripts/fuzz.sh`).

pub mod mutate;
pub mod requests;
pub mod seeds;
pub mod targets;

pub use targets::Target;
