#!/usr/bin/env bash
# The static binary and the image: builds hearth statically (scripts/build-static.sh), checks
# that it links no shared library, runs it in an empty chroot (nothing but the binary and
# SmolLM2) and checks /health, a chat completion and a client inside the root reaching the
# server by host name; then builds the FROM-scratch image with buildah (installed from Debian
# when missing) and checks its config, its one layer and that the chart names it.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL="${HEARTH_MODELS:-$HOME/.cache/hearth/models}/SmolLM2-135M-Instruct.Q4_1.gguf"
[ -f "$MODEL" ] || { echo "check-static: $MODEL is missing (scripts/fetch-models.sh)" >&2; exit 1; }

bin=$(bash scripts/build-static.sh)
# no program interpreter and no needed shared library (readelf comes with gcc's binutils)
if readelf -l "$bin" | grep -q "program interpreter" || readelf -d "$bin" | grep -q "(NEEDED)"; then
  readelf -d "$bin" | grep NEEDED >&2 || true
  echo "check-static: $bin is not statically linked" >&2; exit 1
fi
echo "check-static: $bin is statically linked ($(du -h "$bin" | cut -f1))"

root=$(mktemp -d)
log="$root.log"
cleanup() { [ -n "${server:-}" ] && kill "$server" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$root" "$log"; }
trap cleanup EXIT
cp "$bin" "$root/hearth"
cp "$MODEL" "$root/model.gguf"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
echo "check-static: the root holds only: $(cd "$root" && ls | tr '\n' ' ')"
env -i "$(command -v chroot)" "$root" /hearth serve /model.gguf --host 127.0.0.1 --port "$port" --served-model-name smollm \
  --kv-cache-memory 128MiB --max-model-len 2048 >"$log" 2>&1 &
server=$!
for _ in $(seq 1 600); do
  curl -sf "http://127.0.0.1:$port/health" >/dev/null && break
  kill -0 "$server" 2>/dev/null || { cat "$log" >&2; echo "check-static: the server exited in the chroot" >&2; exit 1; }
  sleep 0.2
done
curl -sf "http://127.0.0.1:$port/health" | grep -q '"ok"' || { cat "$log" >&2; echo "check-static: /health never answered ok" >&2; exit 1; }
answer=$(curl -sf "http://127.0.0.1:$port/v1/chat/completions" -H 'Content-Type: application/json' \
  -d '{"model": "smollm", "max_tokens": 8, "temperature": 0, "messages": [{"role": "user", "content": "Say hi."}]}')
python3 -c 'import json,sys; a=json.loads(sys.argv[1]); assert a["choices"][0]["message"]["content"], a; assert a["usage"]["completion_tokens"] >= 1, a' "$answer" \
  || { echo "check-static: bad chat answer: $answer" >&2; exit 1; }
echo "check-static: in an empty chroot /health is ok and a chat completion answered"
# a static glibc resolves names without NSS modules (here from /etc/hosts, as a Service name
# would come from the cluster's DNS): the client inside the root reaches the server by name
mkdir -p "$root/etc"
printf '127.0.0.1 localhost hearth-serve-0.hearth-serve-pods\n' > "$root/etc/hosts"
env -i "$(command -v chroot)" "$root" /hearth bench "http://hearth-serve-0.hearth-serve-pods:$port" \
  --num-prompts 1 --input-len 8 --output-len 4 >"$log.bench" 2>&1 \
  || { cat "$log.bench" >&2; echo "check-static: the static client could not reach the server by name" >&2; exit 1; }
rm -f "$log.bench"
echo "check-static: a client in the chroot reached the server by host name"
kill "$server"; wait "$server" 2>/dev/null || true; server=""

if ! command -v buildah >/dev/null; then
  echo "check-static: installing buildah..."
  (apt-get install -y -q buildah >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q buildah >/dev/null; }) \
    || { echo "check-static: cannot install buildah with apt-get" >&2; exit 1; }
fi
archive="target/static/hearth-image.tar"
image=$(bash scripts/build-image.sh --archive "$archive")
export STORAGE_DRIVER="${STORAGE_DRIVER:-vfs}"
config=$(buildah inspect --type image "$image")
python3 - "$config" <<'PY' || { echo "check-static: the image's config is wrong" >&2; exit 1; }
import json, sys
oci = json.loads(sys.argv[1])["OCIv1"]
assert oci["config"]["Entrypoint"] == ["/hearth"], oci["config"]
assert "HEARTH_MODELS=/models" in oci["config"]["Env"], oci["config"]
assert len(oci["rootfs"]["diff_ids"]) == 1, "one layer: nothing under it (FROM scratch)"
PY
tar -tf "$archive" >/dev/null
# the one layer holds the binary and the CA roots, nothing else
python3 - "$archive" <<'PY' || { echo "check-static: the image's layer is wrong" >&2; exit 1; }
import io, json, sys, tarfile
with tarfile.open(sys.argv[1]) as archive:
    blob = lambda digest: archive.extractfile("blobs/sha256/" + digest.split(":")[1]).read()
    index = json.load(archive.extractfile("index.json"))
    manifest = json.loads(blob(index["manifests"][0]["digest"]))
    layer = tarfile.open(fileobj=io.BytesIO(blob(manifest["layers"][0]["digest"])))
    files = sorted(m.name.lstrip("./") for m in layer.getmembers() if m.isfile())
assert files == ["etc/ssl/certs/ca-certificates.crt", "hearth"], files
print("check-static: the image's one layer holds", ", ".join(files))
PY
chart_image=$(sed -n '/^image:/,/^[a-z]/{s/^  repository: *//p}' deploy/helm/hearth/values.yaml)
chart_tag=$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}/\1/p' deploy/helm/hearth/Chart.yaml)
[ "$chart_image:$chart_tag" = "$image" ] || { echo "check-static: the chart's default image $chart_image:$chart_tag is not $image" >&2; exit 1; }
echo "check-static: built $image (OCI archive $archive, $(du -h "$archive" | cut -f1)), the chart's default image"
