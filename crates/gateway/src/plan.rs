//! Which backends a request tries, in order: the model's routes by `order`, routes of equal
//! order balanced (least outstanding requests, weighted random, cache affinity or session),
//! then the routes of its fallback models. Available backends come first; the rest stay as a
//! last resort.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use rand::Rng;
use serde_json::Value;

use crate::affinity::{PrefixChain, PrefixIndex};
use crate::choose::{cache_aware_order, rendezvous, session_order, Choice, ReplicaView};
use crate::config::{Balancing, GatewayConfig, ModelMapping, Route};
use crate::load::load_score;
use crate::upstream::Backend;
use crate::Gateway;

/// One backend and the model name it knows.
#[derive(Clone)]
pub struct Candidate {
    pub backend: Arc<Backend>,
    /// The backend's position in the gateway's list (its number in the prefix index).
    pub backend_index: usize,
    pub upstream_model: String,
    /// Under `cache_aware` or `session`: how this candidate was scored.
    pub choice: Option<Choice>,
    /// Under `cache_aware`: the prompt's prefix chain, recorded for the backend tried.
    pub chain: Option<Arc<PrefixChain>>,
}

/// What balancing may look at besides the backends: the request and its session key.
pub struct RequestView<'a> {
    pub body: &'a Value,
    pub session: Option<String>,
}

/// What planning reads.
struct Planner<'a> {
    config: &'a GatewayConfig,
    backends: &'a [Arc<Backend>],
    prefixes: &'a PrefixIndex,
    rotation: &'a AtomicUsize,
    request: &'a RequestView<'a>,
}

/// The attempt order for `mapping` (its fallbacks included).
pub fn candidates(gw: &Gateway, mapping: &ModelMapping, request: &RequestView) -> Vec<Candidate> {
    let planner = Planner { config: &gw.config, backends: &gw.backends, prefixes: &gw.prefixes, rotation: &gw.rotation, request };
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    planner.collect(mapping, &mut seen, &mut out);
    let now = Instant::now();
    let (available, rest): (Vec<_>, Vec<_>) = out.into_iter().partition(|c| c.backend.is_available(now));
    available.into_iter().chain(rest).collect()
}

impl<'a> Planner<'a> {
    fn collect(&self, mapping: &'a ModelMapping, seen: &mut HashSet<&'a str>, out: &mut Vec<Candidate>) {
        if !seen.insert(mapping.name.as_str()) {
            return;
        }
        let routes = mapping.ordered_routes();
        let mut start = 0;
        while start < routes.len() {
            let end = start + routes[start..].iter().take_while(|(o, _)| *o == routes[start].0).count();
            let group: Vec<(Candidate, f64)> = routes[start..end].iter().filter_map(|(_, r)| self.candidate(r).map(|c| (c, r.weight))).collect();
            out.extend(self.balance(group, mapping));
            start = end;
        }
        for name in &mapping.fallbacks {
            if let Some(next) = self.config.model(name) {
                self.collect(next, seen, out);
            }
        }
    }

    fn candidate(&self, route: &Route) -> Option<Candidate> {
        let backend_index = self.backends.iter().position(|b| b.name() == route.provider)?;
        let backend = self.backends[backend_index].clone();
        Some(Candidate { backend, backend_index, upstream_model: route.model.clone(), choice: None, chain: None })
    }

    /// Orders one group of equal routes (each with its weight): the chosen one first.
    fn balance(&self, group: Vec<(Candidate, f64)>, mapping: &ModelMapping) -> Vec<Candidate> {
        if group.len() < 2 {
            return group.into_iter().map(|(c, _)| c).collect();
        }
        match (mapping.balancing, &self.request.session) {
            (Balancing::CacheAware, _) => self.by_cache_affinity(group, mapping),
            (Balancing::Session, Some(session)) => {
                let names: Vec<&str> = group.iter().map(|(c, _)| c.backend.name()).collect();
                let order = session_order(session, &names);
                arrange(group.into_iter().map(|(c, _)| c).collect(), order)
            }
            (Balancing::Weighted, _) => weighted_first(group),
            (Balancing::RoundRobin, _) => {
                let first = self.rotation.fetch_add(1, Ordering::Relaxed) % group.len();
                let mut group: Vec<Candidate> = group.into_iter().map(|(c, _)| c).collect();
                group.rotate_left(first);
                group
            }
            (Balancing::LeastOutstanding | Balancing::Session, _) => least_outstanding_first(group),
        }
    }

