//! libFuzzer harness: the `streams` target of hearth-fuzzing.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hearth_fuzzing::Target::Streams.run(data));
