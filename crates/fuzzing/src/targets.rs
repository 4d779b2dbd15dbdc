//! The fuzz targets: each takes any bytes and drives the code `hearth` runs on untrusted input
//! (model files, chat inputs, request bodies, backend streams). A target returns normally for
//! every input the code rejects with an error; a panic, an abort or a hang is a finding.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use hearth_engine::ModelBundle;
use hearth_gateway::config::ProviderKind;
use hearth_gateway::ollama::StreamTranslator;
use hearth_gateway::relay::{rewrite_openai_event, RelayContext};
use hearth_gateway::typed_events::relay_event;
use hearth_gateway::upstream::Endpoint;
use hearth_gateway::usage::UsageSink;
use hearth_model::{GgufFile, LogitsWanted, Model, SeqSpan};
use hearth_protocol::sse::EventSplitter;
use hearth_tokenizer::{ChatInputs, ChatTemplate, Tokenizer};
use serde_json::Value;

/// The targets, named as `cargo fuzz` and the seed folders name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Gguf,
    HfCheckpoint,
    ChatTemplate,
    Requests,
    Streams,
}

impl Target {
    pub const ALL: [Target; 5] = [Target::Gguf, Target::HfCheckpoint, Target::ChatTemplate, Target::Requests, Target::Streams];

    pub fn name(self) -> &'static str {
        match self {
            Target::Gguf => "gguf",
            Target::HfCheckpoint => "hf_checkpoint",
            Target::ChatTemplate => "chat_template",
            Target::Requests => "requests",
            Target::Streams => "streams",
        }
    }

    /// Runs the target on one input.
    pub fn run(self, data: &[u8]) {
        match self {
            Target::Gguf => gguf(data),
            Target::HfCheckpoint => hf_checkpoint(data),
            Target::ChatTemplate => chat_template(data),
            Target::Requests => crate::requests::requests(data),
            Target::Streams => streams(data),
        }
    }
}

/// The POST routes the `requests` target sends to; an input's first byte picks one.
pub const ROUTES: [&str; 10] = [
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/responses",
    "/v1/messages",
    "/v1/messages/count_tokens",
    "/tokenize",
    "/detokenize",
    "/api/chat",
    "/api/generate",
    "/api/show",
];

/// The stream kinds the `streams` target reads; an input's first byte picks one.
pub const STREAM_KINDS: [&str; 4] = ["chat-sse", "ollama-ndjson", "responses-sse", "messages-sse"];

/// A GGUF file through `ModelBundle::from_gguf`, the path `hearth serve` takes; a file that
/// loads is then tokenized, rendered and run for one forward pass.
pub fn gguf(data: &[u8]) {
    let Ok(file) = GgufFile::from_bytes("fuzz.gguf", data.to_vec()) else { return };
    let Ok(bundle) = ModelBundle::from_gguf(Arc::new(file)) else { return };
    let prompt = match &bundle.template {
        Some(template) => render(template, &serde_json::json!([{"role": "user", "content": "hello <|im_end|> ünï"}])).unwrap_or_default(),
        None => "hello".to_string(),
    };
    let tokens = bundle.tokenizer.encode(&prompt).unwrap_or_default();
    let _ = bundle.tokenizer.decode(&tokens);
    run_once(&bundle.model, &tokens);
}

/// A Hugging Face checkpoint in one input: `config.json`'s length (u32, little-endian), its
/// text, then a safetensors file; read and built as `Model::load_dir` does, then run once.
pub fn hf_checkpoint(data: &[u8]) {
    let Some((length, rest)) = data.split_first_chunk::<4>() else { return };
    let length = (u32::from_le_bytes(*length) as usize).min(rest.len());
    let (config, weights) = rest.split_at(length);
    let Ok(config) = std::str::from_utf8(config) else { return };
    let Ok((config, int4)) = hearth_model::hf::parse_config(Path::new("config.json"), config) else { return };
    let Ok(table) = hearth_model::hf::tensors_from_bytes(Path::new("model.safetensors"), weights.to_vec()) else { return };
    let Ok(model) = Model::from_table(config, &table.with_int4(int4), None) else { return };
    run_once(&model, &[0, 1, 2]);
}

