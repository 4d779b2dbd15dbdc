#!/usr/bin/env bash
# Builds a statically linked hearth (glibc with +crt-static, portable x86-64-v2 baseline, SIMD
# kernels chosen at run time, symbols stripped) into target/static/hearth and prints its path.
# A binary that links no shared library runs in an empty root (FROM scratch).
#
# Only the binary crate is compiled again: `cargo rustc` links it, with +crt-static, against the
# crates the release build (or `cargo test --release`) already compiled. That works because
# crt-static decides only how the final binary links libc (libc's and std's `#[link(cfg(...))]`
# are read at that link), and the one crate that must know at compile time, getrandom, is told
# by .cargo/config.toml to call getrandom() directly in every build. cargo keeps this binary
# apart from the usual one (its extra flags give it a hash of its own in target/release/deps):
# target/release/hearth is the static one until the next `cargo build --release`, which puts
# the usual one back without compiling anything.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo rustc --release -p hearth-cli --bin hearth -- -C target-feature=+crt-static -C strip=symbols >&2
mkdir -p target/static
cp target/release/hearth target/static/hearth
echo target/static/hearth
