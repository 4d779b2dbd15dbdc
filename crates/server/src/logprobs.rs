//! Log-probabilities in OpenAI's two shapes (chat's list of tokens, completions' parallel lists).

use hearth_engine::Sampled;
use hearth_protocol::{ChatLogprobs, CompletionLogprobs, TokenLogprob, TopLogprob};
use hearth_tokenizer::Tokenizer;
use serde_json::{Map, Value};

fn token_text(tokenizer: &Tokenizer, id: u32) -> (String, Option<Vec<u8>>) {
    let bytes = tokenizer.token_bytes(id);
    let text = bytes.as_deref().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default();
    (text, bytes)
}

/// Chat logprobs for a run of sampled tokens.
pub fn chat(tokenizer: &Tokenizer, tokens: &[Sampled]) -> ChatLogprobs {
    let content = tokens
        .iter()
        .map(|s| {
            let (token, bytes) = token_text(tokenizer, s.token);
            let top_logprobs = s
                .top_logprobs
                .iter()
                .map(|&(id, logprob)| {
                    let (token, bytes) = token_text(tokenizer, id);
                    TopLogprob { token, logprob, bytes }
                })
                .collect();
            TokenLogprob { token, logprob: s.logprob.unwrap_or(0.0), bytes, top_logprobs }
        })
        .collect();
    ChatLogprobs { content }
}

/// Completions logprobs; `offset` is where the first token's text starts in the choice text.
pub fn completion(tokenizer: &Tokenizer, tokens: &[Sampled], mut offset: usize) -> CompletionLogprobs {
    let mut out = CompletionLogprobs::default();
    for s in tokens {
        let (token, _) = token_text(tokenizer, s.token);
        let top: Map<String, Value> = s
            .top_logprobs
            .iter()
            .map(|&(id, logprob)| (token_text(tokenizer, id).0, Value::from(logprob)))
            .collect();
        out.text_offset.push(offset);
        offset += token.len();
        out.tokens.push(token);
        out.token_logprobs.push(s.logprob);
        out.top_logprobs.push(Some(top));
    }
    out
}
