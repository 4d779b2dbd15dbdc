//! What a chat request says about tools: the offered functions, `tool_choice` and
//! `parallel_tool_calls`, validated into one plan; and the assistant `tool_calls` of the
//! history as chat templates expect them (arguments as objects, not strings).

use serde_json::Value;

use crate::error::ApiError;

/// One offered function.
#[derive(Debug, Clone, PartialEq)]
pub struct OfferedTool {
    pub name: String,
    /// Its JSON Schema for `arguments` (an empty object schema when the tool has none).
    pub parameters: Value,
    pub strict: bool,
}

/// `tool_choice`.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolChoice {
    None,
    Auto,
    Required,
    Function(String),
}

/// The tools of one request.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolPlan {
    pub tools: Vec<OfferedTool>,
    pub choice: ToolChoice,
    /// More than one call per reply is allowed.
    pub parallel: bool,
}

impl ToolPlan {
    pub fn from_request(tools: Option<&Vec<Value>>, choice: Option<&Value>, parallel: Option<bool>) -> Result<Self, ApiError> {
        let tools = tools.map(|t| t.iter().enumerate().map(|(i, t)| offered_tool(i, t)).collect()).transpose()?;
        let tools: Vec<OfferedTool> = tools.unwrap_or_default();
        for (i, tool) in tools.iter().enumerate() {
            if tools[..i].iter().any(|t| t.name == tool.name) {
                let text = format!("Function `{}` is offered twice", tool.name);
                return Err(ApiError::bad_request(text, Some(&format!("tools[{i}].function.name"))));
            }
        }
        let choice = parse_choice(choice, &tools)?;
        Ok(ToolPlan { tools, choice, parallel: parallel.unwrap_or(true) })
    }

    /// The tools to show the chat template: none under `tool_choice: "none"`, so that the
    /// model answers in text.
    pub fn template_tools<'a>(&self, tools: Option<&'a Vec<Value>>) -> Option<&'a Vec<Value>> {
        if self.choice == ToolChoice::None {
            None
        } else {
            tools
        }
    }

    /// Whether calls are looked for in the reply.
    pub fn parses_calls(&self) -> bool {
        !self.tools.is_empty() && self.choice != ToolChoice::None
    }

    /// The functions a reply may call (the forced one alone when one is named).
    pub fn callable(&self) -> Vec<&OfferedTool> {
        match &self.choice {
            ToolChoice::None => Vec::new(),
            ToolChoice::Function(name) => self.tools.iter().filter(|t| &t.name == name).collect(),
            ToolChoice::Auto | ToolChoice::Required => self.tools.iter().collect(),
        }
    }

    pub fn callable_names(&self) -> Vec<String> {
        self.callable().iter().map(|t| t.name.clone()).collect()
    }

    /// A call must be made (the reply is constrained to calls).
    pub fn forces_call(&self) -> bool {
        matches!(self.choice, ToolChoice::Required | ToolChoice::Function(_))
    }
}

fn offered_tool(index: usize, tool: &Value) -> Result<OfferedTool, ApiError> {
    let param = |field: &str| format!("tools[{index}]{field}");
    let kind = tool.get("type").and_then(Value::as_str);
    if kind != Some("function") {
        let text = "Only tools of type \"function\" are supported";
        return Err(ApiError::bad_request(text, Some(&param(".type"))));
    }
    let function = tool.get("function").and_then(Value::as_object).ok_or_else(|| {
        ApiError::bad_request("A function tool needs a `function` object", Some(&param(".function")))
    })?;
    let name = function.get("name").and_then(Value::as_str).unwrap_or_default();
    let valid_name = !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
    if !valid_name {
        let text = format!("Function name `{name}` must be 1 to 64 letters, digits, `_`, `-` or `.`");
        return Err(ApiError::bad_request(text, Some(&param(".function.name"))));
    }
    let parameters = match function.get("parameters") {
        None | Some(Value::Null) => serde_json::json!({"type": "object", "properties": {}}),
        Some(schema @ Value::Object(_)) => schema.clone(),
        Some(_) => {
            return Err(ApiError::bad_request("`parameters` must be a JSON Schema object", Some(&param(".function.parameters"))))
        }
    };
    let strict = function.get("strict").and_then(Value::as_bool).unwrap_or(false);
    Ok(OfferedTool { name: name.to_string(), parameters, strict })
}

