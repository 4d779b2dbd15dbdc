//! libFuzzer harness: the `hf_checkpoint` target of hearth-fuzzing.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hearth_fuzzing::Target::HfCheckpoint.run(data));
