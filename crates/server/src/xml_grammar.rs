//! Grammars of Qwen3-Coder's XML tool calls (`<function=NAME>` blocks of `<parameter=KEY>`
//! values, wrapped in `<tool_call>`): function and parameter names from the offered tools,
//! parameters in their schema's order (required ones present), values of a JSON type other
//! than string written as that JSON, text values free up to their closing tag.

use hearth_engine::Grammar;
use serde_json::{json, Value};

use crate::tool_plan::{OfferedTool, ToolPlan};

/// Where a lazy XML call grammar takes over: the `<function=` of the first call.
pub const CALL_OPENER: &str = "<function=";

/// A reply that consists of calls (one, or several with `parallel_tool_calls`). Parameters
/// follow the schemas, or any names and text values when `schemas` is false.
pub fn forced_calls(plan: &ToolPlan, schemas: bool) -> Grammar {
    let repeat = if plan.parallel { " (\"\\n\" block)*" } else { "" };
    let start = format!("start: block{repeat}\nblock: \"<tool_call>\\n\" call \"\\n</tool_call>\"\n");
    Grammar::Lark(start + &call_rules(&plan.callable(), schemas))
}

/// The rest of a reply from the `<function=` of its first call on: the call, its closing
/// `</tool_call>` (the model may leave the wrapper out), more wrapped calls when parallel
/// calls are allowed; then the end.
pub fn call_continuation(plan: &ToolPlan, schemas: bool) -> Grammar {
    let more = if plan.parallel { " (WS \"<tool_call>\" WS call WS \"</tool_call>\")*" } else { "" };
    let start = format!("start: call (WS \"</tool_call>\")?{more}\nWS: /[ \\t\\r\\n]*/\n");
    Grammar::Lark(start + &call_rules(&plan.callable(), schemas))
}

/// `call`: one `<function=...>` block of any of `tools`.
fn call_rules(tools: &[&OfferedTool], schemas: bool) -> String {
    let alternatives: Vec<String> = (0..tools.len()).map(|i| format!("fn_{i}")).collect();
    let mut rules = format!("call: {}\n", alternatives.join(" | "));
    for (i, tool) in tools.iter().enumerate() {
        let mut body = vec![literal(&format!("<function={}>\n", tool.name))];
        match tool.parameters.get("properties").and_then(Value::as_object).filter(|_| schemas) {
            Some(properties) => {
                let required = required_names(&tool.parameters);
                for (j, (key, schema)) in properties.iter().enumerate() {
                    let rule = format!("p_{i}_{j}");
                    rules.push_str(&format!("{rule}: {} {}\n", literal(&format!("<parameter={key}>\n")), value_rule(schema)));
                    body.push(if required.contains(&key.as_str()) { rule } else { format!("{rule}?") });
                }
            }
            None => body.push("any_parameter*".into()),
        }
        body.push(literal("</function>"));
        rules.push_str(&format!("fn_{i}: {}\n", body.join(" ")));
    }
    rules.push_str("any_parameter: \"<parameter=\" /[^>\\n]+/ \">\\n\" text_value\n");
    rules.push_str("text_value[suffix=\"\\n</parameter>\\n\"]: /(?s:.*)/\n");
    rules
}

fn required_names(schema: &Value) -> Vec<&str> {
    schema.get("required").and_then(Value::as_array).map(|r| r.iter().filter_map(Value::as_str).collect()).unwrap_or_default()
}

/// A parameter's value and its closing tag: one of its strings when it is an enum of strings,
/// JSON of its schema when it has a JSON type other than string, else free text.
fn value_rule(schema: &Value) -> String {
    let choices: Option<Vec<&str>> = schema.get("enum").and_then(Value::as_array).and_then(|e| e.iter().map(Value::as_str).collect());
    if let Some(choices) = choices.filter(|c| !c.is_empty()) {
        let alternatives: Vec<String> = choices.iter().map(|c| literal(c)).collect();
        return format!("({}) \"\\n</parameter>\\n\"", alternatives.join(" | "));
    }
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(kind)) => vec![kind.as_str()],
        Some(Value::Array(kinds)) => kinds.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if types.is_empty() || types.contains(&"string") {
        return "text_value".into();
    }
    let mut schema = schema.clone();
    if let Value::Object(o) = &mut schema {
        o.insert("x-guidance".into(), json!({"whitespace_flexible": false, "key_separator": ": ", "item_separator": ", "}));
    }
    format!("%json {schema} \"\\n</parameter>\\n\"")
}

/// `text` as a Lark string literal.
fn literal(text: &str) -> String {
    Value::String(text.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(parallel: bool) -> ToolPlan {
        let tools = vec![json!({"type": "function", "function": {"name": "edit", "parameters": {"type": "object",
            "properties": {"path": {"type": "string"}, "line": {"type": "integer"}, "force": {"type": "boolean"},
                "mode": {"type": "string", "enum": ["fast", "safe"]}},
            "required": ["path", "line"]}}})];
        ToolPlan::from_request(Some(&tools), Some(&json!("required")), Some(parallel)).unwrap()
    }

    #[test]
    fn parameters_follow_the_schema_in_order() {
        let Grammar::Lark(text) = forced_calls(&plan(false), true) else { panic!() };
        assert!(text.contains("fn_0: \"<function=edit>\\n\" p_0_0 p_0_1 p_0_2? p_0_3? \"</function>\""), "{text}");
        assert!(text.contains("p_0_3: \"<parameter=mode>\\n\" (\"fast\" | \"safe\") \"\\n</parameter>\\n\""), "{text}");
        assert!(text.contains("p_0_0: \"<parameter=path>\\n\" text_value"), "{text}");
        assert!(text.contains("p_0_1: \"<parameter=line>\\n\" %json {\"type\":\"integer\""), "{text}");
        assert!(text.starts_with("start: block\n"), "{text}");
        let Grammar::Lark(parallel) = forced_calls(&plan(true), false) else { panic!() };
        assert!(parallel.contains("(\"\\n\" block)*") && parallel.contains("any_parameter*"), "{parallel}");
    }
}
