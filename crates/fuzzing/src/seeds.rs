//! The seed corpus, generated in code so that it stays valid as the formats change: a tiny
//! llama model (hidden size 8, one layer, byte-level BPE, a chat template) as a GGUF file and
//! as a Hugging Face checkpoint, chat inputs with tools, request bodies for every POST route,
//! and one stream of each protocol the gateway and the benchmarks read.

use hearth_testkit::gguf_writer::{write_gguf, Meta, RawTensor};
use serde_json::{json, Value};

use crate::targets::{Target, ROUTES, STREAM_KINDS};

const HIDDEN: usize = 8;
const HEADS: usize = 2;
const KV_HEADS: usize = 1;
const FFN: usize = 16;
const CONTEXT: usize = 64;
const MERGES: [(&str, &str); 2] = [("h", "e"), ("l", "l")];
const SPECIALS: [&str; 2] = ["<|im_start|>", "<|im_end|>"];
const TEMPLATE: &str = "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}\
{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

/// One seed: the target it feeds, a file name, its bytes.
pub struct Seed {
    pub target: Target,
    pub name: String,
    pub bytes: Vec<u8>,
}

/// Every seed of every target.
pub fn all() -> Vec<Seed> {
    let mut seeds = vec![
        Seed { target: Target::Gguf, name: "tiny-llama".into(), bytes: tiny_gguf() },
        Seed { target: Target::HfCheckpoint, name: "tiny-llama-hf".into(), bytes: tiny_hf_checkpoint() },
    ];
    for (i, inputs) in chat_inputs().iter().enumerate() {
        seeds.push(Seed { target: Target::ChatTemplate, name: format!("chat-{i}.json"), bytes: inputs.to_string().into_bytes() });
    }
    for (i, (route, body)) in request_bodies().into_iter().enumerate() {
        let index = ROUTES.iter().position(|r| *r == route).expect("a known route") as u8;
        let bytes = [vec![index], body.to_string().into_bytes()].concat();
        seeds.push(Seed { target: Target::Requests, name: format!("request-{i:02}{}", route.replace('/', "-")), bytes });
    }
    for (kind, body) in streams() {
        let index = STREAM_KINDS.iter().position(|k| *k == kind).expect("a known stream kind") as u8;
        seeds.push(Seed { target: Target::Streams, name: format!("stream-{kind}"), bytes: [vec![index], body.into_bytes()].concat() });
    }
    seeds
}

/// GPT-2's byte-to-character table: each byte as the printable character byte-level BPE
/// vocabularies spell it with.
fn byte_level_chars() -> Vec<char> {
    let printable = |b: u32| (0x21..=0x7e).contains(&b) || (0xa1..=0xac).contains(&b) || (0xae..=0xff).contains(&b);
    let mut next = 256;
    (0..256u32)
        .map(|b| {
            if printable(b) {
                char::from_u32(b).expect("a Latin-1 character")
            } else {
                next += 1;
                char::from_u32(next - 1).expect("a Latin Extended character")
            }
        })
        .collect()
}

/// The vocabulary: the 256 byte tokens, the merges' results, then the special tokens.
fn vocabulary() -> Vec<String> {
    let mut tokens: Vec<String> = byte_level_chars().into_iter().map(String::from).collect();
    tokens.extend(MERGES.iter().map(|(a, b)| format!("{a}{b}")));
    tokens.extend(SPECIALS.iter().map(|s| s.to_string()));
    tokens
}

/// Small deterministic weights in [-0.5, 0.5) (xorshift, so the corpus is the same everywhere).
fn weights(count: usize, salt: u64) -> Vec<f32> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ salt.wrapping_mul(0x2545_f491_4f6c_dd1d);
    (0..count)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect()
}

/// Each tensor of the tiny model: its GGUF name and shape as (rows, columns).
fn tensor_shapes() -> Vec<(String, usize, usize)> {
    let vocab = vocabulary().len();
    let kv = KV_HEADS * HIDDEN / HEADS;
    let mut shapes = vec![("token_embd.weight".to_string(), vocab, HIDDEN), ("output_norm.weight".to_string(), 1, HIDDEN)];
    for (name, rows, cols) in [
        ("attn_norm", 1, HIDDEN),
        ("attn_q", HIDDEN, HIDDEN),
        ("attn_k", kv, HIDDEN),
        ("attn_v", kv, HIDDEN),
        ("attn_output", HIDDEN, HIDDEN),
        ("ffn_norm", 1, HIDDEN),
        ("ffn_gate", FFN, HIDDEN),
        ("ffn_up", FFN, HIDDEN),
        ("ffn_down", HIDDEN, FFN),
    ] {
        shapes.push((format!("blk.0.{name}.weight"), rows, cols));
    }
    shapes
}

