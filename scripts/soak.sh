#!/usr/bin/env bash
# Soak test: starts `hearth serve` on a model, drives it with `hearth soak` (a mixed load, with
# the server's memory, open files, KV cache and latency sampled and judged), then stops it.
# Usage: scripts/soak.sh [MODEL] [SECONDS] [OUT]
#   defaults: the SmolLM2 test model, 3600 s, ./soak (soak.csv, soak.svg, serve.log)
set -euo pipefail
cd "$(dirname "$0")/.."
models=${HEARTH_MODELS:-$HOME/.cache/hearth/models}
model=${1:-$models/SmolLM2-135M-Instruct.Q4_1.gguf}
seconds=${2:-3600}
out=${3:-soak}
port=${HEARTH_SOAK_PORT:-18700}
mkdir -p "$out"
cargo build --release -q -p hearth-cli
./target/release/hearth serve "$model" --served-model-name soak --port "$port" \
  --max-num-seqs 8 --max-queued-requests 16 --kv-cache-memory 256MiB > "$out/serve.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
until curl -sf "http://127.0.0.1:$port/health" > /dev/null; do
  kill -0 "$pid" 2>/dev/null || { echo "hearth serve exited:" >&2; cat "$out/serve.log" >&2; exit 1; }
  sleep 1
done
./target/release/hearth soak --url "http://127.0.0.1:$port" --model soak --pid "$pid" \
  --duration "$seconds" --sample-every 5 --concurrency 8 --out "$out"
