#!/usr/bin/env bash
# Makes the broker accounts Conveyor's authenticated listeners need, and
# optionally a private CA and server certificate for the TLS listener.
#
#   scripts/make-credentials.sh [--dir secrets] [--tls HOST[,HOST…]] [DEVICE …]
#
# Writes into DIR (default ./secrets, mode 700):
#   passwd              the mosquitto password file (mosquitto_passwd hashes)
#   <account>.password  one random password per account, mode 600: the
#                       services read theirs with --mqtt-password-file
#   api-keys            one random API key for the HTTP ingress (--api-keys-file)
#   certs/              with --tls: ca.crt, ca.key, server.crt, server.key
# Accounts: ingress, worker, store (the service roles) and one per DEVICE.
# Device names are 1-32 characters of [A-Za-z0-9-] (no "_": it separates the
# device name from the device's job id) and may not be a service role's name.
# Running it again keeps existing passwords and adds missing accounts.
set -euo pipefail

dir=secrets
tls_hosts=""
devices=()
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir="$2"; shift 2 ;;
    --tls) tls_hosts="$2"; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    -*) echo "make-credentials: unknown option $1" >&2; exit 2 ;;
    *) devices+=("$1"); shift ;;
  esac
done

command -v mosquitto_passwd >/dev/null || { echo "make-credentials: mosquitto_passwd missing (apt-get install mosquitto)" >&2; exit 1; }
command -v openssl >/dev/null || { echo "make-credentials: openssl missing" >&2; exit 1; }

for d in "${devices[@]}"; do
  if ! [[ "$d" =~ ^[A-Za-z0-9-]{1,32}$ ]]; then
    echo "make-credentials: device name '$d' must be 1-32 characters of [A-Za-z0-9-]" >&2; exit 2
  fi
  case "$d" in ingress|worker|store) echo "make-credentials: '$d' is a service role, not a device name" >&2; exit 2 ;; esac
done

umask 077
mkdir -p "$dir"
chmod 700 "$dir"
passwd="$dir/passwd"

for account in ingress worker store "${devices[@]}"; do
  file="$dir/$account.password"
  if [ ! -s "$file" ]; then
    openssl rand -base64 24 | tr -d '/+=\n' > "$file"
    echo >> "$file"
    echo "make-credentials: new account $account ($file)"
  fi
  # -b takes the password as an argument of this short-lived local process.
  if [ -f "$passwd" ]; then
    mosquitto_passwd -b "$passwd" "$account" "$(head -n1 "$file")"
  else
    mosquitto_passwd -c -b "$passwd" "$account" "$(head -n1 "$file")"
  fi
done
chmod 644 "$passwd"   # mosquitto drops to its own user before reading it

if [ ! -s "$dir/api-keys" ]; then
  { echo "# API keys of the HTTP ingress, one per line"; openssl rand -hex 24; } > "$dir/api-keys"
  echo "make-credentials: new API key in $dir/api-keys"
fi

if [ -n "$tls_hosts" ]; then
  certs="$dir/certs"
  mkdir -p "$certs"
  if [ ! -s "$certs/ca.key" ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=Conveyor private CA" \
      -keyout "$certs/ca.key" -out "$certs/ca.crt" 2>/dev/null
  fi
  san=""
  IFS=',' read -ra hosts <<< "$tls_hosts"
  for h in "${hosts[@]}"; do
    if [[ "$h" =~ ^[0-9.]+$ ]]; then san+="IP:$h,"; else san+="DNS:$h,"; fi
  done
  openssl req -newkey rsa:2048 -nodes -subj "/CN=${hosts[0]}" \
    -keyout "$certs/server.key" -out "$certs/server.csr" 2>/dev/null
  openssl x509 -req -in "$certs/server.csr" -CA "$certs/ca.crt" -CAkey "$certs/ca.key" -CAcreateserial \
    -days 825 -extfile <(printf "subjectAltName=%s" "${san%,}") -out "$certs/server.crt" 2>/dev/null
  rm -f "$certs/server.csr"
  chmod 644 "$certs/ca.crt" "$certs/server.crt" "$certs/server.key"   # read by mosquitto's user
  echo "make-credentials: TLS certificate for ${tls_hosts} in $certs (clients trust $certs/ca.crt)"
fi
echo "make-credentials: accounts in $passwd"
