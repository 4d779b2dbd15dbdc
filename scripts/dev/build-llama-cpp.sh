#!/usr/bin/env bash
# Dev only (CI never runs it): builds llama.cpp from the pinned llama-cpp-python sdist (which
# vendors it) into target/llama.cpp, CPU backend, and prints the build folder. Needs cmake, a C++
# compiler and pip.
#   build-llama-cpp.sh            native build (target/llama.cpp/build): llama-bench,
#                                 llama-batched-bench, llama-quantize, for side-by-side speed
#   build-llama-cpp.sh reference  portable build without weight repacking or CPU-specific
#                                 kernels (target/llama.cpp/build-reference) with hearth's
#                                 golden-logits recorder (scripts/dev/golden-logits.cpp): its
#                                 numbers are ggml's reference arithmetic, the same on any CPU,
#                                 which is what golden data must be
set -euo pipefail
cd "$(dirname "$0")/../.."
VERSION=0.3.36
ROOT="$PWD/target/llama.cpp"
SRC="$ROOT/llama_cpp_python-$VERSION/vendor/llama.cpp"
MODE="${1:-native}"
BUILD="$ROOT/build"
[ "$MODE" = reference ] && BUILD="$ROOT/build-reference"
mkdir -p "$ROOT"
if [ ! -d "$SRC" ]; then
  python3 -m pip download --quiet --no-deps --no-binary llama-cpp-python "llama-cpp-python==$VERSION" -d "$ROOT" >&2
  sha256sum "$ROOT/llama_cpp_python-$VERSION.tar.gz" >&2
  tar xzf "$ROOT/llama_cpp_python-$VERSION.tar.gz" -C "$ROOT"
fi
common=(-DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF -DBUILD_SHARED_LIBS=OFF)
if [ "$MODE" = reference ]; then
  cmake -S "$SRC" -B "$BUILD" "${common[@]}" -DGGML_NATIVE=OFF -DGGML_CPU_REPACK=OFF -DGGML_AVX=OFF -DGGML_AVX2=OFF \
    -DGGML_FMA=OFF -DGGML_F16C=OFF -DGGML_AVX512=OFF -DGGML_OPENMP=OFF >&2
  cmake --build "$BUILD" -j "$(nproc)" --target llama >&2
  c++ -O2 -std=c++17 -I"$SRC/include" -I"$SRC/ggml/include" scripts/dev/golden-logits.cpp -o "$BUILD/golden-logits" \
    -L"$BUILD/src" -L"$BUILD/ggml/src" -lllama -lggml -lggml-cpu -lggml-base -lpthread >&2
else
  cmake -S "$SRC" -B "$BUILD" "${common[@]}" -DGGML_NATIVE=ON >&2
  cmake --build "$BUILD" -j "$(nproc)" --target llama-bench llama-batched-bench llama-quantize >&2
fi
echo "$BUILD"
