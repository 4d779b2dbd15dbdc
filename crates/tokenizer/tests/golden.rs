//! Golden tests: tokenization and chat templates of both real models match the references.

use hearth_model::GgufFile;
use hearth_testkit::{chat_template_cases, model_path, tokenization_cases, QWEN, SMOLLM};
use hearth_tokenizer::{ChatInputs, ChatTemplate, IncrementalDecoder, Tokenizer};

fn load(name: &str) -> (Tokenizer, ChatTemplate) {
    let file = GgufFile::open(model_path(name)).unwrap();
    let tok = Tokenizer::from_gguf(&file).unwrap();
    let template = ChatTemplate::new(
        tok.chat_template().expect("model has a chat template"),
        tok.special_text(tok.bos_token()),
        tok.special_text(tok.eos_token()),
    )
    .unwrap();
    (tok, template)
}

#[test]
fn tokenization_matches_reference_and_round_trips() {
    for name in [SMOLLM, QWEN] {
        let (tok, _) = load(name);
        let cases: Vec<_> = tokenization_cases().into_iter().filter(|c| c.model == name).collect();
        assert!(!cases.is_empty());
        for case in cases {
            let ids = tok.encode(&case.text).unwrap();
            assert_eq!(ids, case.ids, "{name}: {:?}", case.text);
            assert_eq!(tok.decode(&ids), case.text, "{name} round trip");
            // streaming the same ids never yields a broken character and adds up to the text
            let mut dec = IncrementalDecoder::new();
            let mut streamed: String = ids.iter().map(|&id| dec.push(&tok, id)).collect();
            streamed.push_str(&dec.finish(&tok));
            assert_eq!(streamed, case.text, "{name} incremental");
        }
    }
}

#[test]
fn chat_templates_render_byte_identically() {
    let templates = [(SMOLLM, load(SMOLLM).1), (QWEN, load(QWEN).1)];
    let cases = chat_template_cases();
    assert!(cases.len() >= 10);
    for case in cases {
        let template = &templates.iter().find(|(n, _)| *n == case.model).expect("known model").1;
        let tools = if case.tools.is_null() { None } else { Some(&case.tools) };
        let out = template
            .render(&ChatInputs { messages: &case.messages, tools, add_generation_prompt: case.add_generation_prompt })
            .unwrap();
        assert_eq!(out, case.expected, "{} / {}", case.model, case.case);
    }
}

#[test]
fn end_of_generation_tokens_are_known() {
    let (qwen, _) = load(QWEN);
    let im_end = qwen.encode("<|im_end|>").unwrap();
    assert_eq!(im_end.len(), 1);
    assert!(qwen.end_of_generation().contains(&im_end[0]));
    let (smol, _) = load(SMOLLM);
    let im_end = smol.encode("<|im_end|>").unwrap();
    assert!(smol.end_of_generation().contains(&im_end[0]));
}

#[test]
fn tokenizer_json_directory_round_trips() {
    let (tok, _) = load(QWEN);
    let dir = std::env::temp_dir().join(format!("hearth-tokdir-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("tokenizer.json"), tok.to_json().unwrap()).unwrap();
    let config = serde_json::json!({
        "eos_token": "<|im_end|>",
        "chat_template": tok.chat_template().unwrap(),
    });
    std::fs::write(dir.join("tokenizer_config.json"), config.to_string()).unwrap();
    let from_dir = Tokenizer::from_dir(&dir).unwrap();
    for case in tokenization_cases().into_iter().filter(|c| c.model == QWEN) {
        assert_eq!(from_dir.encode(&case.text).unwrap(), case.ids, "{:?}", case.text);
    }
    assert_eq!(from_dir.chat_template(), tok.chat_template());
    assert!(from_dir.end_of_generation().contains(&from_dir.encode("<|im_end|>").unwrap()[0]));
    let missing = Tokenizer::from_dir(&dir.join("nope")).err().expect("no tokenizer.json there");
    assert!(missing.to_string().contains("tokenizer.json"), "{missing}");
    std::fs::remove_dir_all(&dir).unwrap();
}
