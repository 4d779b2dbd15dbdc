//! The one conversation every front door converts its request into (chat messages, offered
//! tools, tool choice), and the pipeline run once for all of them: chat template, sampling
//! plan, grammars, admission and submission to the engine.

use hearth_protocol::{ChatMessageIn, SamplingFields};
use hearth_tools::{read_reply, CallFormat, ParsedReply, ReplyFormat, ThinkingStart};
use serde_json::{Map, Value};

use crate::chat::render_chat;
use crate::error::ApiError;
use crate::generation::{self, Submitted};
use crate::params::{self, GenerationPlan};
use crate::state::{AppState, ServedModel};
use crate::structured::{self, CallSyntax};
use crate::tool_plan::ToolPlan;

/// A request in the pipeline's terms.
pub struct Conversation {
    pub messages: Vec<ChatMessageIn>,
    pub tools: ToolPlan,
    /// The offered tools in Chat Completions' shape, for the chat template.
    openai_tools: Option<Vec<Value>>,
    /// Extra chat-template variables (`enable_thinking`, `reasoning_effort`...).
    template_kwargs: Map<String, Value>,
}

/// What a front door asks the engine for, in Chat Completions' terms.
#[derive(Default)]
pub struct Ask<'a> {
    pub fields: SamplingFields,
    pub max_tokens: Option<u32>,
    /// Alternatives per token (None: no logprobs).
    pub logprobs: Option<usize>,
    /// A `response_format` (`json_object`, `json_schema`).
    pub format: Option<&'a Value>,
}

/// A request on the engine, with what its answer needs to be shaped.
pub struct Started {
    pub submitted: Submitted,
    pub plan: GenerationPlan,
    pub prompt_tokens: u64,
    /// How the reply is read: reasoning split off, calls parsed out (in the model's syntax).
    pub reply: ReplyFormat,
    /// At most one call per reply.
    pub single_call: bool,
}

impl Conversation {
    /// `tools` in Chat Completions' shape; `choice` and `parallel` as its request has them.
    pub fn new(messages: Vec<ChatMessageIn>, tools: Option<Vec<Value>>, choice: Option<&Value>, parallel: Option<bool>) -> Result<Self, ApiError> {
        let plan = ToolPlan::from_request(tools.as_ref(), choice, parallel)?;
        Ok(Conversation { messages, tools: plan, openai_tools: tools, template_kwargs: Map::new() })
    }

    /// Sets template variables; a variable set twice keeps its first value (what the client
    /// named explicitly comes first).
    pub fn with_template_kwargs(mut self, kwargs: impl IntoIterator<Item = (String, Value)>) -> Self {
        for (name, value) in kwargs {
            self.template_kwargs.entry(name).or_insert(value);
        }
        self
    }

    /// The tools the chat template shows the model.
    pub fn template_tools(&self) -> Option<&Vec<Value>> {
        self.tools.template_tools(self.openai_tools.as_ref())
    }

    /// The prompt: the template rendered with a generation prompt, tokenized.
    pub fn render(&self, model: &ServedModel) -> Result<Vec<u32>, ApiError> {
        render_chat(model, &self.messages, self.template_tools(), true, &self.template_kwargs)
    }

    /// Renders the prompt and starts the generation.
    pub fn start(&self, state: &AppState, model: &ServedModel, ask: Ask<'_>) -> Result<Started, ApiError> {
        let prompt = self.render(model)?;
        start_prompt(state, model, prompt, &self.tools, ask, "messages")
    }
}

/// A finished reply split into its reasoning, its text and its calls; with `single`, the
/// first call alone (an extra one is logged, not answered).
pub fn reply_parts(text: &str, format: &ReplyFormat, single: bool) -> ParsedReply {
    let mut reply = read_reply(text, format);
    if single && reply.calls.len() > 1 {
        for extra in reply.calls.drain(1..) {
            tracing::warn!(function = %extra.name, "dropping a second call: parallel tool calls are off");
        }
    }
    reply
}

/// Starts a generation for a rendered prompt: plan, grammars, admission, submission.
/// `prompt_param` names the request field a too-long prompt came from.
pub fn start_prompt(
    state: &AppState,
    model: &ServedModel,
    prompt: Vec<u32>,
    tools: &ToolPlan,
    ask: Ask<'_>,
    prompt_param: &str,
) -> Result<Started, ApiError> {
    let plan = params::plan(ask.fields, ask.max_tokens, ask.logprobs, &model.defaults)?;
    let reply = reply_format(model, tools, &prompt);
    let constraints = structured::constraints(model, ask.format, tools, plan.n, reply.thinking)?;
    let prompt_tokens = prompt.len() as u64;
    let guard = state.admit(model, plan.n)?;
    let submitted = generation::submit(model, vec![prompt], &plan, guard, prompt_param, constraints)?;
    Ok(Started { submitted, plan, prompt_tokens, reply, single_call: !tools.parallel })
}

/// How the reply to `prompt` is read: reasoning split off when the model thinks (its chat
/// template knows `<think>`), calls parsed in the syntax its template teaches.
pub fn reply_format(model: &ServedModel, tools: &ToolPlan, prompt: &[u32]) -> ReplyFormat {
    let thinks = model.template.as_ref().is_some_and(|t| t.source().contains("<think>"));
    let thinking = thinks.then(|| match prompt_opens_thinking(model, prompt) {
        true => ThinkingStart::OpenedByPrompt,
        false => ThinkingStart::InReply,
    });
    let calls = tools.parses_calls().then(|| match CallSyntax::of(model.template.as_ref()) {
        CallSyntax::XmlFunctions => CallFormat::Xml(tools.callable().iter().map(|t| (t.name.clone(), t.parameters.clone())).collect()),
        CallSyntax::HermesTags | CallSyntax::BareJson => CallFormat::Json(tools.callable_names()),
    });
    ReplyFormat { thinking, calls }
}

/// The prompt ends inside an opened `<think>` block (templates that start the reasoning for
/// the model).
fn prompt_opens_thinking(model: &ServedModel, prompt: &[u32]) -> bool {
    let tail = model.tokenizer().decode(&prompt[prompt.len().saturating_sub(4)..]);
    tail.trim_end().ends_with("<think>")
}