fn tensor_values(index: usize, rows: usize, cols: usize, name: &str) -> Vec<f32> {
    if name.contains("norm") {
        return vec![1.0; rows * cols];
    }
    weights(rows * cols, index as u64)
}

/// The tiny model as a GGUF file (f32 tensors).
pub fn tiny_gguf() -> Vec<u8> {
    let vocab = vocabulary();
    let mut types = vec![1; vocab.len()];
    types[vocab.len() - SPECIALS.len()..].fill(3);
    let metadata = [
        ("general.architecture", Meta::Str("llama".into())),
        ("llama.embedding_length", Meta::U32(HIDDEN as u32)),
        ("llama.attention.head_count", Meta::U32(HEADS as u32)),
        ("llama.attention.head_count_kv", Meta::U32(KV_HEADS as u32)),
        ("llama.block_count", Meta::U32(1)),
        ("llama.feed_forward_length", Meta::U32(FFN as u32)),
        ("llama.context_length", Meta::U32(CONTEXT as u32)),
        ("llama.attention.layer_norm_rms_epsilon", Meta::F32(1e-5)),
        ("llama.rope.freq_base", Meta::F32(10000.0)),
        ("llama.vocab_size", Meta::U32(vocab.len() as u32)),
        ("tokenizer.ggml.model", Meta::Str("gpt2".into())),
        ("tokenizer.ggml.tokens", Meta::StrArray(vocab.clone())),
        ("tokenizer.ggml.token_type", Meta::I32Array(types)),
        ("tokenizer.ggml.merges", Meta::StrArray(MERGES.iter().map(|(a, b)| format!("{a} {b}")).collect())),
        ("tokenizer.ggml.eos_token_id", Meta::U32(vocab.len() as u32 - 1)),
        ("tokenizer.chat_template", Meta::Str(TEMPLATE.into())),
    ];
    let tensors: Vec<RawTensor> = tensor_shapes()
        .into_iter()
        .enumerate()
        .map(|(i, (name, rows, cols))| {
            let data = tensor_values(i, rows, cols, &name).iter().flat_map(|v| v.to_le_bytes()).collect();
            let dims = if rows == 1 { vec![cols as u64] } else { vec![cols as u64, rows as u64] };
            RawTensor { name, dims, type_id: 0, data }
        })
        .collect();
    write_gguf(&metadata, &tensors)
}

/// A Hugging Face checkpoint in one input: `config.json`'s length (u32, little-endian), its
/// text, then one safetensors file (bf16 projections, f32 embeddings and norms).
pub fn tiny_hf_checkpoint() -> Vec<u8> {
    let config = json!({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": HIDDEN,
        "num_attention_heads": HEADS, "num_key_value_heads": KV_HEADS, "num_hidden_layers": 1, "intermediate_size": FFN,
        "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "vocab_size": vocabulary().len(), "max_position_embeddings": CONTEXT,
        "tie_word_embeddings": true})
    .to_string();
    let mut tensors = Vec::new();
    for (i, (gguf, rows, cols)) in tensor_shapes().into_iter().enumerate() {
        let values = tensor_values(i, rows, cols, &gguf);
        let projection = gguf.contains("attn_") && !gguf.contains("norm");
        let (dtype, data): (safetensors::Dtype, Vec<u8>) = match projection {
            true => (safetensors::Dtype::BF16, values.iter().flat_map(|v| ((v.to_bits() >> 16) as u16).to_le_bytes()).collect()),
            false => (safetensors::Dtype::F32, values.iter().flat_map(|v| v.to_le_bytes()).collect()),
        };
        let shape = if rows == 1 { vec![cols] } else { vec![rows, cols] };
        let name = hearth_model::hf::hf_name(&gguf).expect("every tiny tensor has a Hugging Face name");
        tensors.push((name, dtype, shape, data));
    }
    let views: Vec<(String, safetensors::tensor::TensorView)> = tensors
        .iter()
        .map(|(name, dtype, shape, data)| (name.clone(), safetensors::tensor::TensorView::new(*dtype, shape.clone(), data).expect("consistent tensor")))
        .collect();
    let weights = safetensors::serialize(views, None).expect("serializable tensors");
    [(config.len() as u32).to_le_bytes().to_vec(), config.into_bytes(), weights].concat()
}

