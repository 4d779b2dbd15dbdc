//! A Responses request as the shared conversation: input items to chat messages (messages,
//! `function_call`, `function_call_output`; `reasoning` items skipped), flat function tools
//! and `tool_choice` to Chat Completions' shapes, `text.format` to a `response_format`.

use hearth_protocol::responses::{ContentPart, InputItem, ItemContent, ResponsesInput, TextConfig};
use hearth_protocol::ChatMessageIn;
use serde_json::{json, Value};

use crate::conversation::Conversation;
use crate::error::ApiError;

/// The request's input as items (a string is one user message).
pub fn input_items(input: Option<ResponsesInput>) -> Vec<InputItem> {
    match input {
        None => Vec::new(),
        Some(ResponsesInput::Text(text)) => vec![InputItem::message("user", text)],
        Some(ResponsesInput::Items(items)) => items,
    }
}

/// `instructions` and the items (earlier turns first) as the shared conversation.
pub fn conversation(
    instructions: Option<&str>,
    items: &[InputItem],
    tools: Option<&Vec<Value>>,
    choice: Option<&Value>,
    parallel: Option<bool>,
) -> Result<Conversation, ApiError> {
    if items.is_empty() {
        return Err(ApiError::bad_request("input must not be empty", Some("input")));
    }
    let mut messages = Vec::with_capacity(items.len() + 1);
    if let Some(instructions) = instructions {
        messages.push(ChatMessageIn::text("system", instructions));
    }
    for (i, item) in items.iter().enumerate() {
        add_item(i, item, &mut messages)?;
    }
    let choice = tool_choice(choice)?;
    Conversation::new(messages, tools.map(|t| function_tools(t)).transpose()?, choice.as_ref(), parallel)
}

fn add_item(index: usize, item: &InputItem, out: &mut Vec<ChatMessageIn>) -> Result<(), ApiError> {
    let param = |field: &str| format!("input[{index}]{field}");
    let missing = |field: &str| ApiError::bad_request(format!("This item needs `{field}`"), Some(&param(&format!(".{field}"))));
    match item.kind.as_deref().unwrap_or("message") {
        "message" => {
            let role = item.role.as_deref().ok_or_else(|| missing("role"))?;
            if !matches!(role, "user" | "system" | "developer" | "assistant") {
                let text = format!("Unknown role `{role}`: expected user, system, developer or assistant");
                return Err(ApiError::bad_request(text, Some(&param(".role"))));
            }
            let content = item.content.as_ref().ok_or_else(|| missing("content"))?;
            out.push(ChatMessageIn::text(role, content_text(content, &param(".content"))?));
        }
        "function_call" => {
            let call_id = item.call_id.as_deref().ok_or_else(|| missing("call_id"))?;
            let name = item.name.as_deref().ok_or_else(|| missing("name"))?;
            let name = match item.other.get("namespace").and_then(Value::as_str) {
                Some(namespace) => namespaced(namespace, name),
                None => name.to_string(),
            };
            let call = json!({"id": call_id, "type": "function",
                "function": {"name": name, "arguments": item.arguments.as_deref().unwrap_or("{}")}});
            // consecutive calls are one assistant turn, as the model made them
            match out.last_mut() {
                Some(last) if last.role == "assistant" && last.tool_calls.is_some() => {
                    last.tool_calls.get_or_insert_with(Vec::new).push(call)
                }
                Some(last) if last.role == "assistant" => last.tool_calls = Some(vec![call]),
                _ => out.push(ChatMessageIn { role: "assistant".into(), content: None, name: None, tool_calls: Some(vec![call]), tool_call_id: None, reasoning_content: None }),
            }
        }
        "function_call_output" => {
            let output = item.output.as_ref().ok_or_else(|| missing("output"))?;
            let mut tool = ChatMessageIn::text("tool", content_text(output, &param(".output"))?);
            // Codex also sends outputs it made itself (e.g. `agent.goal_objective`), named
            // instead of answering a call: rendered as a tool message of that name
            match (item.call_id.as_deref(), item.name.as_deref()) {
                (Some(call_id), _) => tool.tool_call_id = Some(call_id.to_string()),
                (None, Some(name)) => tool.name = Some(match item.other.get("namespace").and_then(Value::as_str) {
                    Some(namespace) => namespaced(namespace, name),
                    None => name.to_string(),
                }),
                (None, None) => return Err(missing("call_id")),
            }
            out.push(tool);
        }
        // A reasoning model's own notes: this engine has none to continue, and they are not
        // part of what the model is shown (as in OpenAI's API for non-reasoning models).
        "reasoning" => tracing::debug!("skipping a reasoning item of the input"),
        other => {
            let text = format!("Input items of type `{other}` are not supported: hearth reads messages, function_call, function_call_output and reasoning items");
            return Err(ApiError::bad_request(text, Some(&param(".type"))));
        }
    }
    Ok(())
}

