#!/usr/bin/env bash
# Installs the system packages Conveyor builds and runs with (Debian/Ubuntu).
# Safe to run again: installs only what is missing.
set -euo pipefail

packages=(
  pkg-config
  libopenblas-dev      # COpenBLAS: sgemm for every convolution
  libturbojpeg0-dev    # CTurboJPEG: JPEG decoding
  libhdf5-dev          # CHDF5: Keras model and weights files
  zlib1g-dev           # CZlib: deflated entries of Keras 3 .keras archives
  libmosquitto-dev     # CMosquitto: MQTT client
  libsqlite3-dev       # GRDB: the result store's database
  mosquitto            # the broker (conveyor up and the tests start their own)
  mosquitto-clients    # mosquitto_pub/mosquitto_sub, for trying the pipeline by hand
  curl                 # scripts/fetch-model.sh
  git                  # tests run scripts/fetch-model.sh in a fresh clone
  docker-compose       # tests validate compose.yaml with `docker-compose config`
  gzip                 # tests read the gzipped MNIST test set
  libjpeg-turbo-progs  # tests make grayscale/CMYK JPEGs with cjpeg and jpegtran
  python3 python3-venv # venvs for schemathesis (OpenAPI test) and TF Serving's Python client
  openssl              # scripts/make-credentials.sh (passwords, API keys, TLS test certificates)
  chromium chromium-driver  # the web console's browser test (headless, driven by Selenium)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all system packages present"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
