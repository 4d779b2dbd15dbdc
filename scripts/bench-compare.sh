#!/usr/bin/env bash
# Side-by-side speed of hearth and llama.cpp (llama-bench) on the test models, 2 threads,
# idle and with a competing busy process; prints t/s and hearth/llama.cpp ratios. With
# BATCH=N (and llama-batched-bench beside llama-bench) it then times N sequences of
# BATCH_PP+BATCH_TG tokens (128+128) decoded together on both, idle. LOADS= (empty) skips
# the single-sequence table.
# Usage: [KERNELS=scalar|avx2|avx2-vnni|avx512] [LOADS="idle busy"] [BATCH=16] [MODELS="a.gguf /x/b.gguf"] \
#          LLAMA_BENCH=/path/to/llama-bench scripts/bench-compare.sh [pp_tokens] [tg_tokens]
# MODELS are file names in the models folder, or paths (default: the two test models).
# KERNELS is hearth's kernel path (HEARTH_KERNELS; default: the best this CPU has); build
# llama-bench for the same instruction set to compare like with like.
set -euo pipefail
cd "$(dirname "$0")/.."
PP="${1:-512}"; TG="${2:-128}"; THREADS="${THREADS:-2}"; REPS="${REPS:-3}"
DIR="${HEARTH_MODELS:-$HOME/.cache/hearth/models}"
HEARTH=./target/release/hearth
[ -x "$HEARTH" ] || cargo build --release
read -r -a MODELS <<< "${MODELS:-SmolLM2-135M-Instruct.Q4_1.gguf qwen2.5-coder-1.5b-instruct-q4_k_m.gguf}"
model_path() { case "$1" in /*) echo "$1" ;; *) echo "$DIR/$1" ;; esac; }

export HEARTH_KERNELS="${KERNELS:-${HEARTH_KERNELS:-}}"
echo "hearth kernels: ${HEARTH_KERNELS:-best}; llama-bench: ${LLAMA_BENCH:-none}; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
echo

hearth_run() { # model -> "pp tg"
  "$HEARTH" bench-model -m "$(model_path "$1")" -p "$PP" -n "$TG" -t "$THREADS" -r "$REPS" --json |
    python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["pp_tokens_per_s"], d["tg_tokens_per_s"])'
}

llama_run() { # model -> "pp tg"
  [ -n "${LLAMA_BENCH:-}" ] || { echo "- -"; return; }
  "$LLAMA_BENCH" -m "$(model_path "$1")" -p "$PP" -n "$TG" -t "$THREADS" -r "$REPS" -o json 2>/dev/null |
    python3 -c 'import json,sys; r=json.load(sys.stdin); print(*[x["avg_ts"] for x in r])'
}

busy_start() { python3 -c 'while True: pass' & BUSY=$!; }
busy_stop() { kill "$BUSY" 2>/dev/null || true; wait "$BUSY" 2>/dev/null || true; }

echo "| model | load | test | hearth t/s | llama.cpp t/s | ratio |"
echo "|---|---|---|---|---|---|"
for load in ${LOADS-idle busy}; do
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
    print(f"| {m.rsplit('/', 1)[-1]} | {load} | {test} | {float(h):.1f} | {lt} | {ratio} |")
PY
  done
done

[ -n "${BATCH:-}" ] || exit 0
BPP="${BATCH_PP:-128}"; BTG="${BATCH_TG:-128}"
# N prompts at once, then BATCH_TG decode steps: llama-batched-bench decodes BATCH_TG
# batches after the prompts, hearth's first token comes from the prompt step, so it is asked
# for one token more (the same number of decode steps). Speculation is off on both sides.
BATCHED="${LLAMA_BENCH:+$(dirname "$LLAMA_BENCH")/llama-batched-bench}"
echo
echo "| model | sequences | pp+tg | hearth s | llama.cpp s | ratio |"
echo "|---|---|---|---|---|---|"
for m in "${MODELS[@]}"; do
  hs=$("$HEARTH" bench-engine -m "$(model_path "$m")" -t "$THREADS" --speculative off --concurrency "$BATCH" \
        --prompt-tokens "$BPP" --gen-tokens $((BTG + 1)) --prefix-tokens 0 2>/dev/null |
       awk -F'|' -v n="$BATCH" '$2+0 == n { gsub(/ /, "", $8); print $8 }')
  ls="-"
  if [ -n "$BATCHED" ] && [ -x "$BATCHED" ]; then
    ls=$("$BATCHED" -m "$(model_path "$m")" -t "$THREADS" -c $(( BATCH * (BPP + BTG) + 64 )) -b 2048 -ub 512 \
          -npp "$BPP" -ntg "$BTG" -npl "$BATCH" --output-format jsonl 2>/dev/null |
         python3 -c 'import json,sys; print([json.loads(l) for l in sys.stdin if l.startswith("{")][-1]["t"])')
  fi
  python3 - "$m" "$BATCH" "$BPP+$BTG" "$hs" "$ls" <<'PY'
import sys
m, n, shape, h, l = sys.argv[1:]
ratio = f"{float(l) / float(h):.2f}x" if l != "-" else "-"
print(f"| {m.rsplit('/', 1)[-1]} | {n} | {shape} | {float(h):.1f} | {l if l == '-' else f'{float(l):.1f}'} | {ratio} |")
PY
done
