#!/usr/bin/env bash
# Creates .venv-clients with the official API clients the SDK tests drive (pinned), and prints
# its python. Usage: export HEARTH_CLIENTS_PYTHON=$(bash scripts/python-clients.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-clients
if [[ ! -x $venv/bin/python ]]; then
  python3 -m venv "$venv" >&2
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check anthropic==2.15.0 ollama==0.6.3 openai==3.51.0 >&2
echo "$PWD/$venv/bin/python"
