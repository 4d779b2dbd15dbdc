//! `hearth check` against hearth itself, serving the default model in-process: every check
//! passes, the performance probe and the coding agents' request shapes included.

use std::time::Duration;

use hearth_check::{run_suite, CheckConfig};
use hearth_engine::{EngineConfig, ModelBundle};
use hearth_server::{ServedModel, Server, ServerConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hearth_passes_its_own_acceptance_suite() {
    let config = ServerConfig { served_model_names: vec!["qwen-coder".into()], ..Default::default() };
    let server = Server::bind("127.0.0.1:0".parse().unwrap(), config).await.unwrap();
    let addr = server.local_addr().unwrap();
    hearth_kernels::threads::init(None);
    let bundle = ModelBundle::load(&hearth_testkit::model_path(hearth_testkit::QWEN)).unwrap();
    let engine = EngineConfig { kv_cache_memory: Some(256 << 20), max_model_len: Some(4096), ..Default::default() };
    server.state().set_model(ServedModel::start(bundle, &engine, None).unwrap());
    tokio::spawn(server.run(std::future::pending()));

    let config = CheckConfig {
        url: format!("http://{addr}"),
        model: None,
        api_key: None,
        timeout: Duration::from_secs(300),
        python: "python3".into(),
        min_pass_rate: 0.5,
        skip_performance: false,
    };
    let mut seen = Vec::new();
    let report = run_suite(&config, |number, result| seen.push((number, result.name.clone()))).await;
    let markdown = report.to_markdown();
    assert!(report.passed(), "{markdown}");
    assert_eq!(report.model.as_deref(), Some("qwen-coder"));
    assert_eq!(seen.len(), 13, "progress saw every check");
    for result in &report.results {
        assert!(result.passed(), "{} failed:\n{markdown}", result.name);
        assert!(!result.validations.is_empty(), "{} validated nothing", result.name);
    }
    assert!(markdown.contains("| Endpoint | Status | Notes |"));
    assert!(markdown.contains("pass@1"));
    assert!(markdown.contains("the server generates until the context is full"), "hearth's max_tokens behaviour is named:\n{markdown}");
}
