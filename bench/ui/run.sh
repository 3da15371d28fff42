#!/usr/bin/env bash
# The web page's Users table on a tenant of ROWS users (default 1,000,000);
# see bench/README.md.
#
#   bash bench/ui/run.sh              # markdown results on stdout
#
# Imports ROWS generated users (bench/tools gen-users) with the release
# `userdrop import`, starts `userdrop serve` with [http], signs in on the
# page like a browser (sign-in form, cookie, CSRF token) and asks for the
# Users page REQUESTS times each: the first page, a page from the middle by
# its cursor, and a name-prefix search. Reports the server's own time (the
# page's `Server-Timing: app;dur=`) and the client's wall time, p50/p95/max.
# Target: p95 server time <= 50 ms for each. Needs python3 and cargo.
set -euo pipefail
export LC_ALL=C
REPO="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)"
BIN="${USERDROP_BIN:-$REPO/target/release/userdrop}"
ROWS="${ROWS:-1000000}"
REQUESTS="${REQUESTS:-200}"
if [ -z "${USERDROP_BIN:-}" ]; then
  (cd "$REPO" && cargo build --release --locked >&2)
fi
TOOLS="$REPO/bench/tools"
CARGO_TARGET_DIR="$TOOLS/target" cargo build --release --quiet --manifest-path "$TOOLS/Cargo.toml" >&2
GEN="$TOOLS/target/release/gen-users"
BIN="$(realpath -- "$BIN")"

WORK="$(mktemp -d)"
PID=""
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$WORK"' EXIT
cd "$WORK"
PASSWORD="bench-pass-$$"
HASH="$(printf '%s\n' "$PASSWORD" | "$BIN" passwd)"
cat > userdrop.toml <<TOML
data_dir = "$WORK/data"
log_format = "json"
[sftp]
listen = "127.0.0.1:0"
[http]
listen = "127.0.0.1:0"
[tenants.bench]
failed_import_email = "it@bench.example"
max_file_size = "1GiB"
notify = "never"
[[tenants.bench.accounts]]
name = "admin"
password_hash = "$HASH"
TOML
"$GEN" "$ROWS" users.csv --seed 42 >&2
echo "importing $ROWS users" >&2
T0=$(date +%s.%N)
"$BIN" --config userdrop.toml import --tenant bench users.csv > import.out || true
T1=$(date +%s.%N)
echo "imported in $(echo "$T1 - $T0" | bc 2>/dev/null || python3 -c "print($T1-$T0)") s" >&2

"$BIN" --config userdrop.toml serve > serve.out 2> serve.err &
PID=$!
for _ in $(seq 200); do grep -q "SFTP listening" serve.out && break; sleep 0.1; done
HTTP="$(sed -n 's/^userdrop: HTTP listening on //p' serve.out)"
[ -n "$HTTP" ] || { echo "bench/ui: the server did not start:" >&2; cat serve.err >&2; exit 2; }
echo "server $PID: $HTTP" >&2
# The name index follows the ledger in the server: wait until it has
# followed the import (its time is the background cost of indexing).
T2=$(date +%s.%N)
for _ in $(seq 3000); do grep -q '"indexed names"' serve.out serve.err 2>/dev/null && break; sleep 0.1; done
grep -q '"indexed names"' serve.out serve.err 2>/dev/null || { echo "bench/ui: the name index did not catch up" >&2; exit 2; }
T3=$(date +%s.%N)
INDEXED="$(python3 -c "print(f'{$T3-$T2:.1f}')")"
echo "name index caught up in $INDEXED s" >&2

echo "## Web page: Users of a tenant with $ROWS users ($(date -u +%F), $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg))"
echo
echo "The name index followed the import's $ROWS creations in $INDEXED s after the server started (in the background; the import does not write it)."
echo
python3 "$REPO/bench/ui/users.py" "$HTTP" bench admin "$PASSWORD" "$REQUESTS" "$ROWS"
