//! Choosing among equal replicas by cache affinity or by session: scores from the matched
//! share of the prompt and the replica's load, the spill to the least loaded replica, and
//! rendezvous hashing; pure functions over what the planner measured.

use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};

use crate::config::AffinitySettings;

/// What the planner knows of one replica in a group.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReplicaView {
    /// The share of the prompt's chunks the replica is known to hold, 0..1.
    pub matched: f64,
    /// 0 idle, 1 saturated (see `load::load_score`), already divided by the route's weight.
    pub load: f64,
    /// Healthy, breaker not open, a free slot.
    pub available: bool,
    /// How many prefix chunks the index lists for the replica: among equals, the one holding
    /// least goes first, so new prefixes spread over the replicas.
    pub cached: usize,
    /// A stable per-request, per-replica number that breaks ties (rendezvous hashing).
    pub tie: u64,
}

/// Why a replica was put where it is in the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// It holds the longest prefix, and its load is acceptable.
    Match,
    /// No replica holds any of the prompt: the least loaded one.
    Fresh,
    /// The best match was overloaded (its load passed `spill_load`, or outweighed its match):
    /// a less loaded replica instead.
    Spill,
    /// The session's replica.
    Session,
    /// Not the first choice: a later attempt.
    Next,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Match => "match",
            Reason::Fresh => "fresh",
            Reason::Spill => "spill",
            Reason::Session => "session",
            Reason::Next => "next",
        }
    }
}

/// One replica's place in the order and how it was scored: the `x-hearth-route` header.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Choice {
    pub reason: Reason,
    pub matched: f64,
    pub load: f64,
    pub score: f64,
}

impl fmt::Display for Choice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "reason={}; matched={:.3}; load={:.3}; score={:.3}", self.reason.as_str(), self.matched, self.load, self.score)
    }
}

fn score(view: &ReplicaView, settings: &AffinitySettings) -> f64 {
    settings.match_weight * view.matched - settings.load_weight * view.load
}

/// The attempt order for a group under `cache_aware`: indexes into `views`, each with its
/// choice. Available replicas are ranked by score (ties by `tie`); the first is passed over for
/// the least loaded one when its load is at `spill_load` or more and some replica's is below.
pub fn cache_aware_order(views: &[ReplicaView], settings: &AffinitySettings) -> Vec<(usize, Choice)> {
    let ranked = |a: &usize, b: &usize| {
        let (va, vb) = (&views[*a], &views[*b]);
        let by_score = score(vb, settings).total_cmp(&score(va, settings));
        vb.available.cmp(&va.available).then(by_score).then(va.cached.cmp(&vb.cached)).then(vb.tie.cmp(&va.tie))
    };
    let mut order: Vec<usize> = (0..views.len()).collect();
    order.sort_by(ranked);
    let choice = |i: usize, reason: Reason| {
        let v = &views[i];
        Choice { reason, matched: v.matched, load: v.load, score: score(v, settings) }
    };
    let Some(&best) = order.first() else { return Vec::new() };
    let least_loaded = order
        .iter()
        .copied()
        .filter(|&i| views[i].available == views[best].available)
        .min_by(|&a, &b| {
            let (va, vb) = (&views[a], &views[b]);
            va.load.total_cmp(&vb.load).then(va.cached.cmp(&vb.cached)).then(vb.tie.cmp(&va.tie))
        });
    let best_match = order.iter().filter(|&&i| views[i].available == views[best].available).map(|&i| views[i].matched).fold(0.0, f64::max);
    let first_reason = match least_loaded {
        Some(least) if views[best].load >= settings.spill_load && views[least].load < settings.spill_load && least != best => {
            let at = order.iter().position(|&i| i == least).unwrap_or(0);
            order[..=at].rotate_right(1);
            Reason::Spill
        }
        // the load term outweighed a better match
        _ if views[best].matched < best_match => Reason::Spill,
        _ if views[best].matched > 0.0 => Reason::Match,
        _ => Reason::Fresh,
    };
    order.iter().enumerate().map(|(place, &i)| (i, choice(i, if place == 0 { first_reason } else { Reason::Next }))).collect()
}

/// The attempt order for a group under `session`: every replica ranked by its rendezvous
/// weight for the session key, so a session keeps its replica while that replica lives and
/// only the sessions of a lost replica move.
pub fn session_order(session: &str, names: &[&str]) -> Vec<(usize, Choice)> {
    let mut order: Vec<(usize, u64)> = names.iter().enumerate().map(|(i, name)| (i, rendezvous(session, name))).collect();
    order.sort_by(|a, b| b.1.cmp(&a.1));
    let choice = |place: usize| Choice { reason: if place == 0 { Reason::Session } else { Reason::Next }, matched: 0.0, load: 0.0, score: 0.0 };
    order.into_iter().enumerate().map(|(place, (i, _))| (i, choice(place))).collect()
}

