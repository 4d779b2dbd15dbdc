//! Strict configuration loading (errors name file, line and field), `--check-config`'s
//! rules, and the LiteLLM export -> import round trip.

use std::path::PathBuf;

use hearth_gateway::config::{GatewayConfig, MAPPINGS_FILE, PROVIDERS_FILE};
use hearth_gateway::litellm;
use hearth_testkit::ScratchDir;

const PROVIDERS: &str = "providers:
  - name: local-vllm
    kind: openai
    base_url: http://127.0.0.1:8001/v1
    api_key_env: VLLM_API_KEY
    timeout_s: 120
    max_concurrent: 64
  - name: ollama
    kind: ollama
    base_url: http://127.0.0.1:11434
";

const MAPPINGS: &str = "models:
  - name: qwen-coder
    aliases: [Qwen/Qwen2.5-Coder-7B-Instruct-AWQ]
    routes:
      - provider: local-vllm
        model: Qwen/Qwen2.5-Coder-7B-Instruct-AWQ
      - provider: ollama
        model: qwen2.5-coder:7b
    context_window_fallback: qwen-coder-long
  - name: qwen-coder-long
    routes:
      - provider: ollama
        model: qwen2.5-coder:7b-32k
";

/// A config folder holding these two files, removed when dropped.
fn dir_with(providers: &str, mappings: &str) -> ScratchDir {
    let dir = ScratchDir::new(&format!("gw-config-{}", rand_suffix()));
    std::fs::create_dir_all(dir.path()).unwrap();
    std::fs::write(dir.path().join(PROVIDERS_FILE), providers).unwrap();
    std::fs::write(dir.path().join(MAPPINGS_FILE), mappings).unwrap();
    dir
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn error(providers: &str, mappings: &str) -> String {
    GatewayConfig::load(dir_with(providers, mappings).path()).unwrap_err().to_string()
}

#[test]
fn the_documented_example_loads() {
    let config = GatewayConfig::load(dir_with(PROVIDERS, MAPPINGS).path()).unwrap();
    assert_eq!(config.providers.providers.len(), 2);
    assert_eq!(config.model("Qwen/Qwen2.5-Coder-7B-Instruct-AWQ").unwrap().name, "qwen-coder");
    assert_eq!(config.provider("ollama").unwrap().timeout_s, 600.0, "defaults apply");
}

#[test]
fn faults_name_the_file_line_and_field() {
    let e = error(&PROVIDERS.replace("timeout_s: 120", "timeout_s: 120\n    colour: blue"), MAPPINGS);
    assert!(e.contains("providers.yaml:") && e.contains("unknown field `colour`"), "{e}");
    assert!(e.contains("providers.yaml:7:") && e.contains("providers[0]"), "{e}");

    let e = error(&PROVIDERS.replace("timeout_s: 120", "timeout_s: soon"), MAPPINGS);
    assert!(e.contains("providers.yaml:6:") && e.contains("timeout_s"), "{e}");

    let e = error(PROVIDERS, &MAPPINGS.replace("provider: ollama\n        model: qwen2.5-coder:7b\n", "provider: olama\n        model: qwen2.5-coder:7b\n"));
    assert!(e.contains("model-mappings.yaml:7:") && e.contains("models[0].routes[1].provider") && e.contains("`olama`"), "{e}");

    let e = error(&PROVIDERS.replace("kind: ollama", "kind: llamafile"), MAPPINGS);
    assert!(e.contains("providers.yaml:9") && e.contains("llamafile"), "{e}");

    let e = error(PROVIDERS, &MAPPINGS.replace("context_window_fallback: qwen-coder-long", "context_window_fallback: nowhere"));
    assert!(e.contains("model-mappings.yaml:9:") && e.contains("context_window_fallback"), "{e}");

    let e = error(&PROVIDERS.replace("name: ollama", "name: local-vllm"), MAPPINGS);
    assert!(e.contains("defined twice"), "{e}");
}

#[test]
fn cache_aware_and_session_balancing_are_checked() {
    let balanced = MAPPINGS.replace("    context_window_fallback: qwen-coder-long\n", "    context_window_fallback: qwen-coder-long\n    balancing: cache_aware\n");
    let e = error(PROVIDERS, &balanced);
    assert!(e.contains("models[0].balancing: `cache_aware` balances routes of equal `order`"), "{e}");
    let grouped = balanced.replace("model: Qwen/Qwen2.5-Coder-7B-Instruct-AWQ\n", "model: Qwen/Qwen2.5-Coder-7B-Instruct-AWQ\n        order: 1\n")
        .replace("model: qwen2.5-coder:7b\n", "model: qwen2.5-coder:7b\n        order: 1\n");
    let config = GatewayConfig::load(dir_with(PROVIDERS, &grouped).path()).unwrap();
    assert_eq!(config.model("qwen-coder").unwrap().affinity.chunk_chars, 256, "defaults apply");
    let tuned = grouped.replace("    balancing: cache_aware\n", "    balancing: session\n    affinity: {session_header: 'bad header', chunk_chars: 64}\n");
    let e = error(PROVIDERS, &tuned);
    assert!(e.contains("models[0].affinity: session_header is not a valid header name"), "{e}");
    let e = error(PROVIDERS, &grouped.replace("    balancing: cache_aware\n", "    balancing: cache_aware\n    affinity: {chunk_chars: 0}\n"));
    assert!(e.contains("chunk_chars must be at least 1"), "{e}");
}

#[test]
fn fallback_cycles_are_refused() {
    let cyclic = format!("{MAPPINGS}    fallbacks: [qwen-coder]\n");
    let e = error(PROVIDERS, &cyclic);
    assert!(e.contains("fallback cycle: qwen-coder -> qwen-coder-long -> qwen-coder"), "{e}");
}

#[test]
fn litellm_export_then_import_gives_the_same_configuration() {
    let config = GatewayConfig::load(dir_with(PROVIDERS, MAPPINGS).path()).unwrap();
    let yaml = litellm::export(&config).unwrap();
    assert!(yaml.contains("model_list:") && yaml.contains("ollama_chat/qwen2.5-coder:7b") && yaml.contains("os.environ/VLLM_API_KEY"), "{yaml}");
    let (providers, mappings) = litellm::import(&yaml).unwrap();
    assert_eq!(providers.providers, config.providers.providers);
    let strip = |m: &hearth_gateway::config::MappingsFile| {
        m.models.iter().map(|m| (m.name.clone(), m.aliases.clone(), m.fallbacks.clone(), m.context_window_fallback.clone(),
            m.routes.iter().map(|r| (r.provider.clone(), r.model.clone(), r.weight)).collect::<Vec<_>>())).collect::<Vec<_>>()
    };
    assert_eq!(strip(&mappings), strip(&config.mappings));
}

#[test]
fn a_plain_litellm_config_imports() {
    let yaml = "model_list:
  - model_name: coder
    litellm_params: {model: hosted_vllm/Qwen/Qwen2.5-Coder-7B-Instruct-AWQ, api_base: 'http://10.0.0.5:8000/v1'}
  - model_name: coder
    litellm_params: {model: ollama/qwen2.5-coder:7b, api_base: 'http://10.0.0.6:11434'}
router_settings:
  fallbacks: [{coder: [small]}]
  model_group_alias: {gpt-4o: coder}
";
    let (providers, mappings) = litellm::import(yaml).unwrap();
    assert_eq!(providers.providers[0].name, "openai-10.0.0.5-8000");
    assert_eq!(providers.providers[1].kind, hearth_gateway::config::ProviderKind::Ollama);
    assert_eq!(mappings.models[0].aliases, vec!["gpt-4o".to_string()]);
    assert_eq!(mappings.models[0].routes.len(), 2);
    assert_eq!(mappings.models[0].fallbacks, vec!["small".to_string()]);
    // written out, the files are checked like any others: `small` is not defined
    let dir = dir_with(&serde_yaml_ng::to_string(&providers).unwrap(), &serde_yaml_ng::to_string(&mappings).unwrap());
    let e = GatewayConfig::load(dir.path()).unwrap_err().to_string();
    assert!(e.contains("models[0].fallbacks: `small` is not a model name"), "{e}");
}

fn shipped_config_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../config")
}

#[test]
fn the_shipped_example_config_loads() {
    let config = GatewayConfig::load(&shipped_config_dir()).unwrap();
    assert_eq!(config.model("Qwen/Qwen2.5-Coder-7B-Instruct-AWQ").unwrap().name, "qwen-coder");
}

#[test]
fn the_shipped_schemas_match_the_validator_types() {
    for (name, generated) in hearth_gateway::config::schemas() {
        let shipped = std::fs::read_to_string(shipped_config_dir().join("schema").join(name)).unwrap();
        assert_eq!(shipped, generated, "{name} is stale: run `hearth gateway schema`");
    }
}
