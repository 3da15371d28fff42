#!/usr/bin/env bash
# SCIM provisioning benchmark for userdrop (issue 15); see bench/README.md,
# section "SCIM provisioning (bench/scim)".
#
#   bash bench/scim/run.sh              # markdown results on stdout
#   RUNS=5 USERS=10000 bash bench/scim/run.sh
#
# A: a release `userdrop serve` provisions USERS new users (one HTTP upload)
#    into a fresh scim2-server: from the job's `archived` log line to the
#    `provisioned` line of the ledger's last change.
# B: a plain Python loop (requests.Session) POSTs the same users, as the
#    same SCIM JSON, into another fresh scim2-server, one after another.
# Runs alternate A B A B; bench.py prints min / median / max and A/B.
#
# Environment: RUNS (default 3), USERS (default 10000), SEED (default 42),
# USERDROP_BIN (a userdrop binary instead of building target/release/userdrop),
# ONLY=a|b (one side only, for profiling).
# Needs python3 with scim2-server and requests (installed with pip when
# missing).
set -euo pipefail
export LC_ALL=C
REPO="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)"
BIN="${USERDROP_BIN:-$REPO/target/release/userdrop}"
RUNS="${RUNS:-3}"
USERS="${USERS:-10000}"
SEED="${SEED:-42}"

command -v python3 >/dev/null || { echo "bench/scim: needs python3" >&2; exit 2; }
for mod in scim2_server:scim2-server requests:requests; do
  if ! python3 -c "import ${mod%%:*}" >/dev/null 2>&1; then
    echo "bench/scim: installing ${mod##*:} (pip)" >&2
    python3 -m pip install -q "${mod##*:}" >&2 \
      || python3 -m pip install -q --break-system-packages "${mod##*:}" >&2 \
      || { echo "bench/scim: please install ${mod##*:} for python3 (pip install ${mod##*:})" >&2; exit 2; }
  fi
done
if [ -z "${USERDROP_BIN:-}" ]; then
  (cd "$REPO" && cargo build --release --locked >&2)
fi

echo "## SCIM provisioning ($(date -u +%F), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
echo
echo '```'
echo "RUNS=$RUNS USERS=$USERS bash bench/scim/run.sh"
echo '```'
echo
only=()
[ -n "${ONLY:-}" ] && only=(--only "$ONLY")
python3 "$REPO/bench/scim/bench.py" --bin "$BIN" --runs "$RUNS" --users "$USERS" --seed "$SEED" "${only[@]}"
echo
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