/// The text of string content or of text parts (other parts are refused by name).
fn content_text(content: &ItemContent, param: &str) -> Result<String, ApiError> {
    match content {
        ItemContent::Text(text) => Ok(text.clone()),
        ItemContent::Parts(parts) => {
            let mut texts = Vec::with_capacity(parts.len());
            for (j, ContentPart { kind, text, .. }) in parts.iter().enumerate() {
                match (kind.as_str(), text) {
                    ("input_text" | "output_text" | "text" | "refusal", Some(text)) => texts.push(text.as_str()),
                    (kind, _) => {
                        let message = format!("Content parts of type `{kind}` are not supported: this model reads text only");
                        return Err(ApiError::bad_request(message, Some(&format!("{param}[{j}]"))));
                    }
                }
            }
            Ok(texts.join("\n"))
        }
    }
}

/// How a function inside a namespace tool is named to the model (and found again in its calls).
pub const NAMESPACE_SEPARATOR: &str = ".";

fn namespaced(namespace: &str, name: &str) -> String {
    format!("{namespace}{NAMESPACE_SEPARATOR}{name}")
}

/// A call's function name split into (namespace, name) when it names a function of one of
/// the offered `namespaces`.
pub fn split_namespace(name: &str, namespaces: &[String]) -> (Option<String>, String) {
    for namespace in namespaces {
        if let Some(inner) = name.strip_prefix(namespace.as_str()).and_then(|rest| rest.strip_prefix(NAMESPACE_SEPARATOR)) {
            return (Some(namespace.clone()), inner.to_string());
        }
    }
    (None, name.to_string())
}

/// The names of the request's namespace tools.
pub fn namespaces(tools: Option<&Vec<Value>>) -> Vec<String> {
    let tools = tools.map(|t| t.as_slice()).unwrap_or_default();
    tools.iter().filter(|t| t["type"] == "namespace").filter_map(|t| t["name"].as_str().map(str::to_string)).collect()
}

/// Function tools in Chat Completions' shape; the functions of a namespace tool are offered
/// as `namespace.name`. Hosted tools (`web_search`, `file_search`, `local_shell`, ...) cannot
/// run here; they are left out with a warning, because agents such as Codex send them with
/// every request.
fn function_tools(tools: &[Value]) -> Result<Vec<Value>, ApiError> {
    let mut out = Vec::with_capacity(tools.len());
    for (i, tool) in tools.iter().enumerate() {
        match tool.get("type").and_then(Value::as_str) {
            Some("function") => out.push(function_tool(tool, None)),
            Some("namespace") => {
                let namespace = tool["name"].as_str().ok_or_else(|| {
                    ApiError::bad_request("A namespace tool needs a `name`", Some(&format!("tools[{i}].name")))
                })?;
                for inner in tool["tools"].as_array().into_iter().flatten() {
                    match inner["type"].as_str() {
                        Some("function") => out.push(function_tool(inner, Some(namespace))),
                        kind => tracing::warn!(tool = kind.unwrap_or("untyped"), namespace, "ignoring a namespace tool that is not a function"),
                    }
                }
            }
            Some(kind) => tracing::warn!(tool = kind, "ignoring a hosted tool hearth cannot run"),
            None => return Err(ApiError::bad_request("Each tool needs a `type`", Some(&format!("tools[{i}].type")))),
        }
    }
    Ok(out)
}

fn function_tool(tool: &Value, namespace: Option<&str>) -> Value {
    let mut function = serde_json::Map::new();
    for field in ["name", "description", "parameters", "strict"] {
        if let Some(value) = tool.get(field).filter(|v| !v.is_null()) {
            function.insert(field.into(), value.clone());
        }
    }
    if let (Some(namespace), Some(name)) = (namespace, tool["name"].as_str()) {
        function.insert("name".into(), json!(namespaced(namespace, name)));
    }
    json!({"type": "function", "function": function})
}

/// `tool_choice` in Chat Completions' shape (`{"type": "function", "name"}` is flat here).
fn tool_choice(choice: Option<&Value>) -> Result<Option<Value>, ApiError> {
    let Some(choice) = choice else { return Ok(None) };
    match choice {
        Value::String(_) | Value::Null => Ok(Some(choice.clone())),
        Value::Object(o) => match (o.get("type").and_then(Value::as_str), o.get("name").and_then(Value::as_str)) {
            (Some("function"), Some(name)) => Ok(Some(json!({"type": "function", "function": {"name": name}}))),
            (Some(kind), _) => {
                let text = format!("tool_choice of type `{kind}` is not supported: use \"auto\", \"none\", \"required\" or {{\"type\": \"function\", \"name\": ...}}");
                Err(ApiError::bad_request(text, Some("tool_choice")))
            }
            (None, _) => Err(ApiError::bad_request("tool_choice needs a `type`", Some("tool_choice"))),
        },
        _ => Err(ApiError::bad_request("tool_choice must be a string or an object", Some("tool_choice"))),
    }
}

