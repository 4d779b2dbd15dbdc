#!/usr/bin/env bash
# Dev only (CI never runs it): records the architecture test bench's golden logits. Writes the
# tiny seeded models (crates/testkit/src/tiny_models.rs) into target/tiny-models, runs
# llama.cpp's forward pass on each (scripts/dev/golden-logits.cpp, built by
# `build-llama-cpp.sh reference`: ggml's reference arithmetic, the same on every CPU)
# over the golden token ids, and stores logits and MoE expert choices as
# crates/model/tests/golden/tiny/NAME.json. Run it again only when a tiny model changes.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=$(bash scripts/dev/build-llama-cpp.sh reference)
dir="$PWD/target/tiny-models"
out=crates/model/tests/golden/tiny
mkdir -p "$out"
cargo run --release --example write_tiny_models -- "$dir" | while read -r model tokens; do
  name=$(basename "$model" .gguf)
  "$build/golden-logits" "$model" "$tokens" 2>"$dir/$name.log" >"$out/$name.json"
  echo "recorded $out/$name.json"
done
