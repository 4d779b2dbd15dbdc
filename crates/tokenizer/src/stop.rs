//! Stop strings over streamed text: finds them and holds back text that may begin one.

/// Tracks generated text against stop strings.
#[derive(Debug, Clone, Default)]
pub struct StopStrings {
    stops: Vec<String>,
    /// Text received but not yet released (it may be the start of a stop string).
    pending: String,
}

/// What to do with newly decoded text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopCheck {
    /// Emit this text and go on.
    Continue(String),
    /// A stop string matched: emit this text (before the stop string) and finish.
    Stopped { text: String, matched: String },
}

impl StopStrings {
    pub fn new(stops: Vec<String>) -> Self {
        let stops = stops.into_iter().filter(|s| !s.is_empty()).collect();
        StopStrings { stops, pending: String::new() }
    }

    /// Feeds a text delta; returns what can safely be released.
    pub fn push(&mut self, delta: &str) -> StopCheck {
        self.pending.push_str(delta);
        if let Some((pos, matched)) = self.earliest_match() {
            let text = self.pending[..pos].to_string();
            self.pending.clear();
            return StopCheck::Stopped { text, matched };
        }
        let keep = self.longest_partial_suffix();
        let release_to = self.pending.len() - keep;
        let text = self.pending[..release_to].to_string();
        self.pending.drain(..release_to);
        StopCheck::Continue(text)
    }

    /// Releases whatever is held back (generation ended another way).
    pub fn flush(&mut self) -> String {
        std::mem::take(&mut self.pending)
    }

    fn earliest_match(&self) -> Option<(usize, String)> {
        self.stops
            .iter()
            .filter_map(|s| self.pending.find(s.as_str()).map(|pos| (pos, s.clone())))
            .min_by_key(|(pos, _)| *pos)
    }

    /// Length of the longest suffix of `pending` that is a proper prefix of some stop string.
    fn longest_partial_suffix(&self) -> usize {
        let text = &self.pending;
        let mut best = 0;
        for stop in &self.stops {
            for (len, _) in stop.char_indices().skip(1) {
                if len > best && text.ends_with(&stop[..len]) {
                    best = len;
                }
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_across_deltas_and_holds_back_prefixes() {
        let mut s = StopStrings::new(vec!["END".into(), "\n\n".into()]);
        assert_eq!(s.push("hello E"), StopCheck::Continue("hello ".into()));
        assert_eq!(s.push("N"), StopCheck::Continue(String::new()));
        assert_eq!(s.push("Dless"), StopCheck::Stopped { text: String::new(), matched: "END".into() });
    }

    #[test]
    fn releases_false_starts_and_flushes() {
        let mut s = StopStrings::new(vec!["STOP".into()]);
        assert_eq!(s.push("ST"), StopCheck::Continue(String::new()));
        assert_eq!(s.push("ay"), StopCheck::Continue("STay".into()));
        assert_eq!(s.push(" S"), StopCheck::Continue(" ".into()));
        assert_eq!(s.flush(), "S");
    }

    #[test]
    fn earliest_stop_wins_and_unicode_is_safe() {
        let mut s = StopStrings::new(vec!["b".into(), "é!".into()]);
        assert_eq!(s.push("aé"), StopCheck::Continue("a".into()));
        assert_eq!(s.push("!b"), StopCheck::Stopped { text: String::new(), matched: "é!".into() });
    }
}
