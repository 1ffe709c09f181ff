#!/usr/bin/env bash
# Makes (once) the Python venv the probe tests use, from PyPI: prometheus-client, whose
# parser reads /metrics as Prometheus itself would, and grpcio, to call gRPC's standard
# health service. Prints the venv's python.
# The venv is kept in .build/ so later test runs reuse it.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${CONVEYOR_PROBE_VENV:-.build/probe-client-venv}
if ! "$venv/bin/python" -c 'import prometheus_client.parser, grpc' 2>/dev/null; then
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check prometheus-client grpcio >&2
fi
echo "$(pwd)/$venv/bin/python"