    /// `cache_aware`: scores each replica by the share of the prompt it holds and its load.
    fn by_cache_affinity(&self, group: Vec<(Candidate, f64)>, mapping: &ModelMapping) -> Vec<Candidate> {
        let settings = &mapping.affinity;
        let chain = Arc::new(PrefixChain::of_request(&mapping.name, self.request.body, settings.chunk_chars));
        let numbers: Vec<usize> = group.iter().map(|(c, _)| c.backend_index).collect();
        let matched = self.prefixes.matched_chunks(&chain, &numbers);
        let now = Instant::now();
        let head = chain.hashes.first().copied().unwrap_or(0);
        let views: Vec<ReplicaView> = group
            .iter()
            .zip(&matched)
            .map(|((c, weight), &chunks)| {
                let backend = &c.backend;
                let report = backend.reported.fresh(backend.report_max_age());
                let outstanding = backend.outstanding.load(Ordering::Acquire);
                ReplicaView {
                    matched: if chain.is_empty() { 0.0 } else { chunks as f64 / chain.len() as f64 },
                    load: load_score(outstanding, report, settings.saturation_requests) / weight,
                    available: backend.is_available(now),
                    cached: self.prefixes.held(c.backend_index),
                    tie: rendezvous(head, backend.name()),
                }
            })
            .collect();
        let order = cache_aware_order(&views, settings);
        let mut candidates = arrange(group.into_iter().map(|(c, _)| c).collect(), order);
        for c in &mut candidates {
            c.chain = Some(chain.clone());
        }
        if let Some(first) = candidates.first() {
            let choice = first.choice.map(|c| c.to_string()).unwrap_or_default();
            tracing::debug!(model = %mapping.name, backend = first.backend.name(), chunks = chain.len(), "cache-aware choice: {choice}");
        }
        candidates
    }
}

/// Puts `group` in the order given, each candidate with its choice.
fn arrange(group: Vec<Candidate>, order: Vec<(usize, Choice)>) -> Vec<Candidate> {
    let mut slots: Vec<Option<Candidate>> = group.into_iter().map(Some).collect();
    order
        .into_iter()
        .filter_map(|(i, choice)| slots.get_mut(i).and_then(Option::take).map(|c| Candidate { choice: Some(choice), ..c }))
        .collect()
}

/// Fewest in flight per unit of weight first; ties broken at random to spread load.
fn least_outstanding_first(group: Vec<(Candidate, f64)>) -> Vec<Candidate> {
    let load = |i: usize| group[i].0.backend.outstanding.load(Ordering::Acquire) as f64 / group[i].1;
    let best = (0..group.len()).map(load).fold(f64::INFINITY, f64::min);
    let tied: Vec<usize> = (0..group.len()).filter(|&i| load(i) <= best).collect();
    let first = tied[rand::rng().random_range(0..tied.len())];
    first_at(group, first)
}

/// One picked at random in proportion to its weight first.
fn weighted_first(group: Vec<(Candidate, f64)>) -> Vec<Candidate> {
    let total: f64 = group.iter().map(|(_, w)| w).sum();
    let mut pick = rand::rng().random::<f64>() * total;
    let first = group.iter().position(|(_, w)| {
        pick -= w;
        pick < 0.0
    });
    first_at(group, first.unwrap_or(0))
}

fn first_at(group: Vec<(Candidate, f64)>, first: usize) -> Vec<Candidate> {
    let mut group: Vec<Candidate> = group.into_iter().map(|(c, _)| c).collect();
    group.swap(0, first);
    group
}
