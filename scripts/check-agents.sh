#!/usr/bin/env bash
# Real coding agents against `hearth serve` on the default model: Claude Code (Messages API)
# and Codex CLI (Responses API), pinned by scripts/agents/package-lock.json and installed from
# npm (their native binaries come in the registry packages). Each runs one scripted task
# ("create hello.py") through a recording proxy (scripts/agents/record_proxy.py); the check is
# the protocol: every request the agent makes is answered without a 4xx/5xx, and the agent
# reaches its end (exit 0). Whether the weak 1.5B model gets the file right is printed, not
# judged. Logs and the recorded requests go to target/agents/.
#
# The agents run with a short system prompt (Claude Code: --system-prompt and only the Write
# tool; Codex: model_instructions_file, and no web search, goals, apps or subagents) so that a run takes tens of seconds on 2 cores instead
# of the 3+ minutes that their 10-12k-token default prompts take to prefill on a CPU;
# AGENTS_FULL=1 runs them with their default prompts and tools (for time-to-first-token
# figures). Needs target/release/hearth and the default model (scripts/fetch-models.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

HEARTH="${HEARTH_BIN:-target/release/hearth}"
MODEL="${HEARTH_MODELS:-$HOME/.cache/hearth/models}/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
OUT="$PWD/target/agents"
TASK="Create the file hello.py containing: print('hello')"

[ -x "$HEARTH" ] || { echo "check-agents: $HEARTH is missing (cargo build --release)" >&2; exit 1; }
[ -f "$MODEL" ] || { echo "check-agents: $MODEL is missing (scripts/fetch-models.sh)" >&2; exit 1; }
mkdir -p "$OUT"
cp scripts/agents/package.json scripts/agents/package-lock.json "$OUT/"
(cd "$OUT" && npm ci --no-audit --no-fund --silent)
claude="$OUT/node_modules/.bin/claude"
codex="$OUT/node_modules/.bin/codex"
# Claude Code's postinstall puts its native binary in place; run it where npm skipped it.
"$claude" --version >/dev/null 2>&1 || (cd "$OUT/node_modules/@anthropic-ai/claude-code" && node install.cjs)
echo "check-agents: $("$claude" --version), $("$codex" --version 2>/dev/null | tail -1)"

work=$(mktemp -d "$OUT/run.XXXXXX")
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
"$HEARTH" serve "$MODEL" --port "$port" --served-model-name qwen --kv-cache-memory 1GiB >"$OUT/serve.log" 2>&1 &
server=$!
proxy=""
trap 'kill $server $proxy 2>/dev/null; wait 2>/dev/null || true' EXIT
for _ in $(seq 1 900); do
  curl -sf "http://127.0.0.1:$port/health" >/dev/null && break
  kill -0 $server 2>/dev/null || { cat "$OUT/serve.log" >&2; echo "check-agents: the server exited" >&2; exit 1; }
  sleep 0.2
done

# Starts a recording proxy in front of the server writing to $1; sets $proxy_url.
start_proxy() {
  [ -n "$proxy" ] && kill "$proxy" 2>/dev/null && wait "$proxy" 2>/dev/null || true
  rm -f "$1" "$work/proxy.port"
  python3 scripts/agents/record_proxy.py "http://127.0.0.1:$port" "$1" "$work/proxy.port" &
  proxy=$!
  for _ in $(seq 1 100); do [ -s "$work/proxy.port" ] && break; sleep 0.1; done
  proxy_url="http://127.0.0.1:$(cat "$work/proxy.port")"
}

failed=0
# Prints the agent's requests; fails when it made none or any got a 4xx/5xx.
judge() {
  local agent=$1 log=$2 rc=$3 project=$4
  python3 - "$agent" "$log" "$rc" "$project" <<'EOF' || failed=1
import json, os, sys
agent, log, rc, project = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
entries = [json.loads(line) for line in open(log)] if os.path.exists(log) else []
for i, e in enumerate(entries):
    print(f"  {agent} request {i + 1}: {e['method']} {e['path']} -> {e['status']}, first token {e['first_delta_s']} s, total {e['total_s']} s"
          + (f"\n    error: {json.dumps(e['error'])[:400]}" if e["status"] >= 400 else ""))
bad = [e for e in entries if e["status"] >= 400]
wrote = os.path.exists(os.path.join(project, "hello.py"))
print(f"  {agent}: {len(entries)} requests, {len(bad)} refused, exit {rc}; hello.py {'written' if wrote else 'not written'} (not judged)")
sys.exit(0 if entries and not bad and rc == 0 else 1)
EOF
}

# Claude Code, headless, against the Messages API.
project="$work/claude-project"
mkdir -p "$project" "$work/claude-home"
start_proxy "$OUT/claude-code.jsonl"
claude_args=(--model qwen --tools Write --system-prompt "You are a coding agent. To create a file, call the Write tool with file_path and content. When the file is written, reply: done.")
[ -n "${AGENTS_FULL:-}" ] && claude_args=(--model qwen)
rc=0
(cd "$project" && HOME="$work/claude-home" IS_SANDBOX=1 ANTHROPIC_BASE_URL="$proxy_url" ANTHROPIC_API_KEY=sk-hearth \
  ANTHROPIC_MODEL=qwen ANTHROPIC_DEFAULT_HAIKU_MODEL=qwen ANTHROPIC_SMALL_FAST_MODEL=qwen DISABLE_TELEMETRY=1 \
  CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 timeout 900 "$claude" -p "$TASK" "${claude_args[@]}" --dangerously-skip-permissions \
  >"$OUT/claude-code.out" 2>&1) || rc=$?
judge "Claude Code" "$OUT/claude-code.jsonl" "$rc" "$project"

# Codex CLI, non-interactive, against the Responses API.
project="$work/codex-project"
mkdir -p "$project" "$work/codex-home"
start_proxy "$OUT/codex.jsonl"
echo "You are a coding agent. Run shell commands with exec_command to do the task, then say done." >"$work/instructions.md"
{
  echo 'model = "qwen"'
  echo 'model_provider = "hearth"'
  if [ -z "${AGENTS_FULL:-}" ]; then
    echo "model_instructions_file = \"$work/instructions.md\""
    echo 'web_search = "disabled"'
    printf '[features]\ngoals = false\napps = false\n[agents]\nenabled = false\n'
  fi
  echo '[model_providers.hearth]'
  echo 'name = "hearth"'
  echo "base_url = \"$proxy_url/v1\""
  echo 'env_key = "HEARTH_API_KEY"'
  echo 'wire_api = "responses"'
} >"$work/codex-home/config.toml"
rc=0
(cd "$project" && CODEX_HOME="$work/codex-home" HEARTH_API_KEY=sk-hearth timeout 900 "$codex" exec --skip-git-repo-check \
  -s workspace-write "$TASK" </dev/null >"$OUT/codex.out" 2>&1) || rc=$?
judge "Codex" "$OUT/codex.jsonl" "$rc" "$project"

if (( failed )); then
  echo "check-agents: FAILED (agent output in $OUT/claude-code.out and $OUT/codex.out, server log $OUT/serve.log)" >&2
  exit 1
fi
echo "check-agents: every request of both agents was answered; logs in $OUT"
