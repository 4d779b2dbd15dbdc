//! Structured outputs: `response_format` (JSON object or JSON Schema), forced tool calls
//! (`tool_choice` "required" or a named function, in the call syntax the model's chat
//! template teaches) and, under "auto", lazy call grammars: one llguidance grammar per choice.

use hearth_engine::{Grammar, GrammarCompiler, TokenConstraint};
use hearth_tools::{answer_offset, call_start, CallForm, ThinkingStart};
use hearth_tokenizer::ChatTemplate;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::state::ServedModel;
use crate::tool_plan::{OfferedTool, ToolPlan};
use crate::xml_grammar;

/// How the model writes a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallSyntax {
    /// `<tool_call>\n{"name": ..., "arguments": ...}\n</tool_call>` (Hermes; Qwen's template).
    HermesTags,
    /// A bare JSON object (or a list of them).
    BareJson,
    /// `<tool_call>\n<function=NAME>\n<parameter=KEY>\nVALUE\n</parameter>\n</function>\n</tool_call>`
    /// (Qwen3-Coder's template).
    XmlFunctions,
}

impl CallSyntax {
    pub fn of(template: Option<&ChatTemplate>) -> Self {
        let source = template.map(ChatTemplate::source).unwrap_or_default();
        if source.contains("<function=") && source.contains("<parameter=") {
            CallSyntax::XmlFunctions
        } else if source.contains("<tool_call>") {
            CallSyntax::HermesTags
        } else {
            CallSyntax::BareJson
        }
    }
}

/// One JSON layout for everything hearth forces: `{"a": 1, "b": [2, 3]}` on one line. Fixed
/// separators also stop a model from padding its output with endless whitespace.
fn with_layout(mut schema: Value) -> Value {
    if let Value::Object(o) = &mut schema {
        let layout = json!({"whitespace_flexible": false, "key_separator": ": ", "item_separator": ", "});
        o.entry("x-guidance").or_insert(layout);
    }
    schema
}

/// The grammar `response_format` asks for; None for plain text.
pub fn response_format_grammar(format: Option<&Value>) -> Result<Option<Grammar>, ApiError> {
    let Some(format) = format else { return Ok(None) };
    let param = Some("response_format");
    match format.get("type").and_then(Value::as_str) {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(Grammar::JsonSchema(with_layout(json!({"type": "object"}))))),
        Some("json_schema") => {
            let spec = format.get("json_schema").and_then(Value::as_object).ok_or_else(|| {
                ApiError::bad_request("response_format json_schema needs a `json_schema` object", Some("response_format.json_schema"))
            })?;
            match spec.get("schema") {
                Some(schema @ Value::Object(_)) => Ok(Some(Grammar::JsonSchema(with_layout(schema.clone())))),
                Some(Value::Bool(true)) | None => Ok(Some(Grammar::JsonSchema(with_layout(json!({}))))),
                Some(_) => Err(ApiError::bad_request(
                    "json_schema.schema must be a JSON Schema object",
                    Some("response_format.json_schema.schema"),
                )),
            }
        }
        _ => Err(ApiError::bad_request(
            "response_format type must be \"text\", \"json_object\" or \"json_schema\"",
            param,
        )),
    }
}

/// The grammar of a reply that must consist of calls: one call when `parallel_tool_calls` is
/// false, else one or more. Arguments follow each tool's schema, or any object when
/// `schemas` is false.
pub fn forced_calls_grammar(plan: &ToolPlan, syntax: CallSyntax, schemas: bool) -> Grammar {
    let call = any_call_schema(plan, schemas);
    match syntax {
        CallSyntax::HermesTags => {
            let call = with_layout(call);
            let repeat = if plan.parallel { " (\"\\n\" call)*" } else { "" };
            Grammar::Lark(format!("start: call{repeat}\ncall: \"<tool_call>\\n\" %json {call} \"\\n</tool_call>\"\n"))
        }
        CallSyntax::BareJson if plan.parallel => {
            Grammar::JsonSchema(with_layout(json!({"type": "array", "items": call, "minItems": 1})))
        }
        CallSyntax::BareJson => Grammar::JsonSchema(with_layout(call)),
        CallSyntax::XmlFunctions => xml_grammar::forced_calls(plan, schemas),
    }
}

/// `grammar` after a thinking model's reasoning: the `<think>` block stays free (optional when
/// the reply may open one, required up to `</think>` when the prompt opened it).
fn after_reasoning(grammar: Grammar, thinking: Option<ThinkingStart>) -> Grammar {
    let Some(start) = thinking else { return grammar };
    let answer = match grammar {
        Grammar::JsonSchema(schema) => format!("answer: %json {schema}\n"),
        Grammar::Lark(text) => text.replacen("start:", "answer:", 1),
    };
    let reasoning = match start {
        ThinkingStart::InReply => "(\"<think>\" reasoning REASONING_END?)?",
        ThinkingStart::OpenedByPrompt => "reasoning REASONING_END?",
    };
    Grammar::Lark(format!(
        "start: {reasoning} answer\nreasoning[suffix=\"</think>\"]: /(?s:.*)/\nREASONING_END: /[ \\t\\r\\n]+/\n{answer}"
    ))
}

/// One call of any callable function.
fn any_call_schema(plan: &ToolPlan, schemas: bool) -> Value {
    let variants: Vec<Value> = plan.callable().into_iter().map(|tool| call_schema(tool, schemas)).collect();
    match variants.len() {
        1 => variants.into_iter().next().unwrap_or_default(),
        _ => json!({"anyOf": variants}),
    }
}

