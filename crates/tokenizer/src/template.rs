//! Chat templates (Jinja, as Hugging Face renders them) via minijinja.

use minijinja::value::{Kwargs, Value};
use minijinja::{Environment, Error, ErrorKind};
use serde::Serialize;

use crate::error::TokenizerError;

const TEMPLATE_NAME: &str = "chat";

/// A compiled chat template with the special-token texts it may refer to.
pub struct ChatTemplate {
    env: Environment<'static>,
    source: String,
    bos_token: String,
    eos_token: String,
}

/// Inputs of one rendering: any serde value for messages and tools (OpenAI shapes).
#[derive(Debug, Clone, Serialize)]
pub struct ChatInputs<'a, M: Serialize, T: Serialize> {
    pub messages: &'a M,
    pub tools: Option<&'a T>,
    pub add_generation_prompt: bool,
}

impl ChatTemplate {
    pub fn new(source: &str, bos_token: String, eos_token: String) -> Result<Self, TokenizerError> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_filter("tojson", python_tojson);
        env.add_function("raise_exception", raise_exception);
        env.add_function("strftime_now", strftime_now);
        // Python's `iterable`: none is not (minijinja iterates it as empty, and then
        // `tools is iterable and tools | length > 0` fails on a request without tools)
        env.add_test("iterable", |value: Value| !value.is_none() && !value.is_undefined() && value.try_iter().is_ok());
        env.add_template_owned(TEMPLATE_NAME, source.to_string())
            .map_err(|e| TokenizerError::Template(format!("cannot compile: {e:#}")))?;
        Ok(ChatTemplate { env, source: source.to_string(), bos_token, eos_token })
    }

    /// The Jinja source.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Renders the prompt for `messages` (and `tools`, none when absent).
    pub fn render<M: Serialize, T: Serialize>(&self, inputs: &ChatInputs<'_, M, T>) -> Result<String, TokenizerError> {
        self.render_with(inputs, &serde_json::Map::new())
    }

    /// Renders with extra template variables (vLLM's `chat_template_kwargs`, such as
    /// `enable_thinking` or `reasoning_effort`); they cannot replace the inputs' own variables.
    pub fn render_with<M: Serialize, T: Serialize>(
        &self,
        inputs: &ChatInputs<'_, M, T>,
        kwargs: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<String, TokenizerError> {
        let template = self.env.get_template(TEMPLATE_NAME).map_err(|e| TokenizerError::Template(e.to_string()))?;
        let ctx = minijinja::context! {
            messages => Value::from_serialize(inputs.messages),
            tools => inputs.tools.map(Value::from_serialize),
            add_generation_prompt => inputs.add_generation_prompt,
            bos_token => self.bos_token.as_str(),
            eos_token => self.eos_token.as_str(),
            ..Value::from_serialize(kwargs)
        };
        template.render(ctx).map_err(|e| TokenizerError::Template(format!("{e:#}")))
    }
}

fn raise_exception(message: String) -> Result<Value, Error> {
    Err(Error::new(ErrorKind::InvalidOperation, message))
}

fn strftime_now(format: String) -> Result<Value, Error> {
    // Templates use this for "today's date" lines; a fixed UTC clock keeps prompts reproducible
    // within a day and needs no time-zone database.
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    const MONTHS: [&str; 12] = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];
    let out = format
        .replace("%Y", &y.to_string())
        .replace("%m", &format!("{m:02}"))
        .replace("%d", &format!("{d:02}"))
        .replace("%B", MONTHS[(m - 1) as usize])
        .replace("%b", &MONTHS[(m - 1) as usize][..3]);
    Ok(Value::from(out))
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + if m <= 2 { 1 } else { 0 }, m, d)
}

/// `tojson` as Hugging Face's renderer has it: Python's `json.dumps(x, ensure_ascii=False)`
/// (keys in insertion order, `", "` and `": "` separators, non-ASCII kept), with `indent`.
fn python_tojson(value: Value, kwargs: Kwargs) -> Result<Value, Error> {
    let indent: Option<usize> = kwargs.get("indent")?;
    kwargs.assert_all_used()?;
    let json = serde_json::to_value(&value).map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))?;
    let mut out = Vec::new();
    let result = match indent {
        Some(n) => {
            let pad = vec![b' '; n];
            let mut ser = serde_json::Serializer::with_formatter(&mut out, serde_json::ser::PrettyFormatter::with_indent(&pad));
            json.serialize(&mut ser)
        }
        None => json.serialize(&mut serde_json::Serializer::with_formatter(&mut out, PythonFormatter)),
    };
    result.map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))?;
    Ok(Value::from_safe_string(String::from_utf8(out).expect("serde_json writes UTF-8")))
}

/// serde_json formatter with Python's default separators.
struct PythonFormatter;

impl serde_json::ser::Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W, first: bool) -> std::io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }
    fn begin_object_key<W: ?Sized + std::io::Write>(&mut self, w: &mut W, first: bool) -> std::io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }
    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b": ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tojson_matches_python() {
        let t = ChatTemplate::new("{{ x | tojson }}|{{ x | tojson(indent=2) }}", String::new(), String::new()).unwrap();
        let env_out = t.env.get_template(TEMPLATE_NAME).unwrap();
        let x = serde_json::json!({"b": [1, "é"], "a": {"q": "\"hi\"\n"}});
        let out = env_out.render(minijinja::context! { x => Value::from_serialize(&x) }).unwrap();
        assert_eq!(out, "{\"b\": [1, \"é\"], \"a\": {\"q\": \"\\\"hi\\\"\\n\"}}|{\n  \"b\": [\n    1,\n    \"é\"\n  ],\n  \"a\": {\n    \"q\": \"\\\"hi\\\"\\n\"\n  }\n}");
    }

    #[test]
    fn raise_exception_is_an_error() {
        let t = ChatTemplate::new("{{ raise_exception('no system role') }}", String::new(), String::new()).unwrap();
        let err = t.render(&ChatInputs::<_, ()> { messages: &Vec::<()>::new(), tools: None, add_generation_prompt: true });
        assert!(err.unwrap_err().to_string().contains("no system role"));
    }

    #[test]
    fn kwargs_reach_the_template_but_not_over_its_inputs() {
        let source = "{% if enable_thinking is defined and not enable_thinking %}no-think {% endif %}{{ reasoning_effort | default('none') }} {{ messages | length }}";
        let t = ChatTemplate::new(source, String::new(), String::new()).unwrap();
        let messages = vec![serde_json::json!({"role": "user", "content": "hi"})];
        let inputs = ChatInputs::<_, ()> { messages: &messages, tools: None, add_generation_prompt: true };
        assert_eq!(t.render(&inputs).unwrap(), "none 1");
        let kwargs = serde_json::json!({"enable_thinking": false, "reasoning_effort": "high", "messages": []});
        assert_eq!(t.render_with(&inputs, kwargs.as_object().unwrap()).unwrap(), "no-think high 1");
    }

    #[test]
    fn none_is_not_iterable_as_in_python() {
        let t = ChatTemplate::new("{{ tools is iterable }} {{ messages is iterable }} {{ 'ab' is iterable }}", String::new(), String::new()).unwrap();
        let messages: Vec<()> = Vec::new();
        assert_eq!(t.render(&ChatInputs::<_, ()> { messages: &messages, tools: None, add_generation_prompt: true }).unwrap(), "False True True");
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_784), (2026, 11, 27));
    }
}
