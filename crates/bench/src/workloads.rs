//! Chat workloads for decoding benchmarks: code edits (a 60-120 line source file in the
//! prompt, returned whole with one small change, where the answer repeats its input) and
//! open-ended generation (where it does not).

/// One chat request of a workload: the user's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatCase {
    pub name: String,
    pub message: String,
}

/// Entities the generated modules are about; each case picks its own.
const ENTITIES: [(&str, &str, &str); 12] = [
    ("order", "price", "quantity"),
    ("invoice", "amount", "tax_rate"),
    ("shipment", "weight", "distance"),
    ("account", "balance", "interest"),
    ("sensor", "reading", "offset"),
    ("employee", "salary", "bonus"),
    ("ticket", "priority", "age_days"),
    ("product", "cost", "margin"),
    ("booking", "nights", "rate"),
    ("upload", "size_bytes", "chunks"),
    ("lesson", "minutes", "attendees"),
    ("vehicle", "mileage", "fuel_used"),
];

/// Function bodies a module is assembled from: `{e}` the entity, `{a}` and `{b}` its fields.
const FUNCTIONS: [&str; 8] = [
    "def total_{a}(items):\n    \"\"\"Sum of {a} over all {e}s.\"\"\"\n    result = 0\n    for item in items:\n        result += item.{a}\n    return result\n",
    "def average_{b}(items):\n    if not items:\n        return 0.0\n    values = [item.{b} for item in items]\n    return sum(values) / len(values)\n",
    "def find_{e}(items, key):\n    for index, item in enumerate(items):\n        if item.key == key:\n            return index, item\n    raise KeyError(f\"no {e} with key {{key}}\")\n",
    "def group_by_{b}(items, width=10):\n    groups = {{}}\n    for item in items:\n        bucket = int(item.{b} // width) * width\n        groups.setdefault(bucket, []).append(item)\n    return dict(sorted(groups.items()))\n",
    "def validate_{e}(item):\n    errors = []\n    if item.{a} < 0:\n        errors.append(\"{a} must not be negative\")\n    if item.{b} is None:\n        errors.append(\"{b} is required\")\n    if not item.key:\n        errors.append(\"key is empty\")\n    return errors\n",
    "def top_{e}s(items, count=5):\n    ranked = sorted(items, key=lambda item: item.{a} * item.{b}, reverse=True)\n    return ranked[:count]\n",
    "def summarize(items):\n    lines = []\n    for item in items:\n        score = item.{a} * item.{b}\n        lines.append(f\"{{item.key}}: {a}={{item.{a}}} {b}={{item.{b}}} score={{score:.2f}}\")\n    lines.append(f\"total: {{total_{a}(items)}}\")\n    return \"\\n\".join(lines)\n",
    "def load_{e}s(path):\n    items = []\n    with open(path, encoding=\"utf-8\") as handle:\n        for line_number, line in enumerate(handle, start=1):\n            line = line.strip()\n            if not line or line.startswith(\"#\"):\n                continue\n            key, {a}, {b} = line.split(\",\")\n            items.append({E}(key, float({a}), float({b})))\n    return items\n",
];

/// A Python module about one entity: a dataclass and a selection of functions.
fn module(case: usize) -> String {
    let (e, a, b) = ENTITIES[case % ENTITIES.len()];
    let class = capitalize(e);
    let mut text = format!(
        "\"\"\"Helpers for {e} records.\"\"\"\n\nfrom dataclasses import dataclass\n\n\n@dataclass\nclass {class}:\n    key: str\n    {a}: float\n    {b}: float\n\n    def score(self):\n        return self.{a} * self.{b}\n\n"
    );
    // every module has 6 to 8 functions, in a case-dependent order
    let count = 6 + case % 3;
    for k in 0..count {
        let template = FUNCTIONS[(k * 3 + case) % FUNCTIONS.len()];
        let body = template.replace("{e}", e).replace("{a}", a).replace("{b}", b).replace("{E}", &class);
        text.push_str("\n\n");
        text.push_str(&body.replace("{{", "{").replace("}}", "}"));
    }
    text
}

fn capitalize(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
}

/// The change asked for in case `case`.
fn instruction(case: usize) -> String {
    let (e, a, _) = ENTITIES[case % ENTITIES.len()];
    match case % 4 {
        0 => "Rename the local variable `items` to `records` everywhere.".to_string(),
        1 => format!("Rename the field `{a}` to `{a}_value` everywhere."),
        2 => format!("Add a keyword parameter `strict=False` to `validate_{e}`; when it is true, also report an empty list of errors as [\"ok\"]."),
        _ => "Add type hints to every function signature.".to_string(),
    }
}

/// A dozen code-edit requests: a module in the prompt, to be returned whole with one change.
pub fn code_edit_cases() -> Vec<ChatCase> {
    (0..12)
        .map(|case| ChatCase {
            name: format!("edit-{case:02}"),
            message: format!(
                "Here is a Python file:\n\n```python\n{}```\n\n{} Reply with the complete updated file in one code block and nothing else.",
                module(case),
                instruction(case)
            ),
        })
        .collect()
}

/// Open-ended requests whose answers do not copy their prompts.
pub fn free_generation_cases() -> Vec<ChatCase> {
    [
        "Write a short story about a lighthouse keeper who finds a message in a bottle.",
        "Explain how a CPU cache works to a new programmer.",
        "Write a Python function that parses an ISO 8601 date without using any library, with comments.",
        "What are the trade-offs between microservices and a monolith?",
        "Describe a week-long travel plan for Portugal.",
        "Write a Rust program that counts word frequencies in a text file.",
        "Explain the difference between TCP and UDP with examples.",
        "Write a limerick about a cat who learns to code, then explain its rhyme scheme.",
    ]
    .iter()
    .enumerate()
    .map(|(i, text)| ChatCase { name: format!("free-{i}"), message: text.to_string() })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_edit_files_are_60_to_120_lines_and_differ() {
        let cases = code_edit_cases();
        assert_eq!(cases.len(), 12);
        for case in 0..12 {
            let lines = module(case).lines().count();
            assert!((60..=120).contains(&lines), "case {case}: {lines} lines");
            assert!(!module(case).contains("{a}") && !module(case).contains("{e}"), "placeholders left in case {case}");
        }
        let distinct: std::collections::HashSet<_> = cases.iter().map(|c| &c.message).collect();
        assert_eq!(distinct.len(), 12);
    }
}
