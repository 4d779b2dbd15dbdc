#!/usr/bin/env bash
# Browser test of the web playground and dashboard: installs Debian's chromium when missing and
# playwright-core (pinned by crates/ui/browser-test/package-lock.json) from npm, starts
# `hearth serve` on SmolLM2, and runs crates/ui/browser-test/browser.mjs against it.
# Screenshots go to target/ui-screenshots (printed at the end). Needs target/release/hearth.
set -euo pipefail
cd "$(dirname "$0")/.."

HEARTH="${HEARTH_BIN:-target/release/hearth}"
SHOTS="$PWD/target/ui-screenshots"
TOOLS="$PWD/target/ui-browser-test"
MODEL="${HEARTH_MODELS:-$HOME/.cache/hearth/models}/SmolLM2-135M-Instruct.Q4_1.gguf"

[ -x "$HEARTH" ] || { echo "check-ui: $HEARTH is missing (cargo build --release)" >&2; exit 1; }
[ -f "$MODEL" ] || { echo "check-ui: $MODEL is missing (scripts/fetch-models.sh)" >&2; exit 1; }
if ! command -v chromium >/dev/null; then
  echo "check-ui: installing Debian's chromium..."
  (apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }) \
    || { echo "check-ui: cannot install chromium with apt-get" >&2; exit 1; }
fi
mkdir -p "$TOOLS"
cp crates/ui/browser-test/package.json crates/ui/browser-test/package-lock.json crates/ui/browser-test/browser.mjs "$TOOLS/"
(cd "$TOOLS" && npm ci --no-audit --no-fund --silent)

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log="$PWD/target/ui-serve.log"
"$HEARTH" serve "$MODEL" --port "$port" --served-model-name smollm --kv-cache-memory 256MiB --max-model-len 4096 >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
  curl -sf "http://127.0.0.1:$port/health" >/dev/null && break
  kill -0 $server 2>/dev/null || { cat "$log" >&2; echo "check-ui: the server exited" >&2; exit 1; }
  sleep 0.2
done
grep -q "playground: http://127.0.0.1:$port/" "$log" || { cat "$log" >&2; echo "check-ui: the server did not print the playground's URL" >&2; exit 1; }
rm -rf "$SHOTS"
HEARTH_URL="http://127.0.0.1:$port" HEARTH_SHOTS="$SHOTS" CHROMIUM="$(command -v chromium)" node "$TOOLS/browser.mjs"
echo "check-ui: screenshots in $SHOTS"
