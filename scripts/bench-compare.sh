#!/usr/bin/env bash
# Side-by-side speed of hearth and llama.cpp (llama-bench) on the test models, 2 threads,
# idle and with a competing busy process; prints t/s and hearth/llama.cpp ratios.
# Usage: [KERNELS=scalar|avx2|avx2-vnni|avx512] [LOADS="idle busy"] LLAMA_BENCH=/path/to/llama-bench \
#          scripts/bench-compare.sh [pp_tokens] [tg_tokens]
# KERNELS is hearth's kernel path (HEARTH_KERNELS; default: the best this CPU has); build
# llama-bench for the same instruction set to compare like with like.
set -euo pipefail
cd "$(dirname "$0")/.."
PP="${1:-512}"; TG="${2:-128}"; THREADS="${THREADS:-2}"; REPS="${REPS:-3}"
DIR="${HEARTH_MODELS:-$HOME/.cache/hearth/models}"
HEARTH=./target/release/hearth
[ -x "$HEARTH" ] || cargo build --release
MODELS=("SmolLM2-135M-Instruct.Q4_1.gguf" "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf")

export HEARTH_KERNELS="${KERNELS:-${HEARTH_KERNELS:-}}"
echo "hearth kernels: ${HEARTH_KERNELS:-best}; llama-bench: ${LLAMA_BENCH:-none}; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
echo

hearth_run() { # model -> "pp tg"
  "$HEARTH" bench-model -m "$DIR/$1" -p "$PP" -n "$TG" -t "$THREADS" -r "$REPS" --json |
    python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["pp_tokens_per_s"], d["tg_tokens_per_s"])'
}

llama_run() { # model -> "pp tg"
  [ -n "${LLAMA_BENCH:-}" ] || { echo "- -"; return; }
  "$LLAMA_BENCH" -m "$DIR/$1" -p "$PP" -n "$TG" -t "$THREADS" -r "$REPS" -o json 2>/dev/null |
    python3 -c 'import json,sys; r=json.load(sys.stdin); print(*[x["avg_ts"] for x in r])'
}

busy_start() { python3 -c 'while True: pass' & BUSY=$!; }
busy_stop() { kill "$BUSY" 2>/dev/null || true; wait "$BUSY" 2>/dev/null || true; }

echo "| model | load | test | hearth t/s | llama.cpp t/s | ratio |"
echo "|---|---|---|---|---|---|"
for load in ${LOADS:-idle busy}; do
  for m in "${MODELS[@]}"; do
    [ "$load" = busy ] && busy_start
    read -r hpp htg < <(hearth_run "$m")
    read -r lpp ltg < <(llama_run "$m")
    [ "$load" = busy ] && busy_stop
    python3 - "$m" "$load" "$PP" "$TG" "$hpp" "$htg" "$lpp" "$ltg" <<'PY'
import sys
m, load, pp, tg, hpp, htg, lpp, ltg = sys.argv[1:]
for test, h, l in ((f"pp{pp}", hpp, lpp), (f"tg{tg}", htg, ltg)):
    ratio = f"{float(h) / float(l):.2f}x" if l != "-" else "-"
    lt = f"{float(l):.1f}" if l != "-" else "-"
    print(f"| {m} | {load} | {test} | {float(h):.1f} | {lt} | {ratio} |")
PY
  done
done