fn chat_inputs() -> Vec<Value> {
    let tool = json!({"type": "function", "function": {"name": "read_file", "description": "Read a file",
        "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}});
    vec![
        json!({"messages": [{"role": "user", "content": "Hi"}]}),
        json!({"messages": [{"role": "system", "content": "You write Python."}, {"role": "user", "content": "Open main.py"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "read_file", "arguments": "{\"path\": \"main.py\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "print('hi')"}, {"role": "user", "content": "Explain."}], "tools": [tool]}),
        json!({"messages": [{"role": "user", "content": [{"type": "text", "text": "part one"}, {"type": "text", "text": " part two"}]},
            {"role": "assistant", "content": "ok", "reasoning_content": "thinking"}]}),
    ]
}

fn request_bodies() -> Vec<(&'static str, Value)> {
    let user = json!([{"role": "user", "content": "Hi"}]);
    let tool = json!({"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}});
    let schema = json!({"type": "object", "properties": {"name": {"type": "string", "maxLength": 4}}, "required": ["name"]});
    vec![
        ("/v1/chat/completions", json!({"model": "smollm", "messages": user, "max_tokens": 4})),
        ("/v1/chat/completions", json!({"model": "smollm", "messages": user, "max_tokens": 4, "stream": true, "stream_options": {"include_usage": true}, "tools": [tool], "tool_choice": "auto"})),
        ("/v1/chat/completions", json!({"model": "smollm", "messages": user, "max_tokens": 12, "temperature": 0.7, "seed": 3, "stop": ["\n"], "logprobs": true, "top_logprobs": 2,
            "response_format": {"type": "json_schema", "json_schema": {"name": "n", "schema": schema}}})),
        ("/v1/completions", json!({"model": "smollm", "prompt": "def f(", "max_tokens": 4, "echo": true, "suffix": null})),
        ("/v1/completions", json!({"model": "smollm", "prompt": ["a", "b"], "max_tokens": 3, "n": 2, "stream": true, "logprobs": 1})),
        ("/v1/responses", json!({"model": "smollm", "input": "Hi", "max_output_tokens": 4})),
        ("/v1/responses", json!({"model": "smollm", "instructions": "Be brief.", "stream": true, "store": false, "max_output_tokens": 4, "tools": [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}],
            "input": [{"type": "message", "role": "user", "content": "Weather?"}, {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": "{}"}, {"type": "function_call_output", "call_id": "c1", "output": "sunny"}]})),
        ("/v1/messages", json!({"model": "smollm", "max_tokens": 4, "system": "Be brief.", "messages": user})),
        ("/v1/messages", json!({"model": "smollm", "max_tokens": 4, "stream": true, "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}],
            "messages": [{"role": "user", "content": "Weather?"}, {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "get_weather", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "sunny"}]}]})),
        ("/v1/messages/count_tokens", json!({"model": "smollm", "messages": user})),
        ("/tokenize", json!({"model": "smollm", "prompt": "hello"})),
        ("/detokenize", json!({"model": "smollm", "tokens": [1, 2, 3]})),
        ("/api/chat", json!({"model": "smollm", "messages": user, "options": {"num_predict": 4}})),
        ("/api/generate", json!({"model": "smollm", "prompt": "Hi", "stream": false, "options": {"num_predict": 4, "temperature": 0}})),
        ("/api/show", json!({"model": "smollm"})),
    ]
}

fn streams() -> Vec<(&'static str, String)> {
    let chunk = |delta: Value, finish: Value| json!({"id": "c", "object": "chat.completion.chunk", "model": "m", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
    let sse: String = [chunk(json!({"role": "assistant", "content": ""}), Value::Null), chunk(json!({"content": "Hi"}), Value::Null), chunk(json!({}), json!("stop"))]
        .iter()
        .map(|c| format!("data: {c}\n\n"))
        .chain([": keep-alive\n\n".to_string(), "data: [DONE]\n\n".to_string()])
        .collect();
    let ndjson = [json!({"model": "m", "message": {"role": "assistant", "content": "Hi"}, "done": false}),
        json!({"model": "m", "message": {"role": "assistant", "content": ""}, "done": true, "done_reason": "stop", "prompt_eval_count": 3, "eval_count": 1})]
    .iter()
    .map(|l| format!("{l}\n"))
    .collect();
    let typed = |events: &[Value]| events.iter().map(|e| hearth_protocol::sse::typed_frame(e["type"].as_str().unwrap_or(""), &e.to_string()).replace('\n', "\r\n")).collect::<String>();
    let responses = typed(&[json!({"type": "response.created", "sequence_number": 0, "response": {"model": "m", "usage": null}}),
        json!({"type": "response.output_text.delta", "sequence_number": 1, "delta": "Hi"}),
        json!({"type": "response.completed", "sequence_number": 2, "response": {"model": "m", "usage": {"input_tokens": 3, "output_tokens": 1}}})]);
    let messages = typed(&[json!({"type": "message_start", "message": {"model": "m", "usage": {"input_tokens": 3, "output_tokens": 0}}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}}),
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 1}}), json!({"type": "message_stop"})]);
    vec![("chat-sse", sse), ("ollama-ndjson", ndjson), ("responses-sse", responses), ("messages-sse", messages)]
}
