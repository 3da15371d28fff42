#!/usr/bin/env bash
# Import benchmark for userdrop; see bench/README.md.
#
#   bash bench/import.sh                  # everything; markdown table on stdout
#   ROUNDS=5 bash bench/import.sh > results.md
#   ANCHORS_ONLY=1 bash bench/import.sh   # baseline + sqlite3 only, no userdrop
#
# Environment:
#   ROUNDS        rounds, each runs every measurement once (default 3; the
#                 medians need >= 3)
#   ROWS          rows of the large file (default 1000000)
#   SMALL_ROWS    rows of the small end-to-end file (default 10000)
#   SEED          generator seed (default 42)
#   USERDROP_BIN  userdrop binary to use instead of building target/release/userdrop
#   ANCHORS_ONLY  1 = only the baseline and sqlite3 anchors (no userdrop needed)
#   UPDATED       0 = skip the informational import of the ~1%-changed file
#
# Progress goes to stderr, the results table to stdout. Exit status: 0 when
# every run succeeded and loaded the expected rows (whether or not targets are
# met), 1 when some run failed, 2 on a setup error.
set -euo pipefail
export LC_ALL=C

BENCH_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
REPO_DIR="$(dirname -- "$BENCH_DIR")"
TOOLS_DIR="$BENCH_DIR/tools"
TOOLS_TARGET="$TOOLS_DIR/target"
DATA_DIR="$BENCH_DIR/data"

ROUNDS="${ROUNDS:-3}"
ROWS="${ROWS:-1000000}"
SMALL_ROWS="${SMALL_ROWS:-10000}"
SEED="${SEED:-42}"
ANCHORS_ONLY="${ANCHORS_ONLY:-0}"
UPDATED="${UPDATED:-1}"
TENANT=bench

# Targets (see bench/README.md).
TARGET_RATIO=0.8        # userdrop rows/s >= 0.8 x baseline rows/s
TARGET_REIMPORT=0.25    # re-import time <= 0.25 x first import time
TARGET_RSS_MB=150       # peak RSS of the full import
TARGET_SMALL_S=0.3      # 10k-row file end to end

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 2; }

for v in ROUNDS ROWS SMALL_ROWS SEED; do
    [[ "${!v}" =~ ^[0-9]+$ && "${!v}" -gt 0 ]] || die "$v must be a positive integer, got '${!v}'"
done
(( ROUNDS >= 3 )) || log "warning: ROUNDS=$ROUNDS; the reported medians want >= 3"

