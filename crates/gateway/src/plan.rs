//! Which backends a request tries, in order: the model's routes by `order`, routes of equal
//! order balanced (least outstanding requests, or weighted random), then the routes of its
//! fallback models. Available backends come first; the rest stay as a last resort.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use rand::Rng;

use crate::config::{Balancing, GatewayConfig, ModelMapping, Route};
use crate::upstream::Backend;

/// One backend and the model name it knows.
#[derive(Clone)]
pub struct Candidate {
    pub backend: Arc<Backend>,
    pub upstream_model: String,
}

/// The attempt order for `mapping` (its fallbacks included).
pub fn candidates(config: &GatewayConfig, backends: &[Arc<Backend>], mapping: &ModelMapping) -> Vec<Candidate> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    collect(config, backends, mapping, &mut seen, &mut out);
    let now = Instant::now();
    let (available, rest): (Vec<_>, Vec<_>) = out.into_iter().partition(|c| c.backend.is_available(now));
    available.into_iter().chain(rest).collect()
}

fn collect<'a>(
    config: &'a GatewayConfig,
    backends: &[Arc<Backend>],
    mapping: &'a ModelMapping,
    seen: &mut HashSet<&'a str>,
    out: &mut Vec<Candidate>,
) {
    if !seen.insert(mapping.name.as_str()) {
        return;
    }
    let mut routes: Vec<(u32, &Route)> =
        mapping.routes.iter().enumerate().map(|(i, r)| (r.order.unwrap_or(i as u32), r)).collect();
    routes.sort_by_key(|(order, _)| *order);
    let mut start = 0;
    while start < routes.len() {
        let end = start + routes[start..].iter().take_while(|(o, _)| *o == routes[start].0).count();
        let group: Vec<Candidate> = routes[start..end].iter().filter_map(|(_, r)| candidate(backends, r)).collect();
        let weights: Vec<f64> = routes[start..end].iter().map(|(_, r)| r.weight).collect();
        out.extend(balance(group, &weights, mapping.balancing));
        start = end;
    }
    for name in &mapping.fallbacks {
        if let Some(next) = config.model(name) {
            collect(config, backends, next, seen, out);
        }
    }
}

fn candidate(backends: &[Arc<Backend>], route: &Route) -> Option<Candidate> {
    let backend = backends.iter().find(|b| b.name() == route.provider)?.clone();
    Some(Candidate { backend, upstream_model: route.model.clone() })
}

/// Orders one group of equal routes: the chosen one first, the others after it.
fn balance(mut group: Vec<Candidate>, weights: &[f64], balancing: Balancing) -> Vec<Candidate> {
    if group.len() < 2 {
        return group;
    }
    let first = match balancing {
        Balancing::LeastOutstanding => {
            // fewest in flight per unit of weight; ties broken at random to spread load
            let load = |i: usize| group[i].backend.outstanding.load(Ordering::Acquire) as f64 / weights[i];
            let best = (0..group.len()).map(load).fold(f64::INFINITY, f64::min);
            let tied: Vec<usize> = (0..group.len()).filter(|&i| load(i) <= best).collect();
            tied[rand::rng().random_range(0..tied.len())]
        }
        Balancing::Weighted => {
            let total: f64 = weights.iter().sum();
            let mut pick = rand::rng().random::<f64>() * total;
            weights.iter().position(|&w| {
                pick -= w;
                pick < 0.0
            }).unwrap_or(0)
        }
    };
    group.swap(0, first);
    group
}