/// One forward pass over up to 3 of `tokens` (those inside the vocabulary), with logits.
fn run_once(model: &Model, tokens: &[u32]) {
    let vocab = model.config().vocab_size as u32;
    let mut tokens: Vec<u32> = tokens.iter().copied().filter(|&t| t < vocab).take(3).collect();
    if tokens.is_empty() && vocab > 0 {
        tokens.push(0);
    }
    if tokens.is_empty() {
        return;
    }
    let mut cache = model.new_cache();
    let _ = model.forward(&mut [SeqSpan { tokens: &tokens, cache: &mut cache, logits: LogitsWanted::All }]);
}

/// The chat templates of the test models (SmolLM2's and Qwen2.5-Coder's), read once from
/// their GGUF files.
fn test_templates() -> &'static [ChatTemplate] {
    static TEMPLATES: OnceLock<Vec<ChatTemplate>> = OnceLock::new();
    TEMPLATES.get_or_init(|| {
        [hearth_testkit::SMOLLM, hearth_testkit::QWEN]
            .iter()
            .map(|name| {
                let path = hearth_testkit::model_path(name);
                let file = GgufFile::open(&path).unwrap_or_else(|e| panic!("the chat_template target needs the test models (scripts/fetch-models.sh): {e}"));
                let tokenizer = Tokenizer::from_gguf(&file).expect("the test model's tokenizer");
                let source = tokenizer.chat_template().expect("the test model's template");
                let special = |id| tokenizer.special_text(id);
                ChatTemplate::new(source, special(tokenizer.bos_token()), special(tokenizer.eos_token())).expect("the test model's template compiles")
            })
            .collect()
    })
}

fn render(template: &ChatTemplate, messages: &Value) -> Option<String> {
    template.render(&ChatInputs::<_, Value> { messages, tools: None, add_generation_prompt: true }).ok()
}

/// Any JSON as `messages` and `tools`, rendered by each test model's template, with and
/// without the generation prompt.
pub fn chat_template(data: &[u8]) {
    let Ok(inputs) = serde_json::from_slice::<Value>(data) else { return };
    let messages = inputs.get("messages").unwrap_or(&inputs);
    let tools = inputs.get("tools");
    for template in test_templates() {
        for add_generation_prompt in [false, true] {
            let _ = template.render(&ChatInputs { messages, tools, add_generation_prompt });
        }
    }
}

/// A body through the SSE or NDJSON splitter, whole and cut into pieces (the events must be
/// the same), then through the gateway's relay of that protocol (every payload it passes on
/// must be JSON).
pub fn streams(data: &[u8]) {
    let Some((&kind, body)) = data.split_first() else { return };
    let kind = STREAM_KINDS[kind as usize % STREAM_KINDS.len()];
    let splitter = || if kind == "ollama-ndjson" { EventSplitter::ndjson() } else { EventSplitter::sse() };
    let whole = splitter().push(body);
    let mut pieces = splitter();
    let mut in_pieces = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        // piece lengths taken from the body itself, 1 to 8 bytes
        let cut = (usize::from(rest[0] % 8) + 1).min(rest.len());
        in_pieces.extend(pieces.push(&rest[..cut]));
        rest = &rest[cut..];
    }
    assert_eq!(whole, in_pieces, "the events of a body depend on how it was cut");
    for payload in relayed(kind, &whole) {
        assert!(payload == "[DONE]" || serde_json::from_str::<Value>(&payload).is_ok(), "the relay passed on a payload that is not JSON: {payload:?}");
    }
}

/// The payloads the gateway's relay makes of these events, until the first one it refuses.
fn relayed(kind: &str, events: &[String]) -> Vec<String> {
    let ctx = RelayContext {
        endpoint: Endpoint::Chat,
        public_model: "public".into(),
        backend: "fuzz".into(),
        kind: ProviderKind::Openai,
        attempts: 1,
        include_usage: true,
        usage: UsageSink::none(),
    };
    let mut translator = StreamTranslator::new(Endpoint::Chat, "chatcmpl-fuzz".into(), 0, "public".into(), true);
    let mut usage = Value::Null;
    let mut out = Vec::new();
    for event in events {
        let payloads = match kind {
            "chat-sse" => rewrite_openai_event(event, &ctx, &mut usage).map(|p| p.into_iter().collect()),
            "ollama-ndjson" => translator.on_line(event),
            _ => relay_event(event, "public", &mut usage).map(|relayed| typed_payloads(&relayed.frame)),
        };
        match payloads {
            Ok(payloads) => out.extend(payloads),
            Err(_) => break,
        }
    }
    out
}

/// The `data` of a typed frame the relay wrote, read back with the splitter.
fn typed_payloads(frame: &str) -> Vec<String> {
    EventSplitter::sse().push(frame.as_bytes())
}
