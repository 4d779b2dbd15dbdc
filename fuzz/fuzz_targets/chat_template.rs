//! libFuzzer harness: the `chat_template` target of hearth-fuzzing.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hearth_fuzzing::Target::ChatTemplate.run(data));
