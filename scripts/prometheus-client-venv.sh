#!/usr/bin/env bash
# Makes (once) the Python venv with prometheus-client (from PyPI), whose parser the
# tests use to read /metrics as Prometheus itself would. Prints the venv's python.
# The venv is kept in .build/ so later test runs reuse it.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${CONVEYOR_PROMETHEUS_VENV:-.build/prometheus-client-venv}
if ! "$venv/bin/python" -c 'import prometheus_client.parser' 2>/dev/null; then
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check prometheus-client >&2
fi
echo "$(pwd)/$venv/bin/python"
