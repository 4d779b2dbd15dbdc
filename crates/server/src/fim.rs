//! Fill-in-the-middle for every front door (`/v1/completions` with `suffix`, `/infill`,
//! `/v1/fim/completions`, Ollama's `suffix`): the model's FIM prompt within the context left
//! after the answer's room, and the stops FIM generation needs (the model's FIM tokens).

use hearth_tokenizer::{fim_prompt, FimError, FimInput, FimPrompt};

use hearth_protocol::SamplingFields;

use crate::error::ApiError;
use crate::state::ServedModel;

/// Room kept for the answer when the request sets no limit (a completion is short; the
/// prompt gets the rest of the context).
const DEFAULT_ANSWER_ROOM: usize = 256;

/// The FIM prompt of `input`, trimmed at its far ends to leave the answer its room
/// (`max_tokens`, at most half the context). `param` names the field a refusal points at.
pub fn prompt(model: &ServedModel, input: &FimInput<'_>, max_tokens: Option<u32>, param: &str) -> Result<FimPrompt, ApiError> {
    let context = model.max_model_len();
    let answer_room = max_tokens.map_or(DEFAULT_ANSWER_ROOM, |n| n as usize).min(context / 2);
    let prompt = fim_prompt(model.tokenizer(), input, context - answer_room).map_err(|e| match e {
        FimError::Unsupported(why) => {
            ApiError::bad_request(format!("This model cannot fill in the middle: {why} (a code model such as Qwen2.5-Coder can)"), Some(param))
        }
        FimError::NoRoom { .. } => ApiError::bad_request(e.to_string(), Some("max_tokens")),
        FimError::Tokenizer(e) => ApiError::internal(e.to_string()),
    })?;
    if prompt.trimmed.any() {
        let t = prompt.trimmed;
        tracing::info!(
            prefix_tokens = t.prefix,
            suffix_tokens = t.suffix,
            context_files = t.extra_files,
            "FIM prompt trimmed to fit the context: the prefix's start, the suffix's end and the oldest context files go first"
        );
    }
    Ok(prompt)
}

/// Generation ends at any FIM token too (a model may go on to a next file or a new hole),
/// besides the stop ids the client gave.
pub fn add_stops(fields: &mut SamplingFields, model: &ServedModel) {
    fields.stop_token_ids.get_or_insert_with(Vec::new).extend(model.tokenizer().fim().all());
}
