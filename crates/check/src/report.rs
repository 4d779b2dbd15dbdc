//! The check report: a summary table, a verdict, and per check its validations, request,
//! response and timings — as Markdown or JSON.

use std::fmt::Write;

use serde::Serialize;

use crate::result::{CheckResult, Status};

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub url: String,
    pub model: Option<String>,
    pub results: Vec<CheckResult>,
}

fn label(r: &CheckResult) -> &'static str {
    match (r.status, r.required) {
        (Status::Pass, _) => "PASS",
        (Status::Fail, true) => "FAIL",
        (Status::Fail, false) => "WARN",
    }
}

impl Report {
    /// True when every required check passed (and the model could be tested at all).
    pub fn passed(&self) -> bool {
        self.model.is_some() && self.results.iter().all(|r| r.passed() || !r.required)
    }

    pub fn verdict(&self) -> String {
        let failed: Vec<&str> = self.results.iter().filter(|r| r.required && !r.passed()).map(|r| r.name.as_str()).collect();
        match (self.passed(), failed.is_empty()) {
            (true, _) => format!("PASS: all {} required checks passed.", self.results.iter().filter(|r| r.required).count()),
            (false, true) => "FAIL: no model could be tested.".to_string(),
            (false, false) => format!("FAIL: {} required check(s) failed: {}.", failed.len(), failed.join(", ")),
        }
    }

    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# hearth check report\n");
        let _ = writeln!(out, "- Endpoint: `{}`", self.url);
        let _ = writeln!(out, "- Model: `{}`", self.model.as_deref().unwrap_or("(none)"));
        let _ = writeln!(out, "- Verdict: **{}**\n", self.verdict());
        let _ = writeln!(out, "| # | Endpoint | Status | Notes |\n|---|---|---|---|");
        for (i, r) in self.results.iter().enumerate() {
            let failed: Vec<&str> = r.validations.iter().filter(|v| !v.ok).map(|v| v.what.as_str()).collect();
            let notes = if failed.is_empty() { r.notes.join("; ") } else { failed.join("; ") };
            let notes = crate::http::trim(&notes, 200);
            let _ = writeln!(out, "| {} | {} | {} | {} |", i + 1, r.name, label(r), notes.replace('|', "\\|").replace('\n', " "));
        }
        for (i, r) in self.results.iter().enumerate() {
            write_section(&mut out, i + 1, r);
        }
        out
    }
}

fn write_section(out: &mut String, number: usize, r: &CheckResult) {
    let kind = if r.required { "required" } else { "informational" };
    let _ = writeln!(out, "\n## {number}. {} — {} ({kind}, {:.0} ms)\n", r.name, label(r), r.elapsed_ms);
    if !r.validations.is_empty() {
        let _ = writeln!(out, "Validated:\n");
        for v in &r.validations {
            let _ = writeln!(out, "- [{}] {}", if v.ok { "x" } else { " " }, v.what);
        }
    }
    if !r.notes.is_empty() {
        let _ = writeln!(out, "\nNotes:\n");
        for n in &r.notes {
            let _ = writeln!(out, "- {n}");
        }
    }
    for (title, text) in [("Request", &r.request), ("Response", &r.response)] {
        if !text.is_empty() {
            let _ = writeln!(out, "\n{title}:\n\n```\n{}\n```", text.replace("```", "'''"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_follows_required_checks() {
        let mut ok = CheckResult::new("Health endpoint", true);
        ok.check("status 200", true);
        let mut warn = CheckResult::new("Performance characteristics", false);
        warn.check("fast", false);
        let mut report = Report { url: "http://x".into(), model: Some("m".into()), results: vec![ok, warn] };
        assert!(report.passed());
        let md = report.to_markdown();
        assert!(md.contains("| 1 | Health endpoint | PASS |"), "{md}");
        assert!(md.contains("| 2 | Performance characteristics | WARN | fast |"), "{md}");
        let mut bad = CheckResult::new("Streaming (SSE)", true);
        bad.check("the last event is `data: [DONE]`", false);
        report.results.push(bad);
        assert!(!report.passed());
        assert_eq!(report.verdict(), "FAIL: 1 required check(s) failed: Streaming (SSE).");
        report.model = None;
        assert!(!report.passed());
    }
}