/// The rest of a reply once a call has begun in `form` (from its opening brace): the call,
/// its closing tag or fence, and with parallel calls more of the same form; then the end.
/// The JSON may be laid out as the model likes, as it began before the grammar took over.
pub fn call_continuation(form: CallForm, call: &Value, parallel: bool) -> Grammar {
    let (close, reopen) = match form {
        CallForm::Tagged => (r#" WS? "</tool_call>""#, r#"WS? "<tool_call>" WS? "#),
        CallForm::Fenced => (r#" WS? "```""#, r#"WS? "```json\n" WS? "#),
        CallForm::Bare => ("", "WS? "),
    };
    let more = if parallel { format!(" ({reopen}call{close})*") } else { String::new() };
    let mut call = call.clone();
    if let Value::Object(o) = &mut call {
        o.insert("x-guidance".into(), json!({"whitespace_flexible": true}));
    }
    Grammar::Lark(format!("start: call{close}{more}\ncall: %json {call}\nWS: /[ \\t\\r\\n]+/\n"))
}

/// The lazy grammar of a reply under `tool_choice: "auto"`: free text (and reasoning) until a
/// call begins in the answer (a `<tool_call>` tag, a fenced or bare `{"name":`), then that
/// call follows the tools' schemas.
fn lazy_json_calls(compiler: &GrammarCompiler, call: Value, parallel: bool, thinking: Option<ThinkingStart>) -> TokenConstraint {
    compiler.lazy(Box::new(move |text: &str| {
        let answer = answer_offset(text, thinking)?;
        let (start, form) = call_start(&text[answer..])?;
        Some((answer + start, call_continuation(form, &call, parallel)))
    }))
}

/// The lazy grammar of XML calls: free until `<function=` appears in the answer.
fn lazy_xml_calls(compiler: &GrammarCompiler, continuation: Grammar, thinking: Option<ThinkingStart>) -> TokenConstraint {
    compiler.lazy(Box::new(move |text: &str| {
        let answer = answer_offset(text, thinking)?;
        let start = answer + text[answer..].find(xml_grammar::CALL_OPENER)?;
        Some((start, continuation.clone()))
    }))
}

fn call_schema(tool: &OfferedTool, schemas: bool) -> Value {
    let arguments = if schemas { tool.parameters.clone() } else { json!({"type": "object"}) };
    json!({
        "type": "object",
        "properties": {"name": {"const": tool.name}, "arguments": arguments},
        "required": ["name", "arguments"],
        "additionalProperties": false,
    })
}

/// Compiles the request's grammar once per choice. A tool schema llguidance cannot compile
/// falls back to "any object" unless a tool is strict; every other failure is a 400 that
/// names the construct.
pub fn constraints(
    model: &ServedModel,
    format: Option<&Value>,
    plan: &ToolPlan,
    count: usize,
    thinking: Option<ThinkingStart>,
) -> Result<Vec<Option<TokenConstraint>>, ApiError> {
    let format_grammar = response_format_grammar(format)?;
    if plan.forces_call() && format_grammar.is_some() {
        return Err(ApiError::bad_request(
            "A JSON response_format cannot be combined with a tool_choice that forces a call",
            Some("response_format"),
        ));
    }
    let syntax = CallSyntax::of(model.template.as_ref());
    let (grammar, param) = match format_grammar {
        Some(grammar) => (grammar, "response_format"),
        None if plan.forces_call() => (forced_calls_grammar(plan, syntax, true), "tools"),
        None if plan.parses_calls() => return lazy_constraints(model.grammar_compiler()?, plan, syntax, count, thinking),
        None => return Ok((0..count).map(|_| None).collect()),
    };
    let grammar = after_reasoning(grammar, thinking);
    let compiler = model.grammar_compiler()?;
    let compile = |grammar: &Grammar| compiler.compile(grammar);
    let first = match compile(&grammar) {
        Ok(c) => c,
        Err(_) if param == "tools" && !plan.tools.iter().any(|t| t.strict) => {
            let loose = after_reasoning(forced_calls_grammar(plan, syntax, false), thinking);
            return (0..count).map(|_| compile(&loose).map(Some).map_err(|e| refused(param, e))).collect();
        }
        Err(e) => return Err(refused(param, e)),
    };
    let mut out = vec![Some(first)];
    for _ in 1..count {
        out.push(Some(compile(&grammar).map_err(|e| refused(param, e))?));
    }
    Ok(out)
}

/// Lazy call grammars, one per choice; the tools' schemas are compiled once up front so that
/// a strict tool whose schema llguidance cannot use is refused now, not skipped mid-reply.
fn lazy_constraints(
    compiler: &GrammarCompiler,
    plan: &ToolPlan,
    syntax: CallSyntax,
    count: usize,
    thinking: Option<ThinkingStart>,
) -> Result<Vec<Option<TokenConstraint>>, ApiError> {
    let strict = plan.tools.iter().any(|t| t.strict);
    if syntax == CallSyntax::XmlFunctions {
        let mut continuation = xml_grammar::call_continuation(plan, true);
        if let Err(error) = compiler.compile(&continuation) {
            if strict {
                return Err(refused("tools", error));
            }
            continuation = xml_grammar::call_continuation(plan, false);
        }
        return Ok((0..count).map(|_| Some(lazy_xml_calls(compiler, continuation.clone(), thinking))).collect());
    }
    let mut call = any_call_schema(plan, true);
    if let Err(error) = compiler.compile(&call_continuation(CallForm::Bare, &call, plan.parallel)) {
        if strict {
            return Err(refused("tools", error));
        }
        call = any_call_schema(plan, false);
    }
    Ok((0..count).map(|_| Some(lazy_json_calls(compiler, call.clone(), plan.parallel, thinking))).collect())
}

fn refused(param: &str, error: hearth_engine::GrammarError) -> ApiError {
    let text = format!("The {param} schema cannot be used for constrained decoding: {error}");
    ApiError::bad_request(text, Some(param))
}
