#!/usr/bin/env bash
# Puts the InceptionV3 weights, ImageNet labels and a sample image under
# models/ (gitignored), where `make run` and compose.yaml look for them.
#
# 1. Tries the official Keras download and checks it against the hash Keras
#    itself pins (md5 9a0d5805…; set CONVEYOR_WEIGHTS_SHA256 to pin a sha256
#    instead).
# 2. Otherwise (no network, or a hash mismatch) uses local files named by
#    CONVEYOR_WEIGHTS_PATH, CONVEYOR_LABELS_PATH and CONVEYOR_SAMPLE_IMAGE_PATH
#    (the Makefile points these at ../shared when it exists).
set -euo pipefail
cd "$(dirname "$0")/.."

dest=models
mkdir -p "$dest/inception_v3"
weights="$dest/inception_v3/inception_v3_weights_tf_dim_ordering_tf_kernels.h5"
url="https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/inception_v3_weights_tf_dim_ordering_tf_kernels.h5"
keras_md5="9a0d58056eeedaa3f26cb7ebd46da564"

check() {  # file → 0 if it matches the pinned hash
  if [ -n "${CONVEYOR_WEIGHTS_SHA256:-}" ]; then
    echo "${CONVEYOR_WEIGHTS_SHA256}  $1" | sha256sum -c --quiet -
  else
    echo "${keras_md5}  $1" | md5sum -c --quiet -
  fi
}

link_local() {  # source target description
  if [ -z "$1" ] || [ ! -f "$1" ]; then
    echo "fetch-model: no $3: set $4 to a local file" >&2
    return 1
  fi
  ln -sfn "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")" "$2"
  echo "fetch-model: $3 from $1"
}

if [ ! -e "$weights" ]; then
  if command -v curl >/dev/null && curl -fsSL --connect-timeout 10 --max-time 600 -o "$weights.part" "$url" 2>/dev/null \
     && check "$weights.part"; then
    mv "$weights.part" "$weights"
    echo "fetch-model: downloaded the official InceptionV3 weights (hash checked)"
  else
    rm -f "$weights.part"
    echo "fetch-model: could not download the official weights; using CONVEYOR_WEIGHTS_PATH"
    link_local "${CONVEYOR_WEIGHTS_PATH:-}" "$weights" "InceptionV3 weights" CONVEYOR_WEIGHTS_PATH
  fi
fi

if [ ! -e "$dest/image_net_labels.json" ]; then
  link_local "${CONVEYOR_LABELS_PATH:-}" "$dest/image_net_labels.json" "ImageNet labels" CONVEYOR_LABELS_PATH
fi
if [ ! -e "$dest/cat.jpg" ]; then
  link_local "${CONVEYOR_SAMPLE_IMAGE_PATH:-}" "$dest/cat.jpg" "sample image" CONVEYOR_SAMPLE_IMAGE_PATH
fi
