//! Where a call begins in a reply being generated, for lazy grammars: the reply is free text
//! until a call starts, then the grammar takes over from the call's opening brace.

/// The form of a call that has begun.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallForm {
    /// After `<tool_call>`; the call ends with `</tool_call>`.
    Tagged,
    /// First in a fenced block (```json or no language); the call ends with the fence.
    Fenced,
    /// A bare object opening the reply.
    Bare,
}

/// The byte offset of the `{` that opens the first call in `text`, and the call's form.
/// A tagged call starts at its first brace; a fenced or bare one once `{"name":` is written,
/// so that JSON which is not a call stays free.
pub fn call_start(text: &str) -> Option<(usize, CallForm)> {
    let tagged = text.find("<tool_call>").and_then(|i| {
        let after = i + "<tool_call>".len();
        let lead = text[after..].len() - text[after..].trim_start().len();
        text[after + lead..].starts_with('{').then_some((after + lead, CallForm::Tagged))
    });
    let lead = text.len() - text.trim_start().len();
    let bare = opens_named_object(&text[lead..]).then_some((lead, CallForm::Bare));
    let fenced = fenced_start(text).map(|i| (i, CallForm::Fenced));
    [tagged, bare, fenced].into_iter().flatten().min_by_key(|(i, _)| *i)
}

/// The first fenced block whose body opens with `{"name":`.
fn fenced_start(text: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = text[from..].find("```") {
        let fence = from + i;
        let line_end = fence + text[fence..].find('\n')?;
        let language = text[fence + 3..line_end].trim();
        let body = &text[line_end + 1..];
        let lead = body.len() - body.trim_start().len();
        if matches!(language, "" | "json" | "tool_call" | "tool_calls") && opens_named_object(&body[lead..]) {
            return Some(line_end + 1 + lead);
        }
        from = line_end + 1;
    }
    None
}

/// `text` starts with `{`, optional whitespace, `"name"`, optional whitespace and `:`.
fn opens_named_object(text: &str) -> bool {
    let Some(rest) = text.strip_prefix('{') else { return false };
    let Some(rest) = rest.trim_start().strip_prefix("\"name\"") else { return false };
    rest.trim_start().starts_with(':')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_of_calls() {
        assert_eq!(call_start("<tool_call>\n{\"na"), Some((12, CallForm::Tagged)));
        assert_eq!(call_start("Sure.\n<tool_call>"), None, "not yet: the brace decides");
        assert_eq!(call_start("```json\n{\n  \"name\": \"f\""), Some((8, CallForm::Fenced)));
        assert_eq!(call_start("```json\n{\n  \"city\": \"Paris\"}"), None);
        assert_eq!(call_start("  {\"name\": "), Some((2, CallForm::Bare)));
        assert_eq!(call_start("{\"name"), None, "the key is not complete");
        assert_eq!(call_start("The object {\"name\": 1} is"), None, "a bare call opens the reply");
        assert_eq!(call_start("```python\nx = 1\n```\n```json\n{\"name\": \"f\"}"), Some((28, CallForm::Fenced)));
    }
}