/// The highest-random-weight hash of `key` on `replica`.
pub fn rendezvous(key: impl Hash, replica: &str) -> u64 {
    let mut h = DefaultHasher::new();
    key.hash(&mut h);
    replica.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(matched: f64, load: f64) -> ReplicaView {
        ReplicaView { matched, load, available: true, cached: 0, tie: (matched * 1000.0 + load * 10.0) as u64 }
    }

    fn first(views: &[ReplicaView]) -> (usize, Reason) {
        let order = cache_aware_order(views, &AffinitySettings::default());
        assert_eq!(order.len(), views.len(), "every replica keeps a place");
        (order[0].0, order[0].1.reason)
    }

    #[test]
    fn the_cached_replica_wins_over_a_less_loaded_one() {
        assert_eq!(first(&[view(0.0, 0.0), view(0.9, 0.5), view(0.1, 0.0)]), (1, Reason::Match));
    }

    #[test]
    fn an_overloaded_cached_replica_spills_to_the_least_loaded() {
        assert_eq!(first(&[view(0.0, 0.4), view(0.95, 0.9), view(0.0, 0.2)]), (2, Reason::Spill));
        // far over: the score alone already ranks it below
        assert_eq!(first(&[view(0.0, 0.4), view(0.95, 5.0), view(0.0, 0.2)]), (2, Reason::Spill));
        // everyone saturated: the cache still helps most
        assert_eq!(first(&[view(0.0, 1.5), view(0.95, 1.2), view(0.0, 1.0)]), (1, Reason::Match));
    }

    #[test]
    fn without_a_match_the_least_loaded_replica_goes_first() {
        assert_eq!(first(&[view(0.0, 0.5), view(0.0, 0.125), view(0.0, 0.25)]), (1, Reason::Fresh));
        // equal loads: the tie-break decides, the same way each time
        let tied = [ReplicaView { tie: 5, ..view(0.0, 0.0) }, ReplicaView { tie: 9, ..view(0.0, 0.0) }];
        assert_eq!(first(&tied), (1, Reason::Fresh));
        // ... after the replica holding fewer prefixes
        let held = [ReplicaView { cached: 3, ..tied[0] }, ReplicaView { cached: 7, ..tied[1] }];
        assert_eq!(first(&held), (0, Reason::Fresh));
    }

    #[test]
    fn an_unavailable_replica_goes_last_whatever_it_holds() {
        let dead = ReplicaView { available: false, ..view(1.0, 0.0) };
        let order = cache_aware_order(&[dead, view(0.0, 0.3), view(0.2, 0.3)], &AffinitySettings::default());
        assert_eq!(order.iter().map(|(i, _)| *i).collect::<Vec<_>>(), vec![2, 1, 0]);
        assert_eq!(order[0].1.reason, Reason::Match);
        assert_eq!(order[2].1.reason, Reason::Next);
    }

    #[test]
    fn a_load_weight_of_zero_follows_the_cache_alone() {
        let settings = AffinitySettings { load_weight: 0.0, spill_load: f64::MAX, ..Default::default() };
        let order = cache_aware_order(&[view(0.5, 0.0), view(0.6, 5.0)], &settings);
        assert_eq!(order[0].0, 1);
    }

    #[test]
    fn sessions_keep_their_replica_and_only_a_lost_replicas_sessions_move() {
        let all = ["a", "b", "c"];
        let first_of = |session: &str, names: &[&str]| names[session_order(session, names)[0].0].to_string();
        let sessions: Vec<String> = (0..300).map(|i| format!("session-{i}")).collect();
        let before: Vec<String> = sessions.iter().map(|s| first_of(s, &all)).collect();
        for name in all {
            let share = before.iter().filter(|b| *b == name).count();
            assert!((60..=140).contains(&share), "{name} got {share} of 300 sessions");
        }
        let without_b = ["a", "c"];
        for (session, was) in sessions.iter().zip(&before) {
            let now = first_of(session, &without_b);
            if was != "b" {
                assert_eq!(&now, was, "{session} moved although its replica lives");
            }
        }
        assert_eq!(session_order("x", &all)[0].1.reason, Reason::Session);
    }
}