/// `text.format` as a Chat Completions `response_format` (None for plain text).
pub fn response_format(text: Option<&TextConfig>) -> Result<Option<Value>, ApiError> {
    let Some(format) = text.and_then(|t| t.format.as_ref()) else { return Ok(None) };
    match format.kind.as_str() {
        "text" => Ok(None),
        "json_object" => Ok(Some(json!({"type": "json_object"}))),
        "json_schema" => {
            let schema = format.schema.clone().ok_or_else(|| {
                ApiError::bad_request("text.format of type json_schema needs a `schema`", Some("text.format.schema"))
            })?;
            let name = format.name.clone().unwrap_or_else(|| "response".into());
            Ok(Some(json!({"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": format.strict}})))
        }
        other => {
            let text = format!("text.format type `{other}` is not one of text, json_object, json_schema");
            Err(ApiError::bad_request(text, Some("text.format.type")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_protocol::MessageContent;

    fn items(json: Value) -> Vec<InputItem> {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn a_tool_round_trip_becomes_chat_messages() {
        let items = items(json!([
            {"role": "user", "content": "Weather in Paris?"},
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
            {"type": "function_call", "call_id": "call_2", "name": "get_weather", "arguments": "{\"city\":\"Lyon\"}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "22C"},
            {"type": "function_call_output", "call_id": "call_2", "output": [{"type": "input_text", "text": "19C"}]}]));
        let tools = vec![json!({"type": "function", "name": "get_weather", "parameters": {"type": "object"}}), json!({"type": "web_search"}),
            json!({"type": "namespace", "name": "agents", "description": "d", "tools": [{"type": "function", "name": "spawn"}]})];
        let converted = conversation(Some("Be brief."), &items, Some(&tools), None, None).unwrap();
        let roles: Vec<&str> = converted.messages.iter().map(|m| m.role.as_str()).collect();
        assert_eq!(roles, ["system", "user", "assistant", "tool", "tool"]);
        assert_eq!(converted.messages[2].tool_calls.as_ref().unwrap().len(), 2);
        assert_eq!(converted.messages[4].content, Some(MessageContent::Text("19C".into())));
        assert_eq!(converted.messages[4].tool_call_id.as_deref(), Some("call_2"));
        assert_eq!(converted.tools.callable_names(), ["get_weather", "agents.spawn"], "the hosted tool is left out");
        let namespaces = namespaces(Some(&tools));
        assert_eq!(split_namespace("agents.spawn", &namespaces), (Some("agents".into()), "spawn".into()));
        assert_eq!(split_namespace("get_weather", &namespaces), (None, "get_weather".into()));
        let replayed: Vec<InputItem> = serde_json::from_value(json!([{"role": "user", "content": "go"},
            {"type": "function_call", "call_id": "c", "name": "spawn", "namespace": "agents", "arguments": "{}"}])).unwrap();
        let again = conversation(None, &replayed, Some(&tools), None, None).unwrap();
        assert_eq!(again.messages[1].tool_calls.as_ref().unwrap()[0]["function"]["name"], "agents.spawn");
    }

    #[test]
    fn an_output_without_a_call_is_a_named_tool_message() {
        // as Codex 0.169 sends its goal: an output item that answers no call
        let items = items(json!([{"role": "user", "content": "go"},
            {"type": "function_call_output", "id": "fco_1", "name": "goal_objective", "namespace": "agent", "output": "Create hello.py"}]));
        let converted = conversation(None, &items, None, None, None).unwrap();
        let tool = &converted.messages[1];
        assert_eq!((tool.role.as_str(), tool.name.as_deref(), tool.tool_call_id.as_deref()), ("tool", Some("agent.goal_objective"), None));
        assert_eq!(tool.content, Some(MessageContent::Text("Create hello.py".into())));
    }

    #[test]
    fn bad_items_are_named() {
        let cases = [
            (json!([{"type": "message", "content": "x"}]), "input[0].role"),
            (json!([{"role": "robot", "content": "x"}]), "input[0].role"),
            (json!([{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]), "input[0].content[0]"),
            (json!([{"type": "function_call_output", "output": "x"}]), "input[0].call_id"),
            (json!([{"type": "computer_call", "id": "x"}]), "input[0].type"),
        ];
        for (json, param) in cases {
            let error = conversation(None, &items(json.clone()), None, None, None).err().unwrap();
            assert_eq!(error.body.error.param.as_deref(), Some(param), "{json}");
        }
        assert!(conversation(None, &[], None, None, None).is_err());
    }

    #[test]
    fn formats_and_choices_convert() {
        let text: TextConfig = serde_json::from_value(json!({"format": {"type": "json_schema", "name": "p", "schema": {"type": "object"}, "strict": true}})).unwrap();
        let format = response_format(Some(&text)).unwrap().unwrap();
        assert_eq!(format["json_schema"]["schema"], json!({"type": "object"}));
        assert_eq!(tool_choice(Some(&json!({"type": "function", "name": "f"}))).unwrap().unwrap()["function"]["name"], "f");
        assert!(tool_choice(Some(&json!({"type": "web_search"}))).is_err());
    }
}
