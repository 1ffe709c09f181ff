#!/usr/bin/env bash
# Makes (once) a Python virtual environment with schemathesis, for the OpenAPI
# conformance test (Tests/PipelineTests/OpenAPIConformanceTests.swift), and
# prints the path of its `schemathesis` program.
#
# The venv lives in .build/schemathesis-venv (gitignored, kept across runs);
# CONVEYOR_SCHEMATHESIS_VENV puts it elsewhere. Delete it to start over.
set -euo pipefail
cd "$(dirname "$0")/.."

version="4.32.5"
venv="${CONVEYOR_SCHEMATHESIS_VENV:-$PWD/.build/schemathesis-venv}"
python="${PYTHON:-$(command -v python3 || true)}"
[ -n "$python" ] || { echo "schemathesis-venv: python3 not found (scripts/install-deps.sh installs it)" >&2; exit 1; }

if [ -x "$venv/bin/schemathesis" ] && [ "$(cat "$venv/.conveyor-version" 2>/dev/null)" = "$version" ]; then
  echo "$venv/bin/schemathesis"
  exit 0
fi

rm -rf "$venv"
mkdir -p "$(dirname "$venv")"
"$python" -m venv "$venv" >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "schemathesis==$version" >&2
echo "$version" > "$venv/.conveyor-version"
echo "$venv/bin/schemathesis"
