#!/usr/bin/env bash
# Builds the OCI image localhost/hearth:<version> FROM scratch with buildah: the static hearth
# binary (scripts/build-static.sh) as its entrypoint, CA roots for HTTPS, nothing else. No
# registry is needed: the image lands in buildah's local storage, and with --archive FILE it is
# also written as an OCI archive (`podman load` / `skopeo copy oci-archive:FILE ...`).
# Usage: scripts/build-image.sh [--archive FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
archive=""
if [ "${1:-}" = "--archive" ]; then archive="${2:?--archive needs a file}"; fi
command -v buildah >/dev/null || { echo "build-image: buildah is missing (apt-get install buildah)" >&2; exit 1; }
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
image="localhost/hearth:$version"
bin=$(bash scripts/build-static.sh)
# vfs storage works everywhere, including inside containers without overlay support
export STORAGE_DRIVER="${STORAGE_DRIVER:-vfs}"
ctr=$(buildah from scratch)
trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
buildah copy --chmod 0755 "$ctr" "$bin" /hearth >/dev/null
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  buildah copy "$ctr" /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt >/dev/null
fi
buildah config \
  --entrypoint '["/hearth"]' --cmd 'serve --host 0.0.0.0' \
  --env HOME=/home/hearth --env HEARTH_MODELS=/models --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
  --workingdir / --user 65532:65532 --port 8001 \
  --label org.opencontainers.image.title=hearth \
  --label org.opencontainers.image.version="$version" \
  --label org.opencontainers.image.description="hearth: OpenAI-compatible LLM server and gateway, one static binary" \
  "$ctr"
buildah commit --quiet "$ctr" "$image" >/dev/null
if [ -n "$archive" ]; then
  rm -f "$archive"
  buildah push --quiet "$image" "oci-archive:$archive:$image" >/dev/null
fi
echo "$image"