# ---------------------------------------------------------------- prerequisites
APT_UPDATED=0
apt_install() {
    [[ $(id -u) -eq 0 ]] || die "need Debian packages: $* (run as root or install them)"
    command -v apt-get >/dev/null || die "need packages $* and apt-get is not available"
    if (( APT_UPDATED == 0 )); then
        log "apt-get update"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
        APT_UPDATED=1
    fi
    log "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

missing=()
command -v sqlite3 >/dev/null || missing+=(sqlite3)
# GNU time is needed for -f '%e %M' (peak RSS); bash's builtin keyword is not enough.
if ! { [[ -x /usr/bin/time ]] && /usr/bin/time -f '%M' -o /dev/null true 2>/dev/null; }; then
    missing+=(time)
fi
(( ${#missing[@]} == 0 )) || apt_install "${missing[@]}"
command -v cargo >/dev/null || die "cargo not found"

mkdir -p "$DATA_DIR"
RUN_ROOT="$(mktemp -d "$DATA_DIR/runs.XXXXXX")"
cleanup() { rm -rf -- "$RUN_ROOT"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ----------------------------------------------------------------------- builds
log "building bench tools (release, target $TOOLS_TARGET)"
CARGO_TARGET_DIR="$TOOLS_TARGET" cargo build --release --quiet --manifest-path "$TOOLS_DIR/Cargo.toml" >&2
GEN="$TOOLS_TARGET/release/gen-users"
BASELINE="$TOOLS_TARGET/release/baseline"

USERDROP=""
if [[ "$ANCHORS_ONLY" != 1 ]]; then
    if [[ -n "${USERDROP_BIN:-}" ]]; then
        USERDROP="$(realpath -- "$USERDROP_BIN")"
        log "using USERDROP_BIN=$USERDROP"
    else
        log "building userdrop (cargo build --release at $REPO_DIR)"
        (cd -- "$REPO_DIR" && CARGO_TARGET_DIR="$REPO_DIR/target" cargo build --release --quiet >&2)
        USERDROP="$REPO_DIR/target/release/userdrop"
    fi
    [[ -x "$USERDROP" ]] || die "userdrop binary not found or not executable: $USERDROP"
fi

# ------------------------------------------------------------------------- data
# gen_csv ROWS OUT VARIANT: generate unless OUT exists with a matching stamp
# (same rows/seed/variant/generator source, same byte size).
gen_csv() {
    local rows=$1 out=$2 variant=$3 stamp="$2.stamp" want size
    want="rows=$rows seed=$SEED variant=$variant gen=$(sha256sum "$TOOLS_DIR/src/bin/gen_users.rs" | cut -c1-16)"
    if [[ -f "$out" && -f "$stamp" ]]; then
        size=$(stat -c %s -- "$out")
        if [[ "$(cat -- "$stamp")" == "$want bytes=$size" ]]; then
            log "reusing $out ($size bytes)"
            return
        fi
    fi
    log "generating $out"
    rm -f -- "$stamp"
    "$GEN" "$rows" "$out" --seed "$SEED" --variant "$variant"
    printf '%s bytes=%s\n' "$want" "$(stat -c %s -- "$out")" >"$stamp"
}

BIG_CSV="$DATA_DIR/users-$ROWS.csv"
SMALL_CSV="$DATA_DIR/users-$SMALL_ROWS.csv"
CHANGED_CSV="$DATA_DIR/users-$ROWS-changed.csv"
gen_csv "$ROWS" "$BIG_CSV" base
if [[ "$ANCHORS_ONLY" != 1 ]]; then
    gen_csv "$SMALL_ROWS" "$SMALL_CSV" base
    [[ "$UPDATED" == 1 ]] && gen_csv "$ROWS" "$CHANGED_CSV" changed
fi
BIG_BYTES=$(stat -c %s -- "$BIG_CSV")

# -------------------------------------------------------------------- measuring
PROBLEMS=()
problem() { PROBLEMS+=("$1"); log "PROBLEM: $1"; }

# measure LOGFILE CMD...: runs CMD under GNU time; sets M_WALL (seconds, from a
# nanosecond clock around the process), M_CPU (user + sys seconds), M_RSS_KB
# (peak RSS) and M_RC.
measure() {
    local logf=$1; shift
    local tf="$RUN_ROOT/time.out" t0 t1 rc=0
    t0=$(date +%s%N)
    /usr/bin/time -f '%e %M %U %S' -o "$tf" "$@" >"$logf" 2>&1 || rc=$?
    t1=$(date +%s%N)
    M_RC=$rc
    M_WALL=$(awk -v ns="$(( t1 - t0 ))" 'BEGIN { printf "%.3f", ns / 1e9 }')
    # GNU time prepends "Command exited with non-zero status N" on failure;
    # the format line is always last.
    M_RSS_KB=$(tail -n 1 "$tf" | awk '{ print $2 }')
    [[ "$M_RSS_KB" =~ ^[0-9]+$ ]] || M_RSS_KB=0
    M_CPU=$(tail -n 1 "$tf" | awk '{ printf "%.2f", $3 + $4 }')
    log "  ${M_WALL} s wall, ${M_CPU} s CPU, $(( M_RSS_KB / 1024 )) MB peak RSS, exit $M_RC"
}

# show_log LOGFILE: last lines of a failed run's output, on stderr.
show_log() { log "last lines of $1:"; tail -n 20 -- "$1" | sed 's/^/    | /' >&2; }

# count_rows DB SQL: a read-only count, or "?" when the query fails.
count_rows() { sqlite3 -readonly -batch "$1" "$2" 2>/dev/null || echo "?"; }

check_count() { # check_count WHAT GOT WANT LOGFILE
    if [[ "$2" != "$3" ]]; then
        problem "$1: store holds $2 rows, expected $3"
        show_log "$4"
    fi
}

write_config() { # write_config DATA_DIR
    cat >"$1/config.toml" <<EOF
data_dir = "$1"

[tenants.$TENANT]
failed_import_email = ["it@example.com"]
EOF
}

# run_userdrop WHAT DATA_DIR CSV LOGFILE: one import, exit 0 expected.
run_userdrop() {
    local what=$1 dir=$2 csv=$3 logf=$4
    measure "$logf" "$USERDROP" --config "$dir/config.toml" import --tenant "$TENANT" "$csv"
    if (( M_RC == 1 )); then
        problem "$what: userdrop exited 1 (some rows failed)"
        show_log "$logf"
    elif (( M_RC != 0 )); then
        problem "$what: userdrop exited $M_RC"
        show_log "$logf"
    fi
}

BASE_S=() BASE_RSS=() BASE_CPU=() SQL_S=() SQL_RSS=() SQL_CPU=()
UD_S=() UD_RSS=() UD_CPU=() RE_S=() RE_RSS=() RE_CPU=() UPD_S=() UPD_RSS=() SMALL_S=() SMALL_RSS=()

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
for (( round = 1; round <= ROUNDS; round++ )); do
    R="$RUN_ROOT/round$round"
    mkdir -p "$R"

    # (a) baseline: csv crate + one prepared upsert, one transaction, fresh db.
    log "round $round/$ROUNDS: baseline"
    mkdir -p "$R/baseline"
    measure "$R/baseline.log" "$BASELINE" --db "$R/baseline/users.db" "$BIG_CSV"
    if (( M_RC != 0 )); then problem "round $round baseline: exited $M_RC"; show_log "$R/baseline.log"; fi
    BASE_S+=("$M_WALL") BASE_RSS+=("$M_RSS_KB") BASE_CPU+=("$M_CPU")
    check_count "round $round baseline" "$(count_rows "$R/baseline/users.db" "SELECT count(*) FROM users")" "$ROWS" "$R/baseline.log"
    rm -rf -- "$R/baseline"

    # (b) sqlite3 .import into a fresh db; .import creates users_raw from the header.
    log "round $round/$ROUNDS: sqlite3 .import"
    mkdir -p "$R/sqlite3"
    measure "$R/sqlite3.log" sqlite3 -batch -bail "$R/sqlite3/raw.db" \
        "PRAGMA journal_mode=WAL;" "PRAGMA synchronous=FULL;" "PRAGMA cache_size=-32768;" \
        ".import --csv \"$BIG_CSV\" users_raw"
    if (( M_RC != 0 )); then problem "round $round sqlite3: exited $M_RC"; show_log "$R/sqlite3.log"; fi
    SQL_S+=("$M_WALL") SQL_RSS+=("$M_RSS_KB") SQL_CPU+=("$M_CPU")
    check_count "round $round sqlite3" "$(count_rows "$R/sqlite3/raw.db" "SELECT count(*) FROM users_raw")" "$ROWS" "$R/sqlite3.log"
    rm -rf -- "$R/sqlite3"

    if [[ "$ANCHORS_ONLY" != 1 ]]; then
        count_sql="SELECT count(*) FROM users WHERE tenant = '$TENANT'"

        # (c) full import into a fresh data dir.
        log "round $round/$ROUNDS: userdrop import ($ROWS rows)"
        D="$R/userdrop"
        mkdir -p "$D"; write_config "$D"
        run_userdrop "round $round import" "$D" "$BIG_CSV" "$R/import.log"
        UD_S+=("$M_WALL") UD_RSS+=("$M_RSS_KB") UD_CPU+=("$M_CPU")
        check_count "round $round import" "$(count_rows "$D/userdrop.db" "$count_sql")" "$ROWS" "$R/import.log"

        # (d) the same unchanged file again, same data dir.
        log "round $round/$ROUNDS: userdrop re-import (unchanged)"
        run_userdrop "round $round re-import" "$D" "$BIG_CSV" "$R/reimport.log"
        RE_S+=("$M_WALL") RE_RSS+=("$M_RSS_KB") RE_CPU+=("$M_CPU")
        check_count "round $round re-import" "$(count_rows "$D/userdrop.db" "$count_sql")" "$ROWS" "$R/reimport.log"

        # (f, informational) the ~1%-changed variant, same data dir.
        if [[ "$UPDATED" == 1 ]]; then
            log "round $round/$ROUNDS: userdrop import of the ~1%-changed file"
            run_userdrop "round $round changed-file import" "$D" "$CHANGED_CSV" "$R/changed.log"
            UPD_S+=("$M_WALL") UPD_RSS+=("$M_RSS_KB")
            check_count "round $round changed-file import" "$(count_rows "$D/userdrop.db" "$count_sql")" "$ROWS" "$R/changed.log"
        fi
        rm -rf -- "$D"

        # (e) the small file, end to end, fresh data dir.
        log "round $round/$ROUNDS: userdrop import ($SMALL_ROWS rows)"
        D="$R/small"
        mkdir -p "$D"; write_config "$D"
        run_userdrop "round $round small import" "$D" "$SMALL_CSV" "$R/small.log"
        SMALL_S+=("$M_WALL") SMALL_RSS+=("$M_RSS_KB")
        check_count "round $round small import" "$(count_rows "$D/userdrop.db" "$count_sql")" "$SMALL_ROWS" "$R/small.log"
        rm -rf -- "$D"
    fi
    rm -rf -- "$R"
done

# ---------------------------------------------------------------------- results
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) { print "nan"; exit } if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
maxof() { printf '%s\n' "$@" | sort -g | tail -n 1; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }          # calc FORMAT EXPR
thousands() { printf '%s' "$1" | sed -e ':a' -e 's/\([0-9]\)\([0-9]\{3\}\)\($\|,\)/\1,\2\3/' -e 'ta'; }
rps() { thousands "$(calc '%.0f' "$ROWS / $1")"; }       # rows/s from seconds
mb() { calc '%.1f' "$1 / 1024"; }                        # KB -> MB
join_s() { local out="" x; for x in "$@"; do out+="${out:+ / }$x"; done; printf '%s' "$out"; }
join_mb() { local out="" x; for x in "$@"; do out+="${out:+ / }$(mb "$x")"; done; printf '%s' "$out"; }
met() { if awk "BEGIN { exit !($1) }"; then printf 'met'; else printf '**NOT MET**'; fi; }

sqlite_version=$(sqlite3 --version | awk '{ print $1 }')
git_rev=$(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo "no commit")
if [[ -n "$(git -C "$REPO_DIR" status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null)" ]]; then git_rev+=" (+ uncommitted changes)"; fi
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)

b_med=$(median "${BASE_S[@]}")
s_med=$(median "${SQL_S[@]}")

echo "### Import benchmark, $(date -u +%F)"
echo
echo "Machine: $(nproc) cores${cpu:+ ($cpu)}, $(awk '/MemTotal/ { printf "%.0f GB RAM", $2 / 1048576 }' /proc/meminfo). \`ROUNDS=$ROUNDS\`, medians; rates are rows / wall time. CPU = user + sys of the process, a cross-check when the machine is noisy. Load average before the runs: $LOAD_BEFORE."
echo "Large file: $(thousands "$ROWS") rows, $(calc '%.1f' "$BIG_BYTES / 1e6") MB ($(calc '%.1f' "$BIG_BYTES / $ROWS") bytes/row), seed $SEED. sqlite3 CLI $sqlite_version. Repo at $git_rev."
echo
if (( ${#PROBLEMS[@]} > 0 )); then
    echo "**${#PROBLEMS[@]} problem(s) in these runs, listed below the table: the figures are not a valid result.**"
    echo
fi
echo "| Measurement | Median | Runs | Target | Status |"
echo "|---|---|---|---|---|"
echo "| baseline: csv crate + prepared upsert, one tx, userdrop schema | $(rps "$b_med") rows/s ($b_med s wall, $(median "${BASE_CPU[@]}") s CPU) | $(join_s "${BASE_S[@]}") s | anchor: physical floor | - |"
echo "| baseline peak RSS | $(mb "$(median "${BASE_RSS[@]}")") MB | $(join_mb "${BASE_RSS[@]}") MB | - | - |"
echo "| sqlite3 \`.import --csv\` into a new unindexed table | $(rps "$s_med") rows/s ($s_med s wall, $(median "${SQL_CPU[@]}") s CPU) | $(join_s "${SQL_S[@]}") s | anchor: raw SQLite load | - |"

if [[ "$ANCHORS_ONLY" != 1 ]]; then
    u_med=$(median "${UD_S[@]}")
    r_med=$(median "${RE_S[@]}")
    rss_med=$(median "${UD_RSS[@]}")
    rss_max=$(maxof "${UD_RSS[@]}")
    sm_med=$(median "${SMALL_S[@]}")
    ratio=$(calc '%.2f' "$b_med / $u_med")            # (rows/u) / (rows/b)
    reimp=$(calc '%.2f' "$r_med / $u_med")
    echo "| userdrop import, fresh store | $(rps "$u_med") rows/s ($u_med s wall, $(median "${UD_CPU[@]}") s CPU) | $(join_s "${UD_S[@]}") s | - | - |"
    echo "| userdrop / baseline, rows/s | ${ratio}x | | >= ${TARGET_RATIO}x | $(met "$ratio >= $TARGET_RATIO") |"
    echo "| re-import of the unchanged file / first import, time | ${reimp}x ($r_med s wall, $(median "${RE_CPU[@]}") s CPU) | $(join_s "${RE_S[@]}") s | <= ${TARGET_REIMPORT}x | $(met "$reimp <= $TARGET_REIMPORT") |"
    echo "| peak RSS, full import | $(mb "$rss_med") MB (max $(mb "$rss_max")) | $(join_mb "${UD_RSS[@]}") MB | <= $TARGET_RSS_MB MB (max of runs) | $(met "$rss_max / 1024 <= $TARGET_RSS_MB") |"
    echo "| $(thousands "$SMALL_ROWS")-row file end to end, fresh store | $sm_med s | $(join_s "${SMALL_S[@]}") s | <= $TARGET_SMALL_S s | $(met "$sm_med <= $TARGET_SMALL_S") |"
    echo "| peak RSS, re-import | $(mb "$(median "${RE_RSS[@]}")") MB | $(join_mb "${RE_RSS[@]}") MB | - | - |"
    if [[ "$UPDATED" == 1 ]]; then
        up_med=$(median "${UPD_S[@]}")
        echo "| import of the ~1%-changed file after the re-import | $up_med s ($(calc '%.2f' "$up_med / $u_med")x first import) | $(join_s "${UPD_S[@]}") s | - (info) | - |"
    fi
fi

if (( ${#PROBLEMS[@]} > 0 )); then
    echo
    echo "**Problems** (these runs are still in the medians above):"
    for p in "${PROBLEMS[@]}"; do echo "- $p"; done
    exit 1
fi
