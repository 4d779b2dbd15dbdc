//! The GGUF reader on good, corrupt and mutated files: clear errors, never a panic.

use hearth_model::{GgufErrorKind, GgufFile, MetaValue, Model, ModelError};
use hearth_testkit::gguf_writer::{sample_gguf, write_gguf, Meta, RawTensor};
use proptest::prelude::*;

#[test]
fn reads_metadata_and_tensors_in_place() {
    let file = GgufFile::from_bytes("sample.gguf", sample_gguf()).unwrap();
    assert_eq!(file.version, 3);
    assert_eq!(file.require_str("general.architecture").unwrap(), "llama");
    assert_eq!(file.meta("llama.block_count"), Some(&MetaValue::U32(1)));
    assert_eq!(file.require_array("tokenizer.ggml.tokens").unwrap().len(), 2);
    let w = file.tensor("w.weight").unwrap();
    assert_eq!(w.dims, vec![2, 3]);
    let bytes = file.tensor_bytes(w);
    assert_eq!(bytes.as_slice().len(), 24);
    assert_eq!(f32::from_le_bytes(bytes.as_slice()[..4].try_into().unwrap()), 0.5);
    let err = file.require_u64("general.architecture").unwrap_err();
    assert!(err.to_string().contains("should be an integer"), "{err}");
}

#[test]
fn truncated_file_is_reported_with_offset() {
    let bytes = sample_gguf();
    for cut in [3, 10, 30, bytes.len() - 12] {
        let err = GgufFile::from_bytes("cut.gguf", bytes[..cut].to_vec()).unwrap_err();
        assert!(matches!(err.kind, GgufErrorKind::Truncated(_) | GgufErrorKind::Invalid(_)), "cut {cut}: {err}");
        let msg = err.to_string();
        assert!(msg.starts_with("cut.gguf: at byte"), "{msg}");
        if cut == bytes.len() - 12 {
            assert!(msg.contains("truncated") && msg.contains("w.weight"), "{msg}");
        }
    }
}

#[test]
fn wrong_magic_is_named() {
    let mut bytes = sample_gguf();
    bytes[..4].copy_from_slice(b"GGML");
    let err = GgufFile::from_bytes("bad.gguf", bytes).unwrap_err();
    assert_eq!(err.kind, GgufErrorKind::BadMagic(u32::from_le_bytes(*b"GGML")));
    assert!(err.to_string().contains("not a GGUF file"), "{err}");
}

#[test]
fn unsupported_version_is_named() {
    let mut bytes = sample_gguf();
    bytes[4..8].copy_from_slice(&1u32.to_le_bytes());
    let err = GgufFile::from_bytes("old.gguf", bytes).unwrap_err();
    assert_eq!(err.kind, GgufErrorKind::UnsupportedVersion(1));
}

#[test]
fn unknown_tensor_type_names_tensor_and_id() {
    let bytes = write_gguf(&[], &[RawTensor { name: "odd.weight".into(), dims: vec![8], type_id: 99, data: vec![0; 32] }]);
    let err = GgufFile::from_bytes("odd.gguf", bytes).unwrap_err();
    assert_eq!(err.kind, GgufErrorKind::UnknownTensorType { tensor: "odd.weight".into(), type_id: 99 });
    assert!(err.to_string().contains("unknown tensor type id 99"), "{err}");
}

#[test]
fn real_model_truncated_on_disk_gives_file_error() {
    let source = hearth_testkit::model_path(hearth_testkit::SMOLLM);
    let dir = std::env::temp_dir().join(format!("hearth-trunc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("truncated.gguf");
    let bytes = std::fs::read(&source).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = Model::load(&path).err().expect("must fail");
    let msg = err.to_string();
    assert!(msg.contains("truncated.gguf") && msg.contains("truncated"), "{msg}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn model_without_weights_names_missing_tensor() {
    let bytes = write_gguf(
        &[
            ("general.architecture", Meta::Str("llama".into())),
            ("llama.embedding_length", Meta::U32(8)),
            ("llama.attention.head_count", Meta::U32(2)),
            ("llama.block_count", Meta::U32(1)),
            ("llama.feed_forward_length", Meta::U32(16)),
            ("llama.context_length", Meta::U32(32)),
            ("llama.attention.layer_norm_rms_epsilon", Meta::F32(1e-5)),
            ("llama.vocab_size", Meta::U32(4)),
        ],
        &[],
    );
    let file = std::sync::Arc::new(GgufFile::from_bytes("empty.gguf", bytes).unwrap());
    match Model::from_gguf(file) {
        Err(ModelError::MissingTensor { name, .. }) => assert_eq!(name, "blk.0.attn_norm.weight"),
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("a model without tensors loaded"),
    }
}

#[test]
fn unsupported_architecture_is_named() {
    let bytes = write_gguf(&[("general.architecture", Meta::Str("mamba".into()))], &[]);
    let file = std::sync::Arc::new(GgufFile::from_bytes("m.gguf", bytes).unwrap());
    let err = Model::from_gguf(file).err().unwrap();
    assert!(err.to_string().contains("unsupported architecture `mamba` (supported: llama, qwen2, qwen3, qwen3moe)"), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Random byte flips and truncations of a valid file: parse succeeds or errors, no panic.
    #[test]
    fn mutated_headers_never_panic(flips in prop::collection::vec((0usize..400, any::<u8>()), 1..6), cut in 0usize..420) {
        let mut bytes = sample_gguf();
        for (pos, val) in flips {
            if pos < bytes.len() {
                bytes[pos] = val;
            }
        }
        bytes.truncate(cut.max(1).min(bytes.len()));
        let _ = GgufFile::from_bytes("fuzz.gguf", bytes);
    }
}
