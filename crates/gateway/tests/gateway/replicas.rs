//! Cache-aware routing over three real hearth replicas (SmolLM2): each prompt-prefix group
//! lands on one replica, whose prefix cache then hits (read from each replica's own
//! `vllm:prefix_cache_hits_total`); killing a group's replica moves the group to another
//! replica, where it hits again, and no request is lost. The gateway reads each replica's
//! load from its `/metrics` page.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use serde_json::{json, Value};
use crate::support::*;

const GROUPS: usize = 4;

/// A request of prefix group `group`: a system prompt of about 250 tokens, a short question.
fn group_request(group: usize, turn: usize) -> Value {
    let system = format!("You are code reviewer number {group}. Read the diff, name each bug, and suggest a fix. ").repeat(12);
    json!({"model": "coder", "max_tokens": 2, "temperature": 0,
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": format!("Question {turn}: is this right?")}]})
}

async fn prefix_hits(addr: SocketAddr) -> f64 {
    let page = reqwest::get(format!("http://{addr}/metrics")).await.unwrap().text().await.unwrap();
    hearth_protocol::prometheus::first(&page, "vllm:prefix_cache_hits_total").unwrap_or_else(|| panic!("no prefix hits on {page}"))
}

/// Sends one request through the gateway; the replica that served it.
async fn send(url: &str, group: usize, turn: usize) -> String {
    let response = post(url, &group_request(group, turn)).await;
    assert_eq!(response.status(), 200, "group {group} turn {turn}");
    let backend = response.headers()["x-hearth-backend"].to_str().unwrap().to_string();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["usage"]["completion_tokens"], 2);
    backend
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefix_groups_stay_on_their_replica_and_move_when_it_dies() {
    let mut replicas = BTreeMap::new();
    let mut kills = BTreeMap::new();
    for name in ["r1", "r2", "r3"] {
        let (addr, kill, task) = start_hearth().await;
        replicas.insert(name.to_string(), addr);
        kills.insert(name.to_string(), (kill, task));
    }
    let providers: String = replicas
        .iter()
        .map(|(name, addr)| format!("  - name: {name}\n    kind: hearth\n    base_url: http://{addr}/v1\n    health: {{interval_s: 0.1}}\n    metrics_interval_s: 0.2\n"))
        .collect();
    let routes: String = replicas.keys().map(|name| format!("      - {{provider: {name}, model: smollm, order: 1}}\n")).collect();
    let mappings = format!("models:\n  - name: coder\n    balancing: cache_aware\n    routes:\n{routes}");
    let (url, _gateway, _config) = start_gateway(&format!("providers:\n{providers}"), &mappings, None).await;

    let mut home: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
    for turn in 0..3 {
        for group in 0..GROUPS {
            home.entry(group).or_default().insert(send(&url, group, turn).await);
        }
    }
    let home: BTreeMap<usize, String> = home
        .into_iter()
        .map(|(group, served)| {
            assert_eq!(served.len(), 1, "group {group} was served by {served:?}");
            (group, served.into_iter().next().unwrap())
        })
        .collect();
    let used: BTreeSet<&String> = home.values().collect();
    assert_eq!(used.len(), 3, "four new groups spread over three replicas: {home:?}");
    // the gateway reads each replica's load from hearth's own /metrics page
    let page = reqwest::get(format!("{url}/metrics")).await.unwrap().text().await.unwrap();
    for name in replicas.keys() {
        let reported = format!("hearth_gateway:backend_reported_kv_usage{{backend=\"{name}\"}}");
        assert!(page.contains(&reported), "no load read from {name}: {page}");
    }
    // every turn after a group's first reused its system prompt's blocks on that replica
    let system_blocks = 12.0;
    for (name, addr) in &replicas {
        let groups = home.values().filter(|h| *h == name).count() as f64;
        let hits = prefix_hits(*addr).await;
        assert!(hits >= groups * 2.0 * system_blocks * 16.0, "{name} holds {groups} groups but hit {hits} tokens");
    }

    // kill group 0's replica; group 0 and the others keep being served, none lost
    let dead = home[&0].clone();
    let (kill, task) = kills.remove(&dead).unwrap();
    let _ = kill.send(());
    task.await.unwrap().unwrap();
    let mut moved_to = BTreeSet::new();
    for turn in 3..6 {
        moved_to.insert(send(&url, 0, turn).await);
        for group in 1..GROUPS {
            let served = send(&url, group, turn).await;
            if home[&group] != dead {
                assert_eq!(served, home[&group], "group {group} stays where it was");
            }
        }
    }
    assert!(!moved_to.contains(&dead));
    assert_eq!(moved_to.len(), 1, "the moved group settled on one replica: {moved_to:?}");
    let new_home = moved_to.into_iter().next().unwrap();
    let before = prefix_hits(replicas[&new_home]).await;
    send(&url, 0, 6).await;
    let after = prefix_hits(replicas[&new_home]).await;
    assert!(after - before >= system_blocks * 16.0, "group 0 hits on its new replica ({before} -> {after})");
}
