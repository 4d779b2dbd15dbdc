#!/usr/bin/env bash
# Builds a statically linked hearth (glibc with +crt-static, portable x86-64-v2 baseline, SIMD
# kernels chosen at run time) into target/static/x86_64-unknown-linux-gnu/dist/hearth and
# prints its path. A binary that links no shared library runs in an empty root (FROM scratch).
set -euo pipefail
cd "$(dirname "$0")/.."
triple=x86_64-unknown-linux-gnu
# The env form of [target.<triple>].rustflags replaces .cargo/config.toml's, so it repeats the
# baseline (its features named one by one, as there). getrandom finds glibc's getrandom() with
# dlsym, which a static binary cannot, and then falls back to /dev/urandom, which an empty root
# lacks: the cfg makes it call getrandom() directly (Linux 3.17 and later).
export CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C target-cpu=x86-64 -C target-feature=+sse3,+ssse3,+sse4.1,+sse4.2,+popcnt,+cmpxchg16b,+crt-static --cfg getrandom_backend=\"linux_getrandom\""
cargo build --profile dist --target "$triple" -p hearth-cli --target-dir target/static >&2
bin="target/static/$triple/dist/hearth"
echo "$bin"
