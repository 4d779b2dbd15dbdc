//! Fill-in-the-middle prompts on the real vocabularies: Qwen2.5-Coder's FIM and repository
//! tokens are found, the prompt is the model's format token for token, budgets trim the far
//! ends (prefix start, suffix end, oldest files), and a model without FIM tokens says which.

use hearth_model::GgufFile;
use hearth_testkit::{model_path, QWEN, SMOLLM};
use hearth_tokenizer::{fim_prompt, ContextFile, FimInput, Tokenizer};

fn tokenizer(name: &str) -> Tokenizer {
    Tokenizer::from_gguf(&GgufFile::open(model_path(name)).unwrap()).unwrap()
}

#[test]
fn qwen_prompts_are_the_models_format() {
    let qwen = tokenizer(QWEN);
    let fim = *qwen.fim();
    assert_eq!((fim.prefix, fim.suffix, fim.middle, fim.pad, fim.repo, fim.file_sep), (Some(151659), Some(151661), Some(151660), Some(151662), Some(151663), Some(151664)));
    let input = FimInput { prefix: "def add(a, b):\n    return ", suffix: "\n\nprint(add(1, 2))\n", ..Default::default() };
    let prompt = fim_prompt(&qwen, &input, 4096).unwrap();
    let expected = qwen.encode("<|fim_prefix|>def add(a, b):\n    return <|fim_suffix|>\n\nprint(add(1, 2))\n<|fim_middle|>").unwrap();
    assert_eq!(prompt.tokens, expected);
    assert!(!prompt.trimmed.any());

    let extra = [ContextFile { filename: "util.py".into(), text: "X = 1".into() }, ContextFile { filename: "b.py".into(), text: "Y = 2".into() }];
    let repo = FimInput { extra: &extra, filename: Some("main.py"), repo: Some("demo"), ..input.clone() };
    let prompt = fim_prompt(&qwen, &repo, 4096).unwrap();
    let expected = "<|repo_name|>demo\n<|file_sep|>util.py\nX = 1\n<|file_sep|>b.py\nY = 2\n<|file_sep|>main.py\n<|fim_prefix|>def add(a, b):\n    return <|fim_suffix|>\n\nprint(add(1, 2))\n<|fim_middle|>";
    assert_eq!(qwen.decode(&prompt.tokens), expected);
}

#[test]
fn budgets_trim_the_far_ends() {
    let qwen = tokenizer(QWEN);
    let prefix: String = (0..200).map(|i| format!("x{i} = {i}\n")).collect();
    let suffix: String = (0..200).map(|i| format!("y{i} = {i}\n")).collect();
    let (prefix_tokens, suffix_tokens) = (qwen.encode(&prefix).unwrap(), qwen.encode(&suffix).unwrap());
    let input = FimInput { prefix: &prefix, suffix: &suffix, ..Default::default() };
    let prompt = fim_prompt(&qwen, &input, 403).unwrap();
    assert_eq!(prompt.tokens.len(), 403);
    let room = 400;
    assert_eq!(prompt.trimmed.suffix, suffix_tokens.len() - room / 4, "the suffix keeps a quarter");
    assert_eq!(prompt.trimmed.prefix, prefix_tokens.len() - (room - room / 4));
    assert_eq!(prompt.tokens[1..301], prefix_tokens[prefix_tokens.len() - 300..], "the prefix keeps its end");
    assert_eq!(prompt.tokens[302..402], suffix_tokens[..100], "the suffix keeps its start");

    let extra: Vec<ContextFile> = (0..5).map(|i| ContextFile { filename: format!("f{i}.py"), text: "z = 0\n".repeat(10) }).collect();
    let short = FimInput { prefix: "a = ", suffix: "", extra: &extra, filename: Some("m.py"), repo: None };
    let whole = fim_prompt(&qwen, &short, 4096).unwrap();
    let tight = fim_prompt(&qwen, &short, whole.tokens.len() - 30).unwrap();
    assert!(tight.trimmed.extra_files >= 1 && tight.tokens.len() <= whole.tokens.len() - 30, "{:?}", tight.trimmed);
    let text = qwen.decode(&tight.tokens);
    assert!(text.contains("f4.py") && !text.contains("f0.py"), "the newest files stay: {text}");
}

#[test]
fn models_without_fim_tokens_say_which_are_missing() {
    let smollm = tokenizer(SMOLLM);
    let error = fim_prompt(&smollm, &FimInput { prefix: "a", suffix: "b", ..Default::default() }, 100).unwrap_err();
    assert!(error.to_string().contains("prefix, suffix, middle"), "{error}");
}
