//! JSON as models write it: finding where a value ends inside text, and the few repairs we
//! accept (trailing commas, single-quoted strings, Python's True/False/None, brackets left open
//! at the end of the reply).

use serde_json::Value;

/// Where the JSON value that opens `text` (with `{` or `[`) ends: the byte index just past its
/// closing bracket, or None when the text ends first.
pub fn value_end(text: &str) -> Option<usize> {
    let mut scan = Scanner::default();
    for (i, c) in text.char_indices() {
        scan.feed(c);
        if scan.depth == 0 && scan.quote.is_none() {
            return Some(i + c.len_utf8());
        }
    }
    None
}

/// Parses `text` as JSON, repairing what models commonly get wrong; None when even the
/// repaired text is not JSON.
pub fn parse(text: &str) -> Option<Value> {
    let text = text.trim();
    if let Ok(value) = serde_json::from_str(text) {
        return Some(value);
    }
    serde_json::from_str(&repair(text)).ok()
}

/// Bracket depth and string state while scanning JSON-like text.
#[derive(Default)]
struct Scanner {
    depth: usize,
    /// The quote character of the string being read.
    quote: Option<char>,
    escaped: bool,
    /// The last character outside strings that was not whitespace.
    last_structural: Option<char>,
}

impl Scanner {
    fn feed(&mut self, c: char) {
        if let Some(q) = self.quote {
            if self.escaped {
                self.escaped = false;
            } else if c == '\\' {
                self.escaped = true;
            } else if c == q {
                self.quote = None;
                self.last_structural = Some(c);
            }
            return;
        }
        match c {
            '"' => self.quote = Some('"'),
            // an apostrophe opens a string only where a key or value may start
            '\'' if matches!(self.last_structural, Some('{' | '[' | ',' | ':')) => self.quote = Some('\''),
            '{' | '[' => self.depth += 1,
            '}' | ']' => self.depth = self.depth.saturating_sub(1),
            _ => {}
        }
        if !c.is_whitespace() && self.quote.is_none() {
            self.last_structural = Some(c);
        }
    }
}

/// Rewrites JSON-like text into JSON: single-quoted strings become double-quoted, trailing
/// commas go, bare True/False/None become JSON literals, and a string, key or brackets left
/// open at the end are closed.
fn repair(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len() + 8);
    let mut open: Vec<char> = Vec::new();
    let mut quote: Option<char> = None;
    let mut last_structural: Option<char> = None;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match quote {
            Some(q) => i += string_char(c, next, q, &mut quote, &mut out),
            None => {
                i += structural_char(&chars[i..], &mut quote, last_structural, &mut open, &mut out);
                if !c.is_whitespace() {
                    last_structural = Some(c);
                }
            }
        }
    }
    if quote.is_some() {
        out.push('"');
    }
    drop_trailing_comma(&mut out);
    if out.trim_end().ends_with(':') {
        out.push_str("null");
    }
    while let Some(close) = open.pop() {
        out.push(close);
    }
    out
}

/// Writes one character of a string opened by `q`; returns how many characters it used.
fn string_char(c: char, next: Option<char>, q: char, quote: &mut Option<char>, out: &mut String) -> usize {
    match (c, next) {
        ('\\', Some('\'')) if q == '\'' => {
            out.push('\''); // \' is not a JSON escape: it stands for the apostrophe
            2
        }
        ('\\', Some(n)) => {
            out.push('\\');
            out.push(n);
            2
        }
        _ if c == q => {
            out.push('"');
            *quote = None;
            1
        }
        ('"', _) => {
            out.push_str("\\\""); // inside a single-quoted string
            1
        }
        ('\n', _) => {
            out.push_str("\\n");
            1
        }
        _ => {
            out.push(c);
            1
        }
    }
}

/// Writes the structural character (or bare word) at the start of `rest`; returns how many
/// characters it used.
fn structural_char(
    rest: &[char],
    quote: &mut Option<char>,
    last_structural: Option<char>,
    open: &mut Vec<char>,
    out: &mut String,
) -> usize {
    let c = rest[0];
    match c {
        '"' => *quote = Some('"'),
        // an apostrophe opens a string only where a key or a value may start
        '\'' if matches!(last_structural, Some('{' | '[' | ',' | ':')) => {
            *quote = Some('\'');
            out.push('"');
            return 1;
        }
        '{' => open.push('}'),
        '[' => open.push(']'),
        '}' | ']' => {
            drop_trailing_comma(out);
            open.pop();
        }
        c if c.is_ascii_alphabetic() => {
            let len = rest.iter().take_while(|c| c.is_ascii_alphanumeric() || **c == '_').count();
            let word: String = rest[..len].iter().collect();
            out.push_str(python_literal(&word).unwrap_or(&word));
            return len;
        }
        _ => {}
    }
    out.push(c);
    1
}

fn python_literal(word: &str) -> Option<&'static str> {
    match word {
        "True" => Some("true"),
        "False" => Some("false"),
        "None" => Some("null"),
        _ => None,
    }
}

fn drop_trailing_comma(out: &mut String) {
    let trimmed = out.trim_end().len();
    if out[..trimmed].ends_with(',') {
        out.truncate(trimmed - 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_the_end_of_a_value_inside_text() {
        assert_eq!(value_end(r#"{"a": "}"} tail"#), Some(10));
        assert_eq!(value_end(r#"[{"a": [1, 2]}, {}]x"#), Some(19));
        assert_eq!(value_end(r#"{"a": "\"}"}"#), Some(12));
        assert_eq!(value_end(r#"{'a': '}'}"#), Some(10));
        assert_eq!(value_end(r#"{"a": {"b": 1}"#), None);
    }

    #[test]
    fn strict_json_passes_unchanged() {
        assert_eq!(parse(r#" {"a": [1, "x"]} "#), Some(json!({"a": [1, "x"]})));
    }

    #[test]
    fn accepted_repairs() {
        let cases = [
            (r#"{"a": 1,}"#, json!({"a": 1})),
            (r#"{"a": [1, 2, ], }"#, json!({"a": [1, 2]})),
            (r#"{'a': 'it\'s "x"'}"#, json!({"a": "it's \"x\""})),
            (r#"{"ok": True, "no": False, "v": None}"#, json!({"ok": true, "no": false, "v": null})),
            (r#"{"a": {"b": 1"#, json!({"a": {"b": 1}})),
            (r#"{"a": "unfinished"#, json!({"a": "unfinished"})),
            (r#"{"a":"#, json!({"a": null})),
            (r#"{"a": "True story"}"#, json!({"a": "True story"})),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text), Some(want), "{text}");
        }
    }

    #[test]
    fn prose_is_not_json() {
        assert_eq!(parse("hello there"), None);
        assert_eq!(parse("{this is not json}"), None);
    }
}
