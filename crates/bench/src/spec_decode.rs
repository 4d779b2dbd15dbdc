//! The server's speculative-decoding counters, read from its Prometheus `/metrics` (hearth's
//! or vLLM's names) before and after a run.

use serde::Serialize;

/// Spec-decode counters at one moment, or their change over a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct SpecDecodeCounts {
    pub drafts: f64,
    pub draft_tokens: f64,
    pub accepted_tokens: f64,
}

impl SpecDecodeCounts {
    /// The counters in a Prometheus text page (summed over label sets), under hearth's names,
    /// or vLLM's when the page has no hearth series (a server that exports both is not counted
    /// twice); None when the page has no spec-decode series at all.
    pub fn parse(page: &str) -> Option<Self> {
        Self::parse_prefixed(page, "hearth:").or_else(|| Self::parse_prefixed(page, "vllm:"))
    }

    fn parse_prefixed(page: &str, prefix: &str) -> Option<Self> {
        let mut counts = SpecDecodeCounts::default();
        let mut found = false;
        for sample in hearth_protocol::prometheus::samples(page) {
            let Some(metric) = sample.name.strip_prefix(prefix) else { continue };
            let slot = match metric {
                "spec_decode_num_drafts_total" => &mut counts.drafts,
                "spec_decode_num_draft_tokens_total" => &mut counts.draft_tokens,
                "spec_decode_num_accepted_tokens_total" => &mut counts.accepted_tokens,
                _ => continue,
            };
            *slot += sample.value;
            found = true;
        }
        found.then_some(counts)
    }

    pub fn since(&self, before: &SpecDecodeCounts) -> SpecDecodeCounts {
        SpecDecodeCounts {
            drafts: self.drafts - before.drafts,
            draft_tokens: self.draft_tokens - before.draft_tokens,
            accepted_tokens: self.accepted_tokens - before.accepted_tokens,
        }
    }

    /// Accepted over drafted tokens.
    pub fn acceptance_rate(&self) -> f64 {
        if self.draft_tokens > 0.0 { self.accepted_tokens / self.draft_tokens } else { 0.0 }
    }

    /// Mean accepted tokens per verified draft.
    pub fn mean_accepted(&self) -> f64 {
        if self.drafts > 0.0 { self.accepted_tokens / self.drafts } else { 0.0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_either_naming_once_and_sums_labels() {
        let vllm = "# HELP vllm:spec_decode_num_drafts_total x\nvllm:spec_decode_num_drafts_total{model_name=\"a\"} 4\nvllm:spec_decode_num_draft_tokens_total{model_name=\"a\",engine=\"0\"} 12\nvllm:spec_decode_num_draft_tokens_total{model_name=\"a\",engine=\"1\"} 8\nvllm:spec_decode_num_accepted_tokens_total{model_name=\"a\"} 15\nvllm:num_requests_running{model_name=\"a\"} 1\n";
        let c = SpecDecodeCounts::parse(vllm).unwrap();
        assert_eq!(c, SpecDecodeCounts { drafts: 4.0, draft_tokens: 20.0, accepted_tokens: 15.0 });
        // a page with both namings of the same counters is read once, under hearth's
        let both = format!("{vllm}{}", vllm.replace("vllm:", "hearth:"));
        assert_eq!(SpecDecodeCounts::parse(&both), Some(c));
        assert_eq!(c.acceptance_rate(), 0.75);
        assert_eq!(c.mean_accepted(), 3.75);
        assert_eq!(SpecDecodeCounts::parse("hearth:num_requests_running 1\n"), None);
        let later = SpecDecodeCounts { drafts: 6.0, draft_tokens: 30.0, accepted_tokens: 20.0 };
        assert_eq!(later.since(&c), SpecDecodeCounts { drafts: 2.0, draft_tokens: 10.0, accepted_tokens: 5.0 });
    }
}
