//! Reading the Prometheus text format that `/metrics` pages use: each sample's name, labels
//! and value, for the clients that scrape a server (the soak, the benchmarks).

/// One sample line: `name{labels} value [timestamp]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample<'a> {
    pub name: &'a str,
    /// What stood between the braces, unparsed ("" without labels).
    pub labels: &'a str,
    pub value: f64,
}

impl Sample<'_> {
    /// The value of one label, unescaped.
    pub fn label(&self, key: &str) -> Option<String> {
        let mut rest = self.labels;
        while let Some((name, after)) = rest.split_once('=') {
            let after = after.strip_prefix('"')?;
            let (value, tail) = quoted(after)?;
            if name.trim() == key {
                return Some(value);
            }
            rest = tail.trim_start_matches([',', ' ']);
        }
        None
    }
}

/// The text of a quoted label value (the opening quote already taken) and what follows it.
fn quoted(text: &str) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((value, &text[i + 1..])),
            '\\' => match chars.next()?.1 {
                'n' => value.push('\n'),
                other => value.push(other),
            },
            c => value.push(c),
        }
    }
    None
}

/// Every sample of a page, in order; comments and lines that are not samples are skipped.
pub fn samples(page: &str) -> impl Iterator<Item = Sample<'_>> {
    page.lines().filter_map(sample)
}

fn sample(line: &str) -> Option<Sample<'_>> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line.find(['{', ' ', '\t'])?;
    let name = &line[..name_end];
    let (labels, rest) = match line[name_end..].strip_prefix('{') {
        Some(inside) => {
            let close = labels_end(inside)?;
            (&inside[..close], &inside[close + 1..])
        }
        None => ("", &line[name_end..]),
    };
    let value = rest.split_whitespace().next()?.parse().ok()?;
    Some(Sample { name, labels, value })
}

/// Where the label set's closing brace is, skipping braces inside quoted values.
fn labels_end(inside: &str) -> Option<usize> {
    let (mut in_quotes, mut escaped) = (false, false);
    for (i, c) in inside.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            '}' if !in_quotes => return Some(i),
            _ => {}
        }
    }
    None
}

/// The value of the first sample named `name` (any labels).
pub fn first(page: &str, name: &str) -> Option<f64> {
    samples(page).find(|s| s.name == name).map(|s| s.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_names_labels_and_values() {
        let page = "# HELP x\n# TYPE x gauge\nhearth:kv_cache_usage_perc{model_name=\"m\"} 0.25\nhearth:num_requests_running 3 1700000000\n\
                    hearth:num_requests_running_total 9\nweird{path=\"/a}b\",q=\"say \\\"hi\\\"\"} +Inf\nbroken{x=\"1\" 2\n";
        let all: Vec<Sample> = samples(page).collect();
        assert_eq!(all.len(), 4, "{all:?}");
        assert_eq!(first(page, "hearth:kv_cache_usage_perc"), Some(0.25));
        assert_eq!(first(page, "hearth:num_requests_running"), Some(3.0));
        assert_eq!(first(page, "hearth:missing"), None);
        assert_eq!(all[0].label("model_name").as_deref(), Some("m"));
        assert_eq!(all[3].label("path").as_deref(), Some("/a}b"));
        assert_eq!(all[3].label("q").as_deref(), Some("say \"hi\""));
        assert!(all[3].value.is_infinite());
    }
}
