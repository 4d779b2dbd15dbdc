//! Resident memory of the QWEN test model stays within 1.3x its GGUF file plus the KV cache.

mod support;

#[test]
fn resident_memory_within_budget() {
    support::check_resident_memory(hearth_testkit::QWEN);
}
