//! The reply parser on every form of call models write, with text around them, several calls,
//! malformed JSON, unknown names, and each reply split at every possible streaming boundary.

use hearth_tools::{parse_reply, ParsedReply, ReplyEvent, ReplyParser, ToolCall};

fn offered() -> Vec<String> {
    vec!["get_weather".into(), "get_time".into()]
}

fn call(name: &str, arguments: &str) -> ToolCall {
    ToolCall { name: name.into(), arguments: arguments.into() }
}

fn paris() -> ToolCall {
    call("get_weather", r#"{"city":"Paris"}"#)
}

fn reply(content: Option<&str>, calls: Vec<ToolCall>) -> ParsedReply {
    ParsedReply { reasoning: None, content: content.map(str::to_string), calls }
}

/// (model text, expected split)
fn cases() -> Vec<(&'static str, ParsedReply)> {
    vec![
        (
            "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
            reply(None, vec![paris()]),
        ),
        (
            "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": {\"city\": \"Tokyo\"}}\n</tool_call>",
            reply(None, vec![paris(), call("get_time", r#"{"city":"Tokyo"}"#)]),
        ),
        (
            "```json\n{\n  \"name\": \"get_weather\",\n  \"arguments\": {\n    \"city\": \"Paris\"\n  }\n}\n```",
            reply(None, vec![paris()]),
        ),
        ("```tool_call\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n```", reply(None, vec![paris()])),
        ("{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}", reply(None, vec![paris()])),
        (
            "  [{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}, {\"name\": \"get_time\", \"arguments\": {}}]",
            reply(None, vec![paris(), call("get_time", "{}")]),
        ),
        ("{{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}", reply(None, vec![paris()])),
        ("<tools>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tools>", reply(None, vec![paris()])),
        (
            "Let me check.\n\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\nOne moment.",
            reply(Some("Let me check.\n\nOne moment."), vec![paris()]),
        ),
        (
            "I will look it up:\n```json\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n```\n",
            reply(Some("I will look it up:"), vec![paris()]),
        ),
        // a missing closing tag or fence at the end of the reply, trailing commas, single quotes
        ("<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}", reply(None, vec![paris()])),
        ("```json\n{'name': 'get_weather', 'arguments': {'city': 'Paris',},}\n", reply(None, vec![paris()])),
        ("<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"", reply(None, vec![paris()])),
        // unknown function names and malformed JSON stay content
        (
            "<tool_call>\n{\"name\": \"rm_rf\", \"arguments\": {}}\n</tool_call>",
            reply(Some("<tool_call>\n{\"name\": \"rm_rf\", \"arguments\": {}}\n</tool_call>"), vec![]),
        ),
        ("<tool_call>{name: get_weather}</tool_call> ok", reply(Some("<tool_call>{name: get_weather}</tool_call> ok"), vec![])),
        ("{\"city\": \"Paris\"}", reply(Some("{\"city\": \"Paris\"}"), vec![])),
        ("{ this is prose }", reply(Some("{ this is prose }"), vec![])),
        // code and prose are content, JSON examples inside them too
        (
            "Here:\n```python\nprint({\"name\": \"get_weather\"})\n```\nDone.",
            reply(Some("Here:\n```python\nprint({\"name\": \"get_weather\"})\n```\nDone."), vec![]),
        ),
        (
            "```json\n{\"city\": \"Paris\"}\n```\nand ```inline``` code",
            reply(Some("```json\n{\"city\": \"Paris\"}\n```\nand ```inline``` code"), vec![]),
        ),
        (
            "A call looks like {\"name\": \"get_weather\", \"arguments\": {}}.",
            reply(Some("A call looks like {\"name\": \"get_weather\", \"arguments\": {}}."), vec![]),
        ),
        ("Plain answer with a <tag> and ``two ticks``\n", reply(Some("Plain answer with a <tag> and ``two ticks``\n"), vec![])),
        ("", reply(None, vec![])),
        ("Ends with a partial <tool_c", reply(Some("Ends with a partial <tool_c"), vec![])),
    ]
}

#[test]
fn whole_replies_split_into_content_and_calls() {
    for (text, want) in cases() {
        assert_eq!(parse_reply(text, &offered()), want, "{text:?}");
    }
}

/// Feeds `pieces` one by one and assembles what came out.
fn streamed(pieces: &[&str]) -> ParsedReply {
    let mut parser = ReplyParser::new(offered());
    let mut events = Vec::new();
    for piece in pieces {
        events.extend(parser.push(piece));
    }
    events.extend(parser.finish());
    ParsedReply::from_events(events)
}

#[test]
fn every_split_point_gives_the_same_answer() {
    for (text, want) in cases() {
        let boundaries: Vec<usize> = (0..=text.len()).filter(|&i| text.is_char_boundary(i)).collect();
        for &i in &boundaries {
            assert_eq!(streamed(&[&text[..i], &text[i..]]), want, "{text:?} split at {i}");
        }
        let pieces: Vec<&str> = boundaries.windows(2).map(|w| &text[w[0]..w[1]]).collect();
        assert_eq!(streamed(&pieces), want, "{text:?} one character at a time");
    }
}

#[test]
fn no_markup_reaches_content_while_streaming() {
    let text = "Checking.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>";
    let mut parser = ReplyParser::new(offered());
    let mut contents = Vec::new();
    for c in text.chars() {
        for event in parser.push(&c.to_string()) {
            if let ReplyEvent::Content(t) = event {
                contents.push(t);
            }
        }
    }
    parser.finish();
    assert_eq!(contents.concat(), "Checking.");
}

#[test]
fn content_streams_without_waiting_for_the_end() {
    let mut parser = ReplyParser::new(offered());
    assert_eq!(parser.push("Hello wor"), vec![ReplyEvent::Content("Hello wor".into())]);
    assert_eq!(parser.push("ld <"), vec![ReplyEvent::Content("ld".into())], "a space waits for more content, and `<` may open a tag");
    assert_eq!(parser.push("b> ```py"), vec![ReplyEvent::Content(" <b>".into())]);
    let events = parser.push("thon\nx = 1\n");
    let text: String = events.iter().map(|e| if let ReplyEvent::Content(t) = e { t.as_str() } else { "" }).collect();
    assert_eq!(text, " ```python\nx = 1", "a fence of code is content as soon as its language is known");
}
