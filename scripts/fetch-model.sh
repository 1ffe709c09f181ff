#!/usr/bin/env bash
# Puts what `make run` and compose.yaml need under models/ (gitignored):
#
#   models/inception_v3/inception_v3_weights_tf_dim_ordering_tf_kernels.h5
#       the file named by CONVEYOR_WEIGHTS_PATH when that is set (a copy you
#       already have), else the official Keras file downloaded from
#       CONVEYOR_WEIGHTS_URL (default: Keras's own URL below) and checked
#       against its pinned sha256 (CONVEYOR_WEIGHTS_SHA256 overrides the pin).
#   models/image_net_labels.json    from data/ (CONVEYOR_LABELS_PATH overrides)
#   models/cat.jpg                  from data/ (CONVEYOR_SAMPLE_IMAGE_PATH overrides)
#
# Everything is copied, never linked: compose.yaml mounts ./models into the
# containers, where a link to a path on this machine would not resolve.
# Weights already in models/ are kept; delete them to fetch again.
set -euo pipefail
cd "$(dirname "$0")/.."

dest=models
weights="$dest/inception_v3/inception_v3_weights_tf_dim_ordering_tf_kernels.h5"
official_url="https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/inception_v3_weights_tf_dim_ordering_tf_kernels.h5"
# sha256 of that file (Keras itself pins its md5, 9a0d58056eeedaa3f26cb7ebd46da564).
official_sha256="00c9ea4e4762f716ac4d300d6d9c2935639cc5e4d139b5790d765dcbeea539d0"
url=${CONVEYOR_WEIGHTS_URL:-$official_url}
want_sha256=${CONVEYOR_WEIGHTS_SHA256:-$official_sha256}

say() { echo "fetch-model: $*" >&2; }

# Says what failed, where the weights come from and how to use a local copy; exits 1.
fail() {
  say "ERROR: $*"
  cat >&2 <<EOF
fetch-model: the InceptionV3 weights were not installed in $weights.
  Download URL: $url
  Expected sha256: $want_sha256
  To use a copy you already have (fetched on another machine, through a proxy, ...):
    CONVEYOR_WEIGHTS_PATH=/path/to/inception_v3_weights_tf_dim_ordering_tf_kernels.h5 make run
  (or the same variable with scripts/fetch-model.sh). It is copied into $dest/.
EOF
  exit 1
}

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# copy SOURCE TARGET: a regular file at TARGET with SOURCE's bytes (a link at TARGET is replaced).
copy() {
  if [ -f "$2" ] && [ ! -L "$2" ] && cmp -s "$1" "$2"; then return 0; fi
  cp "$1" "$2.part"
  chmod 644 "$2.part"
  mv -f "$2.part" "$2"
}

mkdir -p "$dest/inception_v3"
local_copy=${CONVEYOR_WEIGHTS_PATH:-}

# A link here would not resolve inside the containers: its target becomes the local copy.
if [ -L "$weights" ]; then
  if [ -z "$local_copy" ] && [ -f "$weights" ]; then local_copy=$(readlink -f "$weights"); fi
  rm -f "$weights"
fi

if [ -f "$weights" ]; then
  say "keeping $weights (delete it to fetch again)"
elif [ -n "$local_copy" ]; then
  [ -f "$local_copy" ] || fail "CONVEYOR_WEIGHTS_PATH=$local_copy: no such file"
  got=$(sha256_of "$local_copy")
  if [ -n "${CONVEYOR_WEIGHTS_SHA256:-}" ] && [ "$got" != "$want_sha256" ]; then
    fail "CONVEYOR_WEIGHTS_PATH=$local_copy has sha256 $got, not the $want_sha256 CONVEYOR_WEIGHTS_SHA256 asks for"
  fi
  if [ "$got" != "$official_sha256" ]; then
    say "note: $local_copy is not the official file (sha256 $got); using it as it is"
  fi
  copy "$local_copy" "$weights"
  say "InceptionV3 weights copied from $local_copy"
else
  command -v curl >/dev/null || fail "curl is not installed (apt-get install curl)"
  say "downloading the InceptionV3 weights from $url"
  rm -f "$weights.part"
  status=0
  curl --fail --location --progress-bar --connect-timeout 20 --retry 2 \
       --speed-limit 1024 --speed-time 60 -o "$weights.part" "$url" || status=$?
  if [ "$status" -ne 0 ]; then
    rm -f "$weights.part"
    fail "the download failed (curl exit status $status; its message is above)"
  fi
  got=$(sha256_of "$weights.part")
  if [ "$got" != "$want_sha256" ]; then
    rm -f "$weights.part"
    fail "the downloaded file has sha256 $got; the pinned sha256 is $want_sha256 (a proxy's error page, a truncated or a different file)"
  fi
  mv -f "$weights.part" "$weights"
  say "downloaded the InceptionV3 weights (sha256 $want_sha256 checked)"
fi

labels=${CONVEYOR_LABELS_PATH:-data/image_net_labels.json}
image=${CONVEYOR_SAMPLE_IMAGE_PATH:-data/cat.jpg}
[ -f "$labels" ] || { say "ERROR: no labels file at $labels (CONVEYOR_LABELS_PATH)"; exit 1; }
[ -f "$image" ] || { say "ERROR: no sample image at $image (CONVEYOR_SAMPLE_IMAGE_PATH)"; exit 1; }
copy "$labels" "$dest/image_net_labels.json"
copy "$image" "$dest/cat.jpg"
say "ImageNet labels and sample image copied from $labels and $image"
