#!/usr/bin/env bash
# Makes (once) the Python venv that runs the clients in Tests/TFServingClient/:
# TF Serving's own client package (tensorflow-serving-api, which brings
# TensorFlow and Keras 3), tf_keras (Keras 2, to export the tutorial's .h5
# model as TF Serving users do), grpcio and requests, from PyPI. Prints the
# venv's python.
# The venv is kept in .build/ so later test runs reuse it.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${CONVEYOR_TFS_VENV:-.build/tf-serving-client-venv}
if ! "$venv/bin/python" -c 'import tensorflow_serving.apis, grpc, requests, tf_keras' 2>/dev/null; then
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check tensorflow-serving-api grpcio requests tf_keras >&2
fi
echo "$(pwd)/$venv/bin/python"
