#!/usr/bin/env bash
# Runs the libFuzzer harnesses in fuzz/ (AddressSanitizer, nightly toolchain) for a bounded
# time each: scripts/fuzz.sh [SECONDS] [TARGET...]; default 60 s for each of the five targets.
# The grown corpus stays under target/fuzz-corpus; a failing input is saved under
# target/fuzz-findings and the script exits non-zero. Without a nightly toolchain it says so
# and exits 0 (the stable mutation run in crates/fuzzing/tests/corpus.rs still covers them).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(gguf hf_checkpoint chat_template streams requests)
fi

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz: no nightly toolchain here; the libFuzzer runs are skipped" >&2
  exit 0
fi

# cargo-fuzz, pinned, installed inside the build folder (never on the machine's PATH)
tools=$PWD/target/fuzz-tools
if [ ! -x "$tools/bin/cargo-fuzz" ]; then
  cargo +nightly install cargo-fuzz --version 0.13.2 --locked --root "$tools" --quiet
fi
export PATH="$tools/bin:$PATH"
export CARGO_TARGET_DIR=$PWD/target/fuzz-build

# one sanitized build serves every target
cargo +nightly fuzz build --fuzz-dir fuzz --release 2>&1 | tail -n 3
mkdir -p target/fuzz-findings
for target in "${targets[@]}"; do
  corpus=target/fuzz-corpus/$target
  mkdir -p "$corpus"
  echo "fuzz: $target for ${seconds}s"
  # the grown corpus first (libFuzzer adds new inputs there), the committed seeds after it
  cargo +nightly fuzz run --fuzz-dir fuzz --release "$target" "$corpus" "fuzz/seeds/$target" -- \
    -max_total_time="$seconds" -timeout=90 -report_slow_units=90 -rss_limit_mb=4096 -print_final_stats=1 \
    -artifact_prefix="target/fuzz-findings/$target-" 2>&1 | grep -E "^(#[0-9]+ +DONE|stat::|==[0-9]+==ERROR|SUMMARY|artifact_prefix|Test unit written)" || true
  # crashes, leaks, timeouts and out-of-memory inputs fail the run; a slow unit (a valid
  # request that generates tokens under AddressSanitizer) is only reported
  failing=$(ls target/fuzz-findings/ 2>/dev/null | grep -E "^$target-(crash|leak|timeout|oom)-" || true)
  if [ -n "$failing" ]; then
    echo "fuzz: $target found a failing input: $failing (in target/fuzz-findings)" >&2
    exit 1
  fi
done
