#!/usr/bin/env bash
# HTTP API benchmark for userdrop (issue 14's anchors); see bench/README.md.
#
#   bash bench/http/run.sh            # markdown results on stdout
#
# Measures, against one release `userdrop serve` on 127.0.0.1 (HTTP and SFTP):
#   1. a 10,000-row file: `POST .../imports?wait=true` (curl) end to end vs
#      the CLI `userdrop import` of the same file (both re-imports of the same
#      rows after a warm-up; pair.py runs them in turn, ratio A/B pair by pair);
#   2. a 200 MiB upload: curl to the HTTP API vs OpenSSH `sftp` to
#      userdrop's own SFTP server (the name is not an accepted one, so the
#      daemon refuses the file at once and the next run is not slowed by an
#      import), and the server's peak RSS before and after the HTTP uploads.
#      Before every run the previous run's archived copy is removed (untimed),
#      so neither side pays for memory the machine has never touched before;
#   3. `GET .../imports/{id}` vs `GET /healthz` under wrk, 64 connections
#      with keep-alive, 10 s each: requests/s and p99.
# Needs: curl, sftp (openssh-client), wrk (apt-get install wrk), python3. Builds target/release/userdrop unless USERDROP_BIN is set.
set -euo pipefail
export LC_ALL=C
REPO="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)"
BIN="${USERDROP_BIN:-$REPO/target/release/userdrop}"
RUNS="${RUNS:-5}"
if [ -z "${USERDROP_BIN:-}" ]; then
  (cd "$REPO" && cargo build --release --locked >&2)
fi
PAIR="$REPO/bench/http/pair.py"
for c in curl sftp wrk python3 ssh-keygen; do
  command -v "$c" >/dev/null || { echo "bench/http: needs $c" >&2; exit 2; }
done

WORK="$(mktemp -d)"
trap 'kill "$PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT
cd "$WORK"
ssh-keygen -q -t ed25519 -N '' -f key
cat > userdrop.toml <<EOF
data_dir = "$WORK/data"
log_format = "json"
[sftp]
listen = "127.0.0.1:0"
[http]
listen = "127.0.0.1:0"
max_upload = "1GiB"
[tenants.bench]
failed_import_email = "it@bench.example"
max_file_size = "1GiB"
[[tenants.bench.accounts]]
name = "bench"
authorized_keys = ["$(cat key.pub)"]
EOF
KEY_OUT="$("$BIN" --config userdrop.toml api-key new --tenant bench --name bench)"
TOKEN="$(printf '%s\n' "$KEY_OUT" | awk '/^  udk_/ {print $1}')"
printf '%s\n' "$KEY_OUT" | sed -n '/^\[\[tenants/,$p' >> userdrop.toml

"$BIN" --config userdrop.toml serve > serve.out 2> serve.err &
PID=$!
for _ in $(seq 100); do grep -q "SFTP listening" serve.out && break; sleep 0.1; done
HTTP="$(sed -n 's/^userdrop: HTTP listening on //p' serve.out)"
SFTP_PORT="$(sed -n 's/^userdrop: SFTP listening on 127.0.0.1:\([0-9]*\);.*/\1/p' serve.out)"
echo "server $PID: $HTTP, SFTP port $SFTP_PORT" >&2

python3 - <<'EOF'
import random
random.seed(42)
with open("10k.csv", "w") as f:
    f.write("userId,email,firstName,lastName,roles\n")
    for i in range(10000):
        f.write(f"u{i},u{i}@bench.example,First{i},Last{random.randint(0, 10**6)},staff\n")
EOF
head -c $((200 * 1024 * 1024)) /dev/urandom > big.bin

echo "## HTTP API ($(date -u +%F), $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg))"
echo
echo "### 10,000 rows: POST ?wait=true (A) vs CLI import (B)"
echo
python3 "$PAIR" --runs "$RUNS" --label-a "curl -F file=@10k.csv .../imports?wait=true" --label-b "userdrop import" \
  "curl -sf -o /dev/null -X POST -H 'x-api-key: $TOKEN' -F file=@$WORK/10k.csv $HTTP/v1/tenants/bench/imports?wait=true" \
  "$BIN --config $WORK/userdrop.toml import --tenant bench $WORK/10k.csv"

# Waits until the previous upload is archived, then removes the archived
# copies of big.bin (untimed, before every run of either side).
cat > settle <<EOF
#!/bin/sh
for i in \$(seq 400); do
  ls $WORK/data/tenants/bench/*.bin $WORK/data/spool/bench/*.bin >/dev/null 2>&1 || break
  sleep 0.05
done
rm -f $WORK/data/tenants/bench/.bak/*big.bin
EOF
chmod +x settle

hwm() { awk '/VmHWM/ {print $2}' "/proc/$PID/status"; }
BEFORE="$(hwm)"
echo
echo "### 200 MiB upload: HTTP (A) vs OpenSSH sftp to userdrop (B)"
echo
echo 'put big.bin big.bin' > batch
python3 "$PAIR" --runs "$RUNS" --prepare "$WORK/settle" --label-a "curl -T big.bin (streamed raw body)" --label-b "sftp put big.bin" \
  "curl -sf -o /dev/null -X POST -H 'x-api-key: $TOKEN' -H 'Content-Type: application/octet-stream' -T $WORK/big.bin $HTTP/v1/tenants/bench/imports?filename=big.bin" \
  "sftp -q -i $WORK/key -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -P $SFTP_PORT -b $WORK/batch bench@127.0.0.1"
AFTER="$(hwm)"
echo
echo "server peak RSS: $((BEFORE / 1024)) MB before the 200 MiB uploads, $((AFTER / 1024)) MB after (growth $(((AFTER - BEFORE) / 1024)) MB)"

ID="$(curl -sf -H "x-api-key: $TOKEN" "$HTTP/v1/tenants/bench/imports?limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["imports"][0]["id"])')"
echo
echo "### GET /imports/{id} vs GET /healthz (wrk, 64 connections, 10 s)"
echo '```'
wrk -t2 -c64 -d10s --latency -H "x-api-key: $TOKEN" "$HTTP/v1/tenants/bench/imports/$ID" | grep -E "Requests/sec|99%|Latency "
echo "--- /healthz"
wrk -t2 -c64 -d10s --latency "$HTTP/healthz" | grep -E "Requests/sec|99%|Latency "
echo '```'
