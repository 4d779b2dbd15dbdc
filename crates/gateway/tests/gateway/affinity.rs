//! Cache-aware and session balancing over three stub replicas: prefix groups stick to one
//! replica each and spread over the replicas; an overloaded replica (by its `/metrics`)
//! spills; a dead one is skipped without losing a request; sessions keep their replica;
//! round robin takes each replica in turn.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use crate::support::*;

async fn three_replicas(balancing: &str) -> (String, Vec<Arc<Stub>>, hearth_testkit::ScratchDir) {
    let mut stubs = Vec::new();
    for name in ["r1", "r2", "r3"] {
        stubs.push(start_stub(name, false).await);
    }
    let extra = "    health: {interval_s: 0.1}\n    metrics_interval_s: 0.1\n";
    let providers = format!("providers:\n{}", stubs.iter().map(|s| provider_yaml(s, false, extra)).collect::<String>());
    let routes: String = stubs.iter().map(|s| format!("      - {{provider: {}, model: m, order: 1}}\n", s.name)).collect();
    let mappings = format!("models:\n  - name: coder\n    balancing: {balancing}\n    routes:\n{routes}");
    let (url, _gateway, config) = start_gateway(&providers, &mappings, None).await;
    (url, stubs, config)
}

/// A request of prefix group `group`: a long shared system prompt, a short user turn.
fn group_request(group: usize, turn: usize) -> Value {
    let system = format!("You are reviewer {group} of the hearth project. Review the code carefully and explain. ").repeat(20);
    json!({"model": "coder", "messages": [{"role": "system", "content": system}, {"role": "user", "content": format!("Question {turn}?")}]})
}

/// Sends one request; the backend that answered and the route header.
async fn send(url: &str, body: &Value, session: Option<&str>) -> (String, String) {
    let mut request = reqwest::Client::new().post(format!("{url}/v1/chat/completions")).json(body);
    if let Some(s) = session {
        request = request.header("x-session-id", s);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    let header = |name: &str| response.headers().get(name).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let answer = (header("x-hearth-backend"), header("x-hearth-route"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], WORDS.concat());
    answer
}

/// Four groups, five turns each, interleaved: the replica each group went to.
async fn settle_groups(url: &str) -> HashMap<usize, String> {
    let mut seen: HashMap<usize, BTreeSet<String>> = HashMap::new();
    for turn in 0..5 {
        for group in 0..4 {
            let (backend, route) = send(url, &group_request(group, turn), None).await;
            let expected = if turn == 0 { "reason=fresh" } else { "reason=match" };
            assert!(route.starts_with(expected), "group {group} turn {turn}: {route}");
            seen.entry(group).or_default().insert(backend);
        }
    }
    seen.into_iter()
        .map(|(group, backends)| {
            assert_eq!(backends.len(), 1, "group {group} went to {backends:?}");
            (group, backends.into_iter().next().unwrap())
        })
        .collect()
}

fn stub<'a>(stubs: &'a [Arc<Stub>], name: &str) -> &'a Stub {
    stubs.iter().find(|s| s.name == name).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefix_groups_stick_to_one_replica_each_and_spread() {
    let (url, stubs, _config) = three_replicas("cache_aware").await;
    let placement = settle_groups(&url).await;
    let used: BTreeSet<&String> = placement.values().collect();
    assert_eq!(used.len(), 3, "four new groups spread over the three replicas: {placement:?}");
    assert_eq!(stubs.iter().map(|s| s.count()).sum::<usize>(), 20);
    let page = reqwest::get(format!("{url}/metrics")).await.unwrap().text().await.unwrap();
    let decisions = |reason: &str| -> f64 {
        hearth_protocol::prometheus::samples(&page)
            .filter(|s| s.name == "hearth_gateway:route_decisions_total" && s.label("reason").as_deref() == Some(reason))
            .map(|s| s.value)
            .sum()
    };
    assert_eq!((decisions("fresh"), decisions("match")), (4.0, 16.0), "{page}");
    assert!(page.contains("hearth_gateway:backend_reported_waiting{backend=\"r1\"} 0"), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overloaded_cached_replica_spills_to_the_least_loaded() {
    let (url, stubs, _config) = three_replicas("cache_aware").await;
    let placement = settle_groups(&url).await;
    let home = &placement[&0];
    stub(&stubs, home).waiting.store(40, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(500)).await; // a few scrapes
    let (backend, route) = send(&url, &group_request(0, 9), None).await;
    assert_ne!(&backend, home, "the overloaded replica was passed over");
    assert!(route.starts_with("reason=spill"), "{route}");
    // the other groups' replicas are not overloaded: they keep their groups
    for group in 1..4 {
        if &placement[&group] != home {
            assert_eq!(send(&url, &group_request(group, 9), None).await.0, placement[&group]);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_replica_is_skipped_and_its_group_moves_without_a_lost_request() {
    let (url, stubs, _config) = three_replicas("cache_aware").await;
    let placement = settle_groups(&url).await;
    let home = &placement[&0];
    stub(&stubs, home).set(Behaviour::Status(503));
    *stub(&stubs, home).healthy.lock().unwrap() = false;
    // until its probe fails, requests may still meet the dead replica first: they are retried
    let mut moved_to = BTreeSet::new();
    for turn in 10..15 {
        moved_to.insert(send(&url, &group_request(0, turn), None).await.0);
    }
    assert!(!moved_to.contains(home), "{moved_to:?}");
    tokio::time::sleep(Duration::from_millis(400)).await; // its probe has failed by now
    let (new_home, _) = send(&url, &group_request(0, 15), None).await;
    for turn in 16..20 {
        let (backend, route) = send(&url, &group_request(0, turn), None).await;
        assert_eq!(backend, new_home, "the moved group sticks to its new replica");
        assert!(route.starts_with("reason=match"), "{route}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_keep_their_replica_by_header_or_user_field() {
    let (url, stubs, _config) = three_replicas("session").await;
    let body = chat("coder", false);
    let mut home = HashMap::new();
    for i in 0..30 {
        let session = format!("session-{i}");
        let (first, route) = send(&url, &body, Some(&session)).await;
        assert!(route.starts_with("reason=session"), "{route}");
        for _ in 0..2 {
            assert_eq!(send(&url, &body, Some(&session)).await.0, first);
        }
        home.insert(session, first);
    }
    let used: BTreeSet<&String> = home.values().collect();
    assert!(used.len() >= 2, "30 sessions all went to {used:?}");
    // the `user` field names a session too, and the same one as the header
    let with_user = json!({"model": "coder", "user": "session-3", "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(send(&url, &with_user, None).await.0, home["session-3"]);

    // a lost replica moves only its own sessions
    let lost = home["session-0"].clone();
    stub(&stubs, &lost).set(Behaviour::Status(503));
    *stub(&stubs, &lost).healthy.lock().unwrap() = false;
    tokio::time::sleep(Duration::from_millis(400)).await;
    for (session, was) in &home {
        let now = send(&url, &body, Some(session)).await.0;
        if *was == lost {
            assert_ne!(now, lost);
        } else {
            assert_eq!(&now, was, "{session} moved although its replica lives");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_takes_each_replica_in_turn() {
    let (url, stubs, _config) = three_replicas("round_robin").await;
    let mut order = Vec::new();
    for turn in 0..6 {
        order.push(send(&url, &group_request(0, turn), None).await.0);
    }
    assert_eq!(order[..3], order[3..], "{order:?}");
    assert_eq!(order[..3].iter().collect::<BTreeSet<_>>().len(), 3, "{order:?}");
    assert!(stubs.iter().all(|s| s.count() == 2));
}
