//! Qwen3's and Qwen3-Coder's chat templates (fetched by scripts/fetch-models.sh from the pinned
//! llama-cpp-python sdist, sha256-checked) render byte for byte as the reference renderer
//! renders them (Jinja2 as transformers sets it up; scripts/dev/render-template-goldens.py):
//! tools, tool calls and results, earlier reasoning, thinking on and off.

use hearth_tokenizer::{ChatInputs, ChatTemplate};
use serde_json::Value;

#[test]
fn qwen3_templates_render_as_the_reference_renders_them() {
    let path = format!("{}/tests/golden/qwen3_templates.json", env!("CARGO_MANIFEST_DIR"));
    let cases: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(cases.len(), 16);
    for case in &cases {
        let file = hearth_testkit::models_dir().join("templates").join(case["template"].as_str().unwrap());
        let source = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e} (scripts/fetch-models.sh templates)", file.display()));
        let template = ChatTemplate::new(&source, String::new(), "<|im_end|>".into()).unwrap();
        let tools = case["tools"].as_array().map(|_| &case["tools"]);
        let inputs = ChatInputs { messages: &case["messages"], tools, add_generation_prompt: true };
        let rendered = template.render_with(&inputs, case["kwargs"].as_object().unwrap()).unwrap();
        assert_eq!(rendered, case["expected"].as_str().unwrap(), "{} / {}", case["model"], case["case"]);
    }
}
