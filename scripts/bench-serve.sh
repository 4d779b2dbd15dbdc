#!/usr/bin/env bash
# Serving speed through HTTP: hearth's engine alone (bench-engine), `hearth serve` driven by
# `hearth bench`, and llama.cpp's llama-server driven by the same `hearth bench`, at each
# concurrency (one wave of N requests, IN-token prompts, OUT generated tokens, greedy).
# Usage: [LLAMA_SERVER=/path/to/llama-server] scripts/bench-serve.sh [model.gguf] [1,4,16]
set -euo pipefail
cd "$(dirname "$0")/.."
DIR="${HEARTH_MODELS:-$HOME/.cache/hearth/models}"
MODEL="${1:-$DIR/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf}"
LEVELS="${2:-1,4,16}"; IN="${IN:-128}"; OUT="${OUT:-128}"; THREADS="${THREADS:-2}"
HEARTH=./target/release/hearth
[ -x "$HEARTH" ] || cargo build --release
OUTDIR="${OUTDIR:-/tmp/hearth-bench-serve}"; mkdir -p "$OUTDIR"
MAXN=$(echo "$LEVELS" | tr ',' '\n' | sort -n | tail -1)

wait_ready() { for _ in $(seq 600); do curl -sf "$1/health" >/dev/null && return 0; sleep 0.2; done; echo "server at $1 never became ready" >&2; exit 1; }
http_bench() { # url name
  for n in ${LEVELS//,/ }; do
    "$HEARTH" bench "$1" --concurrency "$n" --num-prompts "$n" --input-len "$IN" --output-len "$OUT" \
      --json "$OUTDIR/$2-$n.json" > "$OUTDIR/$2-$n.txt" 2>/dev/null
  done
}

"$HEARTH" bench-engine -m "$MODEL" -t "$THREADS" --concurrency "$LEVELS" --prompt-tokens "$IN" --gen-tokens "$OUT" \
  --prefix-tokens 0 --kv-cache-memory 2GiB > "$OUTDIR/engine.txt" 2>/dev/null

"$HEARTH" serve "$MODEL" -t "$THREADS" --port 8101 --kv-cache-memory 2GiB --served-model-name bench 2>"$OUTDIR/hearth-serve.log" &
PID=$!; trap 'kill $PID 2>/dev/null || true' EXIT
wait_ready http://127.0.0.1:8101
http_bench http://127.0.0.1:8101 hearth
kill $PID; wait $PID 2>/dev/null || true

if [ -n "${LLAMA_SERVER:-}" ]; then
  "$LLAMA_SERVER" -m "$MODEL" -t "$THREADS" --port 8102 -np "$MAXN" -c $((MAXN * (IN + OUT + 16))) --no-webui \
    > "$OUTDIR/llama-server.log" 2>&1 &
  PID=$!
  wait_ready http://127.0.0.1:8102
  http_bench http://127.0.0.1:8102 llama
  kill $PID; wait $PID 2>/dev/null || true
fi

python3 - "$OUTDIR" "$LEVELS" <<'PY'
import json, os, re, sys
out, levels = sys.argv[1], [int(x) for x in sys.argv[2].split(",")]
engine = {}
for line in open(os.path.join(out, "engine.txt")):
    m = re.match(r"\|\s*(\d+)\s*\|\s*([\d.]+)", line)
    if m: engine[int(m.group(1))] = float(m.group(2))
def load(name, n):
    p = os.path.join(out, f"{name}-{n}.json")
    return json.load(open(p))[0] if os.path.exists(p) else None
print("| N | engine gen tok/s | HTTP gen tok/s | HTTP/engine | HTTP TTFT p50 ms | llama-server gen tok/s | llama TTFT p50 ms | hearth/llama |")
print("|---|---|---|---|---|---|---|---|")
for n in levels:
    h, l, e = load("hearth", n), load("llama", n), engine.get(n)
    ratio = f"{h['output_throughput']/e:.3f}" if h and e else "-"
    lt = f"{l['output_throughput']:.1f}" if l else "-"
    lf = f"{l['ttft_ms']['median']:.0f}" if l else "-"
    hl = f"{h['output_throughput']/l['output_throughput']:.2f}" if h and l else "-"
    print(f"| {n} | {e or '-'} | {h['output_throughput']:.1f} | {ratio} | {h['ttft_ms']['median']:.0f} | {lt} | {lf} | {hl} |")
PY
