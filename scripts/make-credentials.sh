#!/usr/bin/env bash
# Makes the broker accounts Conveyor's authenticated listeners need, and
# optionally a private CA and server certificate for the TLS listener.
#
#   scripts/make-credentials.sh [--dir secrets] [--tls HOST[,HOST…]] [DEVICE …]
#
# Writes into DIR (default ./secrets, mode 700):
#   dynamic-security.json  the broker's accounts and roles, for mosquitto's
#                       dynamic-security plugin: the roles of mosquitto-roles.json,
#                       one account per service role and per DEVICE (PBKDF2 hashes),
#                       each device bound to the client id of its own name
#   <account>.password  one random password per account, mode 600: the
#                       services read theirs with --mqtt-password-file
#   api-keys            one random API key for the HTTP ingress (--api-keys-file)
#   certs/              with --tls: ca.crt, ca.key, server.crt, server.key
# Accounts: ingress, worker, store (the service roles) and one per DEVICE.
# Device names are 1-32 characters of [A-Za-z0-9-] (no "_": it separates the
# device name from the device's job id) and may not be a service role's name
# or start with conveyor-, ingress-, worker- or store- (services' client ids).
# Running it again keeps existing passwords and adds missing accounts; restart
# the broker to load the new file.
set -euo pipefail

dir=secrets
tls_hosts=""
devices=()
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir="$2"; shift 2 ;;
    --tls) tls_hosts="$2"; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    -*) echo "make-credentials: unknown option $1" >&2; exit 2 ;;
    *) devices+=("$1"); shift ;;
  esac
done

command -v python3 >/dev/null || { echo "make-credentials: python3 missing (apt-get install python3)" >&2; exit 1; }
command -v openssl >/dev/null || { echo "make-credentials: openssl missing" >&2; exit 1; }

for d in "${devices[@]}"; do
  if ! [[ "$d" =~ ^[A-Za-z0-9-]{1,32}$ ]]; then
    echo "make-credentials: device name '$d' must be 1-32 characters of [A-Za-z0-9-]" >&2; exit 2
  fi
  # A device's client id is its name: it must not be one a service uses (conveyor-store,
  # ROLE-HOST-PID) or a role's.
  case "$d" in
    ingress|worker|store|conveyor|conveyor-*|ingress-*|worker-*|store-*)
      echo "make-credentials: '$d' is or looks like a service's name or client id, not a device name" >&2; exit 2 ;;
  esac
done

umask 077
mkdir -p "$dir"
chmod 700 "$dir"
for account in ingress worker store "${devices[@]}"; do
  file="$dir/$account.password"
  if [ ! -s "$file" ]; then
    openssl rand -base64 24 | tr -d '/+=\n' > "$file"
    echo >> "$file"
    echo "make-credentials: new account $account ($file)"
  fi
done

# Every account with a password file in DIR (devices of earlier runs too) goes
# into the plugin's file, with a fresh salt; the roles come from mosquitto-roles.json.
roles="$(cd "$(dirname "$0")/.." && pwd)/mosquitto-roles.json"
python3 - "$dir" "$roles" <<'PY'
import base64, hashlib, json, os, sys
directory, roles_file = sys.argv[1], sys.argv[2]
roles = json.load(open(roles_file))["roles"]
services = ("ingress", "worker", "store")
kinds = {"send": ["publishClientSend"], "subscribe": ["subscribePattern"], "receive": ["publishClientReceive"]}

def acls(rules, device=None):
    out = []
    for kind, topics in rules.items():
        for topic in topics:
            for acltype in kinds[kind]:
                out.append({"acltype": acltype, "topic": topic.replace("{device}", device or ""), "allow": True})
    return out

def hashed(password):
    salt = os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, 101, 64)
    return base64.b64encode(digest).decode(), base64.b64encode(salt).decode()

accounts = sorted(f[:-len(".password")] for f in os.listdir(directory) if f.endswith(".password"))
clients, role_list = [], [{"rolename": name, "acls": acls(roles[name])} for name in services]
for account in accounts:
    password = open(os.path.join(directory, account + ".password")).read().split("\n")[0]
    digest, salt = hashed(password)
    client = {"username": account, "password": digest, "salt": salt, "iterations": 101}
    if account in services:
        client["roles"] = [{"rolename": account}]
    else:
        # A device connects only under its own name: it cannot take a service's client id.
        client["clientid"] = account
        client["roles"] = [{"rolename": "device-" + account}]
        role_list.append({"rolename": "device-" + account, "acls": acls(roles["device"], account)})
    clients.append(client)
config = {"clients": clients, "groups": [], "roles": role_list,
          "defaultACLAccess": {"publishClientSend": False, "publishClientReceive": False,
                               "subscribe": False, "unsubscribe": True}}
path = os.path.join(directory, "dynamic-security.json")
with open(path + ".tmp", "w") as f:
    json.dump(config, f, indent=1)
os.replace(path + ".tmp", path)
PY
# mosquitto drops to its own user before reading it (it holds hashes, not passwords).
chmod 644 "$dir/dynamic-security.json"

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
echo "make-credentials: accounts in $dir/dynamic-security.json (restart the broker to load it)"
