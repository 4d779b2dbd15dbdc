//! The outcome of one check: its validations, the exchange it made, timings and notes.

use serde::Serialize;

use crate::http::{trim, Exchange};

/// How much of a request or response body the report keeps.
const REPORT_BODY_CHARS: usize = 1200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
}

/// One validated property.
#[derive(Debug, Clone, Serialize)]
pub struct Validation {
    pub what: String,
    pub ok: bool,
}

/// One check of the suite.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub name: String,
    /// Required checks decide the verdict; the others are reported only.
    pub required: bool,
    pub status: Status,
    pub validations: Vec<Validation>,
    pub request: String,
    pub response: String,
    pub elapsed_ms: f64,
    pub notes: Vec<String>,
}

impl CheckResult {
    pub fn new(name: &str, required: bool) -> Self {
        CheckResult {
            name: name.to_string(),
            required,
            status: Status::Pass,
            validations: Vec::new(),
            request: String::new(),
            response: String::new(),
            elapsed_ms: 0.0,
            notes: Vec::new(),
        }
    }

    /// Records a property; any false one fails the check.
    pub fn check(&mut self, what: impl Into<String>, ok: bool) -> bool {
        self.validations.push(Validation { what: what.into(), ok });
        if !ok {
            self.status = Status::Fail;
        }
        ok
    }

    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    /// Keeps the (trimmed) exchange for the report and adds its time; false if nothing came back.
    pub fn record(&mut self, exchange: &Exchange) -> bool {
        if !self.request.is_empty() {
            self.request.push_str("\n\n");
            self.response.push_str("\n\n");
        }
        self.request.push_str(&trim(&exchange.request, REPORT_BODY_CHARS));
        self.response.push_str(&format!("HTTP {}\n{}", exchange.status, trim(&exchange.body, REPORT_BODY_CHARS)));
        self.elapsed_ms += exchange.elapsed.as_secs_f64() * 1000.0;
        match &exchange.transport_error {
            Some(e) => {
                self.check(format!("the server answered ({e})"), false);
                false
            }
            None => true,
        }
    }

    pub fn passed(&self) -> bool {
        self.status == Status::Pass
    }
}
