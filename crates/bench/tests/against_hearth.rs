//! `hearth bench` against hearth serving SmolLM2 in-process: the benchmark's token counts
//! equal the server's own usage counters, at a fixed concurrency and with Poisson arrivals.

use std::time::Duration;

use hearth_bench::{random_token_prompts, run_benchmark, BenchConfig, Load, StreamingClient};
use hearth_engine::{EngineConfig, ModelBundle};
use hearth_server::{ServedModel, Server, ServerConfig};

async fn server_counter(url: &str, name: &str) -> f64 {
    let text = reqwest::get(format!("{url}/metrics")).await.unwrap().text().await.unwrap();
    let line = text.lines().find(|l| l.starts_with(&format!("hearth:{name}{{"))).unwrap();
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_counts_match_the_server_usage() {
    let config = ServerConfig { served_model_names: vec!["smollm".into()], ..Default::default() };
    let server = Server::bind("127.0.0.1:0".parse().unwrap(), config).await.unwrap();
    let url = format!("http://{}", server.local_addr().unwrap());
    hearth_kernels::threads::init(None);
    let bundle = ModelBundle::load(&hearth_testkit::model_path(hearth_testkit::SMOLLM)).unwrap();
    let engine = EngineConfig { kv_cache_memory: Some(128 << 20), max_model_len: Some(1024), ..Default::default() };
    server.state().set_model(ServedModel::start(bundle, &engine, None).unwrap());
    tokio::spawn(server.run(std::future::pending()));

    let client = StreamingClient::new(&url, "smollm", None, Duration::from_secs(120));
    let loads = [Load::Concurrency(4), Load::Rate { per_second: 20.0, max_in_flight: Some(8) }];
    for (i, load) in loads.into_iter().enumerate() {
        let (prompt_before, generated_before) =
            (server_counter(&url, "prompt_tokens_total").await, server_counter(&url, "generation_tokens_total").await);
        let prompts = random_token_prompts(8, 40, 12, i as u64);
        let config = BenchConfig { load, duration: None, seed: 1 };
        let report = run_benchmark(&client, prompts, &config, "test".into(), |_, _| {}).await;
        assert_eq!((report.successes, report.failures), (8, 0), "{report}");
        assert_eq!(report.input_tokens, 8 * 40);
        assert_eq!(report.output_tokens, 8 * 12);
        let served_prompt = server_counter(&url, "prompt_tokens_total").await - prompt_before;
        let served_generated = server_counter(&url, "generation_tokens_total").await - generated_before;
        assert_eq!(served_prompt, report.input_tokens as f64, "prompt tokens agree with the server");
        assert_eq!(served_generated, report.output_tokens as f64, "generated tokens agree with the server");
        assert!(report.ttft_ms.median > 0.0 && report.itl_ms.median > 0.0 && report.tpot_ms.mean > 0.0);
        assert!(report.output_throughput > 0.0);
    }
}