fn parse_choice(choice: Option<&Value>, tools: &[OfferedTool]) -> Result<ToolChoice, ApiError> {
    let param = Some("tool_choice");
    let choice = match choice {
        None | Some(Value::Null) => return Ok(if tools.is_empty() { ToolChoice::None } else { ToolChoice::Auto }),
        Some(Value::String(s)) => match s.as_str() {
            "none" => ToolChoice::None,
            "auto" => ToolChoice::Auto,
            "required" => ToolChoice::Required,
            other => {
                let text = format!("tool_choice `{other}` is not one of \"none\", \"auto\", \"required\" or a function");
                return Err(ApiError::bad_request(text, param));
            }
        },
        Some(Value::Object(o)) => {
            let name = o.get("function").and_then(|f| f.get("name")).and_then(Value::as_str);
            match (o.get("type").and_then(Value::as_str), name) {
                (Some("function"), Some(name)) => ToolChoice::Function(name.to_string()),
                _ => {
                    let text = "tool_choice must look like {\"type\": \"function\", \"function\": {\"name\": ...}}";
                    return Err(ApiError::bad_request(text, param));
                }
            }
        }
        Some(_) => return Err(ApiError::bad_request("tool_choice must be a string or an object", param)),
    };
    match &choice {
        ToolChoice::Required if tools.is_empty() => {
            Err(ApiError::bad_request("tool_choice \"required\" needs at least one tool in `tools`", param))
        }
        ToolChoice::Function(name) if !tools.iter().any(|t| &t.name == name) => {
            Err(ApiError::bad_request(format!("tool_choice names `{name}`, which is not in `tools`"), param))
        }
        _ => Ok(choice),
    }
}

/// An assistant message's `tool_calls` as templates read them: each `function.arguments`
/// string that holds JSON becomes that JSON (templates write it with `tojson`).
pub fn template_tool_calls(index: usize, calls: &[Value]) -> Result<Vec<Value>, ApiError> {
    calls
        .iter()
        .enumerate()
        .map(|(j, call)| {
            let mut call = call.clone();
            let arguments = call.get_mut("function").and_then(|f| f.get_mut("arguments"));
            if let Some(arguments) = arguments {
                if let Value::String(text) = arguments {
                    *arguments = serde_json::from_str(text).map_err(|e| {
                        let param = format!("messages[{index}].tool_calls[{j}].function.arguments");
                        ApiError::bad_request(format!("arguments are not JSON: {e}"), Some(&param))
                    })?;
                }
            }
            Ok(call)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tools() -> Vec<Value> {
        vec![json!({"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}})]
    }

    #[test]
    fn choices() {
        let plan = |c: Value| ToolPlan::from_request(Some(&tools()), Some(&c), None);
        assert_eq!(plan(json!("auto")).unwrap().choice, ToolChoice::Auto);
        assert_eq!(plan(json!("required")).unwrap().choice, ToolChoice::Required);
        let named = json!({"type": "function", "function": {"name": "get_weather"}});
        assert_eq!(plan(named).unwrap().choice, ToolChoice::Function("get_weather".into()));
        assert!(plan(json!({"type": "function", "function": {"name": "nope"}})).is_err());
        assert!(plan(json!("sometimes")).is_err());
        assert!(ToolPlan::from_request(None, Some(&json!("required")), None).is_err());
        assert_eq!(ToolPlan::from_request(None, None, None).unwrap().choice, ToolChoice::None);
    }

    #[test]
    fn bad_tools_are_refused() {
        for tool in [json!({"type": "retrieval"}), json!({"type": "function"}), json!({"type": "function", "function": {"name": "a b"}})] {
            assert!(ToolPlan::from_request(Some(&vec![tool.clone()]), None, None).is_err(), "{tool}");
        }
        assert!(ToolPlan::from_request(Some(&[tools(), tools()].concat()), None, None).is_err(), "duplicate names");
    }

    #[test]
    fn history_arguments_become_objects() {
        let calls = vec![json!({"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{\"a\": 1}"}})];
        let out = template_tool_calls(0, &calls).unwrap();
        assert_eq!(out[0]["function"]["arguments"], json!({"a": 1}));
        let bad = vec![json!({"function": {"name": "f", "arguments": "{oops"}})];
        assert!(template_tool_calls(0, &bad).is_err());
    }
}
