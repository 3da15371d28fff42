#!/usr/bin/env bash
# SFTP benchmark: userdrop's embedded SFTP server against a private OpenSSH
# sshd (internal-sftp), on loopback, alternating, in one invocation.
# See bench/README.md, section "SFTP benchmark".
#
#   bash bench/sftp/run.sh                  # markdown table on stdout, progress on stderr
#   ROUNDS=9 bash bench/sftp/run.sh > results.md
#   SSHD_ONLY=1 bash bench/sftp/run.sh      # only the sshd half (no userdrop needed)
#
# Environment:
#   ROUNDS           rounds (default 7); each runs every measurement once per server,
#                    the server that goes first alternates from round to round
#   SIZE_MIB         size of the single-upload file (default 200)
#   PAR              parallel uploads (default 8), each of SIZE_MIB/PAR MiB
#   LS_REPS          connect+auth+ls runs per server per round (default 3)
#   LS_KEX           key exchange pinned for the informational second ls series
#                    (default curve25519-sha256)
#   SFTP_SERVER_BIN  userdrop sftp_server example binary to use instead of building
#                    target/release/examples/sftp_server
#   USERDROP_BIN     userdrop binary (for `userdrop passwd`) instead of building
#                    target/release/userdrop
#   SSHD_ONLY        1 = only the OpenSSH half
#   TMP_PARENT       where the temp dir is made (default /tmp)
#   KEEP_TMP         1 = keep the temp dir (configs, logs, results.tsv) at exit
#   REPORT_ONLY      path of a results.tsv from an earlier run: print its table, run nothing
#
# Exit status: 0 when every transfer succeeded and verified (whether or not the
# targets are met), 1 when some transfer failed, 2 on a setup error.
set -euo pipefail
export LC_ALL=C

BENCH_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
REPO_DIR="$(cd -- "$BENCH_DIR/../.." && pwd -P)"

ROUNDS="${ROUNDS:-7}"
SIZE_MIB="${SIZE_MIB:-200}"
PAR="${PAR:-8}"
LS_REPS="${LS_REPS:-3}"
LS_KEX="${LS_KEX:-curve25519-sha256}"
SSHD_ONLY="${SSHD_ONLY:-0}"
TMP_PARENT="${TMP_PARENT:-/tmp}"
KEEP_TMP="${KEEP_TMP:-0}"
SFTP_SERVER_BIN="${SFTP_SERVER_BIN:-}"
USERDROP_BIN="${USERDROP_BIN:-}"
REPORT_ONLY="${REPORT_ONLY:-}"

# Targets (from the issue; see bench/README.md).
T_SFTP=0.6    # userdrop time <= 0.6 x sshd's, 200 MiB sftp -b put
T_CURL=0.8    # userdrop time <= 0.8 x sshd's, 200 MiB curl -T
T_PAR=1.3     # userdrop aggregate MB/s >= 1.3 x sshd's, PAR parallel sftp -b puts
T_LS=0.25     # userdrop time <= 0.25 x sshd's, connect + auth + ls
T_RSS=32      # userdrop server peak RSS during one upload, MB (1 MB = 1024 KiB)

SSHD=/usr/sbin/sshd
SFTP=/usr/bin/sftp
CURL=/usr/bin/curl
SSH_KEYGEN=/usr/bin/ssh-keygen
GNU_TIME=/usr/bin/time
SSHPASS_BIN=/usr/bin/sshpass

log() { printf '[sftp-bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'sftp-bench: %s\n' "$*" >&2; exit 2; }

for v in ROUNDS SIZE_MIB PAR LS_REPS; do
    [[ "${!v}" =~ ^[0-9]+$ && "${!v}" -gt 0 ]] || die "$v must be a positive integer, got '${!v}'"
done
(( (SIZE_MIB * 1048576) % PAR == 0 )) || die "SIZE_MIB MiB must split evenly into PAR=$PAR files"

# ---------------------------------------------------------------- report ----
# results.tsv lines: ROUND <tab> SERVER <tab> METRIC <tab> VALUE
# (VALUE "FAIL" for a failed run). Metrics:
#   sftp_s curl_s ls_s         wall seconds of one client process
#   par_mbs                    aggregate MB/s (10^6 bytes/s) of the PAR uploads
#   rss_upload_mb rss_par_mb   userdrop server VmHWM after one upload / the parallel uploads
#   srv_cpu_sftp srv_cpu_curl  server CPU seconds (user+sys) of one upload
#   cli_cpu_sftp cli_cpu_curl  client CPU seconds (user+sys) of one upload

vals() { # SERVER METRIC -> the values in round order, FAILs dropped
    awk -F'\t' -v srv="$1" -v met="$2" '$2 == srv && $3 == met && $4 != "FAIL" { print $4 }' "$RESULTS"
}
runs() { # SERVER METRIC -> "a / b / c" in round order, FAIL shown
    awk -F'\t' -v srv="$1" -v met="$2" '$2 == srv && $3 == met { printf "%s%s", (n++ ? " / " : ""), $4 } END { if (!n) printf "-" }' "$RESULTS"
}
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) exit; if (NR % 2) print v[(NR + 1) / 2]; else printf "%.6g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
maximum() { sort -g | tail -n 1; }
fmt() { # FORMAT VALUE -> formatted, "n/a" when empty
    if [[ -z "$2" ]]; then printf 'n/a'; else awk -v f="$1" -v x="$2" 'BEGIN { printf f, x }'; fi
}
ratio() { [[ -n "$1" && -n "$2" ]] && awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.6g", a / b }' || true; }
# status VALUE OP TARGET -> met / **NOT MET** (n/a when VALUE is empty)
status() {
    if [[ -z "$1" ]]; then printf '**NOT MET** (no successful run)'; return; fi
    if awk -v x="$1" -v op="$2" -v t="$3" 'BEGIN { exit !((op == "<=") ? (x <= t) : (x >= t)) }'; then
        printf 'met'
    else
        printf '**NOT MET**'
    fi
}

secs_rate() { # SECONDS -> "1.234 s (170 MB/s)" for the single upload, or n/a
    if [[ -z "$1" ]]; then printf 'n/a'; return; fi
    awk -v t="$1" -v b="$((SIZE_MIB * 1048576))" 'BEGIN { printf "%.3f s (%.0f MB/s)", t, b / t / 1e6 }'
}
cpu() { local v; v=$(vals "$1" "$2" | median); unit s "${v:+$(fmt %.2f "$v")}"; }
unit() { [[ -n "$2" ]] && printf '%s %s' "$2" "$1" || printf 'n/a'; } # UNIT FORMATTED-OR-EMPTY

report() {
    local ud sh r
    local rounds; rounds=$(awk -F'\t' '$1 ~ /^[0-9]+$/ { print $1 }' "$RESULTS" | sort -u | wc -l)
    if [[ -f "${META:-}" ]]; then cat "$META"; echo; fi

    echo "| Measurement | userdrop (median) | OpenSSH sshd (median) | userdrop / sshd | Target | Status |"
    echo "|---|---|---|---|---|---|"
    # single uploads, time
    for m in sftp curl; do
        local label target
        if [[ $m == sftp ]]; then label="${SIZE_MIB} MiB upload, \`sftp -b\` put"; target=$T_SFTP
        else label="${SIZE_MIB} MiB upload, \`curl -T\`"; target=$T_CURL; fi
        ud=$(vals userdrop "${m}_s" | median); sh=$(vals sshd "${m}_s" | median); r=$(ratio "$ud" "$sh")
        printf '| %s | %s | %s | %s | <= %sx time | %s |\n' "$label" "$(secs_rate "$ud")" "$(secs_rate "$sh")" \
            "$(fmt %.2fx "$r")" "$target" "$(status "$r" '<=' "$target")"
    done
    ud=$(vals userdrop par_mbs | median); sh=$(vals sshd par_mbs | median); r=$(ratio "$ud" "$sh")
    printf '| %s parallel `sftp -b` puts of %s MiB, aggregate | %s | %s | %s | >= %sx MB/s | %s |\n' \
        "$PAR" "$(fmt %g "$(awk -v s="$SIZE_MIB" -v p="$PAR" 'BEGIN { print s / p }')")" \
        "$(unit MB/s "${ud:+$(fmt %.0f "$ud")}")" "$(unit MB/s "${sh:+$(fmt %.0f "$sh")}")" "$(fmt %.2fx "$r")" "$T_PAR" "$(status "$r" '>=' "$T_PAR")"
    ud=$(vals userdrop ls_s | median); sh=$(vals sshd ls_s | median); r=$(ratio "$ud" "$sh")
    printf '| connect + auth + `ls` (`sftp -b`) | %s | %s | %s | <= %sx time | %s |\n' \
        "$(unit s "${ud:+$(fmt %.3f "$ud")}")" "$(unit s "${sh:+$(fmt %.3f "$sh")}")" "$(fmt %.2fx "$r")" "$T_LS" "$(status "$r" '<=' "$T_LS")"
    ud=$(vals userdrop rss_upload_mb | maximum)
    printf '| server peak RSS during one %s MiB `sftp -b` upload (fresh server; max of rounds) | %s (median %s) | - (per-connection child) | - | <= %s MB | %s |\n' \
        "$SIZE_MIB" "$(unit MB "${ud:+$(fmt %.1f "$ud")}")" "$(fmt %.1f "$(vals userdrop rss_upload_mb | median)")" "$T_RSS" \
        "$(status "$ud" '<=' "$T_RSS")"
    echo
    echo "Information (no targets), medians. CPU = user + sys seconds for one ${SIZE_MIB} MiB upload."
    echo
    echo "| | userdrop | OpenSSH sshd |"
    echo "|---|---|---|"
    printf '| server CPU, `sftp -b` put | %s | %s |\n' "$(cpu userdrop srv_cpu_sftp)" "$(cpu sshd srv_cpu_sftp)"
    printf '| client CPU, `sftp -b` put | %s | %s |\n' "$(cpu userdrop cli_cpu_sftp)" "$(cpu sshd cli_cpu_sftp)"
    printf '| server CPU, `curl -T` | %s | %s |\n' "$(cpu userdrop srv_cpu_curl)" "$(cpu sshd srv_cpu_curl)"
    printf '| client CPU, `curl -T` | %s | %s |\n' "$(cpu userdrop cli_cpu_curl)" "$(cpu sshd cli_cpu_curl)"
    ud=$(vals userdrop ls_kex_s | median); sh=$(vals sshd ls_kex_s | median)
    printf '| connect + auth + `ls`, both with `-o KexAlgorithms=%s` | %s | %s (userdrop / sshd %s) |\n' "$LS_KEX" \
        "$(unit s "${ud:+$(fmt %.3f "$ud")}")" "$(unit s "${sh:+$(fmt %.3f "$sh")}")" "$(fmt %.2fx "$(ratio "$ud" "$sh")")"
    printf '| long-running server: peak RSS during the %s parallel uploads (max of rounds) | %s | - |\n' "$PAR" "$(v=$(vals userdrop rss_par_mb | maximum); unit MB "${v:+$(fmt %.1f "$v")}")"
    printf '| long-running server: peak RSS over the whole run / RSS at the end | %s / %s | - |\n' \
        "$(v=$(vals userdrop rss_lifetime_mb); unit MB "$v")" "$(v=$(vals userdrop rss_end_mb); unit MB "$v")"
    echo
    echo "Runs, in round order (${rounds} rounds; ls: ${LS_REPS} per round):"
    echo
    echo "| Metric | userdrop | OpenSSH sshd |"
    echo "|---|---|---|"
    for m in sftp_s curl_s par_mbs ls_s ls_kex_s rss_upload_mb rss_par_mb; do
        printf '| %s | %s | %s |\n' "$m" "$(runs userdrop "$m")" "$(runs sshd "$m")"
    done
    if [[ -s "${PROBLEMS:-/dev/null}" ]]; then
        echo
        echo "**Problems:**"
        echo
        sed 's/^/- /' "$PROBLEMS"
    fi
}

if [[ -n "$REPORT_ONLY" ]]; then
    RESULTS="$(cd -- "$(dirname -- "$REPORT_ONLY")" && pwd -P)/$(basename -- "$REPORT_ONLY")"
    [[ -f "$RESULTS" ]] || die "REPORT_ONLY: no file $REPORT_ONLY"
    META="$(dirname -- "$RESULTS")/meta.md"; PROBLEMS="$(dirname -- "$RESULTS")/problems.txt"
    report
    exit 0
fi

# ----------------------------------------------------------------- tools ----
need_pkgs=()
[[ -x $SSHD ]] || need_pkgs+=(openssh-server)
[[ -x $SFTP && -x $SSH_KEYGEN ]] || need_pkgs+=(openssh-client)
[[ -x $SSHPASS_BIN ]] || need_pkgs+=(sshpass)
[[ -x $CURL ]] || need_pkgs+=(curl)
[[ -x $GNU_TIME ]] || need_pkgs+=(time)
if (( ${#need_pkgs[@]} )); then
    [[ $(id -u) -eq 0 ]] || die "missing ${need_pkgs[*]}; install them (apt-get install ${need_pkgs[*]}) or run as root"
    log "installing ${need_pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q "${need_pkgs[@]}" >&2 || { apt-get update -q >&2 && apt-get install -y -q "${need_pkgs[@]}" >&2; } \
        || die "apt-get install ${need_pkgs[*]} failed"
fi
for t in "$SSHD" "$SFTP" "$SSH_KEYGEN" "$CURL" "$GNU_TIME"; do [[ -x $t ]] || die "missing $t"; done
[[ $(id -u) -eq 0 ]] || die "run as root: the private sshd needs it (privilege separation, /run/sshd)"
command -v sha256sum >/dev/null && command -v pgrep >/dev/null || die "needs sha256sum and pgrep"

if [[ $SSHD_ONLY != 1 ]]; then
    build=()
    [[ -n $SFTP_SERVER_BIN ]] || { SFTP_SERVER_BIN="$REPO_DIR/target/release/examples/sftp_server"; build+=(--example sftp_server); }
    [[ -n $USERDROP_BIN ]] || { USERDROP_BIN="$REPO_DIR/target/release/userdrop"; build+=(--bin userdrop); }
    if (( ${#build[@]} )); then
        log "cargo build --release ${build[*]} (waits for the cargo lock when another build runs)"
        (cd "$REPO_DIR" && cargo build --release "${build[@]}") >&2 || die "cargo build --release ${build[*]} failed"
    fi
    [[ -x $SFTP_SERVER_BIN ]] || die "no sftp_server binary at $SFTP_SERVER_BIN"
    [[ -x $USERDROP_BIN ]] || die "no userdrop binary at $USERDROP_BIN"
    SFTP_SERVER_BIN="$(cd -- "$(dirname -- "$SFTP_SERVER_BIN")" && pwd -P)/$(basename -- "$SFTP_SERVER_BIN")"
    USERDROP_BIN="$(cd -- "$(dirname -- "$USERDROP_BIN")" && pwd -P)/$(basename -- "$USERDROP_BIN")"
fi

# -------------------------------------------------------- temp + cleanup ----
T="$(mktemp -d "$TMP_PARENT/userdrop-sftp-bench.XXXXXX")"
chmod 700 "$T"
RESULTS="$T/results.tsv"; META="$T/meta.md"; PROBLEMS="$T/problems.txt"
: >"$RESULTS"; : >"$PROBLEMS"
SERVER_PIDS=()   # long-running servers this script started
CLIENT_PIDS=()   # parallel clients in flight
UD_PID=""; SSHD_PID=""

alive() { # PID: running (not gone, not a zombie waiting to be reaped)
    local st
    st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
    [[ -n $st && $st != Z ]]
}
stop_pid() { # PID: TERM, bounded wait, then KILL; only our own children
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 50; i++)); do alive "$pid" || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM
    for pid in "${!UD_FD[@]}"; do close_stdin "$pid"; done   # userdrop: EOF on stdin stops it
    for pid in "${CLIENT_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${SERVER_PIDS[@]}"; do stop_pid "$pid"; done
    if [[ $KEEP_TMP == 1 ]]; then
        log "kept $T"
    else
        rm -rf -- "$T"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() { # a port nothing listens on, not in "$@"
    local p i
    for ((i = 0; i < 200; i++)); do
        p=$((20000 + RANDOM % 40000))
        [[ " $* " == *" $p "* ]] && continue
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
    done
    die "no free port found"
}

now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

# ------------------------------------------------------------ test data ----
BIG_BYTES=$((SIZE_MIB * 1048576))
PART_BYTES=$((BIG_BYTES / PAR))
log "temp dir $T; making a ${SIZE_MIB} MiB random file and ${PAR} x $((PART_BYTES / 1048576)) MiB"
mkdir -p "$T/src"
head -c "$BIG_BYTES" /dev/urandom >"$T/src/big.bin"
for ((i = 1; i <= PAR; i++)); do head -c "$PART_BYTES" /dev/urandom >"$T/src/part$i.bin"; done
declare -A SRC_SHA
SRC_SHA[big]=$(sha256sum "$T/src/big.bin" | cut -d' ' -f1)
for ((i = 1; i <= PAR; i++)); do SRC_SHA[part$i]=$(sha256sum "$T/src/part$i.bin" | cut -d' ' -f1); done

KEY="$T/client_ed25519"
"$SSH_KEYGEN" -q -t ed25519 -N '' -C sftp-bench -f "$KEY"

# --------------------------------------------------------- OpenSSH sshd ----
# Runs as root, so no chroot (ChrootDirectory wants every path component
# root-owned and not group/world-writable, which /tmp is not): root logs in by
# key and internal-sftp starts in $SSHD_INBOX (-d), where the uploads land.
SSHD_DIR="$T/sshd"; SSHD_INBOX="$T/sshd-inbox"
mkdir -p "$SSHD_DIR" "$SSHD_INBOX" /run/sshd
chmod 755 /run/sshd
"$SSH_KEYGEN" -q -t ed25519 -N '' -f "$SSHD_DIR/ssh_host_ed25519_key"
cp "$KEY.pub" "$SSHD_DIR/authorized_keys"
SSHD_PORT=$(free_port)
cat >"$SSHD_DIR/sshd_config" <<EOF
# private sshd for bench/sftp/run.sh
Port $SSHD_PORT
ListenAddress 127.0.0.1
HostKey $SSHD_DIR/ssh_host_ed25519_key
PidFile $SSHD_DIR/sshd.pid
AuthorizedKeysFile $SSHD_DIR/authorized_keys
UsePAM no
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
AllowUsers root
AllowTcpForwarding no
X11Forwarding no
PrintMotd no
LogLevel INFO
Subsystem sftp internal-sftp
ForceCommand internal-sftp -d $SSHD_INBOX
EOF
"$SSHD" -t -f "$SSHD_DIR/sshd_config" || die "sshd -t rejected $SSHD_DIR/sshd_config"

wait_port() { # PID PORT NAME: bounded poll until PORT accepts, PID must stay alive
    local pid=$1 port=$2 name=$3 i
    for ((i = 0; i < 300; i++)); do
        alive "$pid" || die "$name exited before listening (see its log above)"
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    die "$name did not listen on 127.0.0.1:$port within 15 s"
}

log "starting $SSHD -f $SSHD_DIR/sshd_config -D -e (port $SSHD_PORT)"
"$SSHD" -f "$SSHD_DIR/sshd_config" -D -e 2>"$T/sshd.log" &
SSHD_PID=$!
SERVER_PIDS+=("$SSHD_PID")
wait_port "$SSHD_PID" "$SSHD_PORT" sshd || { cat "$T/sshd.log" >&2; exit 2; }

# ------------------------------------------------------------- userdrop ----
# start_userdrop NAME [ARGS...]: starts the sftp_server example with the bench
# config; sets UD_START_PID and UD_START_ADDR (from its "listening on ADDR"
# line), or UD_START_ERR and returns 1. Its stdin is a FIFO of its own that
# this script holds open: closing it (or this script dying) gives the server
# EOF, which stops it. (SIGTERM alone is not enough: the example logs "SFTP
# server stopped" but then hangs in tokio's blocking stdin read until EOF.)
declare -A UD_FD=()   # server pid -> fd of the write end of its stdin FIFO
close_stdin() { local fd=${UD_FD[$1]:-}; [[ -n $fd ]] && exec {fd}>&-; unset "UD_FD[$1]"; return 0; }
start_userdrop() {
    local name=$1 i fd; shift
    : >"$T/$name.out"
    rm -f "$T/$name.stdin"; mkfifo "$T/$name.stdin"
    exec {fd}<>"$T/$name.stdin"
    (   # the server must not hold the write end of its own or another server's FIFO
        for i in "${UD_FD[@]}" "$fd"; do exec {i}>&-; done
        exec "$SFTP_SERVER_BIN" --config "$T/userdrop.toml" "$@" <"$T/$name.stdin" >"$T/$name.out" 2>"$T/$name.log"
    ) &
    UD_START_PID=$!
    UD_FD[$UD_START_PID]=$fd
    SERVER_PIDS+=("$UD_START_PID")
    for ((i = 0; i < 600; i++)); do   # bounded: 30 s
        grep -qs 'listening on' "$T/$name.out" && break
        if ! alive "$UD_START_PID"; then
            UD_START_ERR="exited before listening: $(tail -n 3 "$T/$name.log" | tr '\n' ' ')"; return 1
        fi
        sleep 0.05
    done
    grep -qs 'listening on' "$T/$name.out" || { UD_START_ERR="printed no 'listening on' within 30 s"; return 1; }
    UD_START_ADDR=$(grep -m1 -o 'listening on [^ ]*' "$T/$name.out" | awk '{ print $3 }')
}
stop_server() { # PID: stop it and forget it (so that cleanup never signals a reused PID)
    local pid=$1 p keep=()
    close_stdin "$pid"
    stop_pid "$pid"
    for p in "${SERVER_PIDS[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
    SERVER_PIDS=("${keep[@]}")
}
UD_DATA="$T/userdrop-data"; UD_INBOX="$UD_DATA/tenants/bench"
if [[ $SSHD_ONLY != 1 ]]; then
    mkdir -p "$UD_DATA"
    UD_PORT=$(free_port "$SSHD_PORT")
    UD_PASSWORD="bench-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    UD_HASH=$(printf '%s\n' "$UD_PASSWORD" | "$USERDROP_BIN" passwd) || die "userdrop passwd failed"
    cat >"$T/userdrop.toml" <<EOF
data_dir = "$UD_DATA"

[sftp]
listen = "127.0.0.1:$UD_PORT"

[tenants.bench]
failed_import_email = ["it@example.com"]

[[tenants.bench.accounts]]
name = "bench"
password_hash = "$UD_HASH"
authorized_keys = ["$(cat "$KEY.pub")"]
EOF
    log "starting $SFTP_SERVER_BIN --config $T/userdrop.toml (port $UD_PORT)"
    start_userdrop userdrop || { tail -n 30 "$T/userdrop.log" >&2; die "sftp_server: $UD_START_ERR"; }
    UD_PID=$UD_START_PID
    UD_ADDR=$UD_START_ADDR
    log "userdrop: $(grep -m1 'listening on' "$T/userdrop.out")"
    [[ $UD_ADDR == *:"$UD_PORT" ]] || log "warning: userdrop says '$UD_ADDR', config says 127.0.0.1:$UD_PORT"
    UD_RSS_IDLE_KB=$(awk '/^VmRSS:/ { print $2 }' "/proc/$UD_PID/status")
fi

SERVERS=(sshd); [[ $SSHD_ONLY == 1 ]] || SERVERS=(userdrop sshd)

# ------------------------------------------------------------- clients ----
SSH_OPTS=(-F /dev/null -i "$KEY" -o IdentitiesOnly=yes -o IdentityAgent=none
          -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null)
srv_user() { [[ $1 == sshd ]] && echo root || echo bench; }
srv_port() { [[ $1 == sshd ]] && echo "$SSHD_PORT" || echo "$UD_PORT"; }
srv_pid() { [[ $1 == sshd ]] && echo "$SSHD_PID" || echo "$UD_PID"; }
# where curl puts a file (absolute remote path)
srv_remote() { [[ $1 == sshd ]] && echo "$SSHD_INBOX/$2" || echo "/$2"; }
# where an uploaded file is on disk (userdrop may already have moved it on)
srv_local() {
    local f
    if [[ $1 == sshd ]]; then echo "$SSHD_INBOX/$2"; return; fi
    if [[ -e "$UD_INBOX/$2" ]]; then echo "$UD_INBOX/$2"; return; fi
    f=$(find "$UD_DATA" -type f -name "*$2" -print -quit 2>/dev/null)
    echo "${f:-$UD_INBOX/$2}"
}

sftp_argv() { # SERVER BATCHFILE [SSH OPTIONS...] -> SFTP_ARGV, the sftp -b command line (same options for both servers)
    local s=$1 b=$2; shift 2
    SFTP_ARGV=("$SFTP" -q "${SSH_OPTS[@]}" -o LogLevel=ERROR "$@" -P "$(srv_port "$s")" -b "$b" "$(srv_user "$s")@127.0.0.1")
}
sftp_cmd() { sftp_argv "$@"; "${SFTP_ARGV[@]}"; }

# server CPU ticks: userdrop = its own utime+stime; sshd = the listener's
# cutime+cstime, which includes every per-connection child once reaped.
srv_ticks() {
    local pid; pid=$(srv_pid "$1")
    local rest; rest=$(sed 's/^.*) //' "/proc/$pid/stat")
    # after "pid (comm) ": field 3 is index 1 here; utime=14 -> 12, stime 13, cutime 14, cstime 15
    awk -v s="$1" '{ if (s == "sshd") print $12 + $13 + $14 + $15; else print $12 + $13 }' <<<"$rest"
}
sshd_settle() { # wait (bounded, 5 s) until sshd has reaped its per-connection children
    local i
    for ((i = 0; i < 100; i++)); do pgrep -P "$SSHD_PID" >/dev/null || return 0; sleep 0.05; done
    log "warning: sshd still has children after 5 s"
}
CLK_TCK=$(getconf CLK_TCK)

rec() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$RESULTS"; }
FAILED=0
problem() { # ROUND SERVER METRIC MESSAGE
    FAILED=1
    rec "$1" "$2" "$3" FAIL
    printf 'round %s, %s, %s: %s\n' "$1" "$2" "$3" "$4" >>"$PROBLEMS"
    log "PROBLEM: round $1, $2, $3: $4"
}
# verify SERVER NAME SRCKEY SHA(0/1) -> 0 when the uploaded copy is right; removes it
verify() {
    local path; path=$(srv_local "$1" "$2")
    local want; [[ $3 == big ]] && want=$BIG_BYTES || want=$PART_BYTES
    local ok=0 size
    if [[ ! -f $path ]]; then
        VERIFY_MSG="uploaded file $2 not found on the server side"; ok=1
    else
        size=$(stat -c %s "$path")
        if [[ $size != "$want" ]]; then
            VERIFY_MSG="uploaded $2 has $size bytes, expected $want"; ok=1
        elif [[ $4 == 1 && $(sha256sum "$path" | cut -d' ' -f1) != "${SRC_SHA[$3]}" ]]; then
            VERIFY_MSG="uploaded $2 has the right size but a different sha256"; ok=1
        fi
    fi
    rm -f -- "$path"
    return "$ok"
}
rss_reset() { [[ $1 == userdrop ]] && { echo 5 >"/proc/$UD_PID/clear_refs" 2>/dev/null || RSS_RESET_FAILED=1; }; return 0; }
rss_peak_mb() { awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$UD_PID/status"; }
RSS_RESET_FAILED=0

# one client process, timed: sets WALL, CLI_CPU, SRV_CPU; returns its exit status
timed() { # SERVER OUTFILE CMD...
    local s=$1 out=$2; shift 2
    local t0 t1 rc c0 c1
    [[ $s == sshd ]] && sshd_settle
    c0=$(srv_ticks "$s")
    t0=$(now)
    set +e
    "$GNU_TIME" -f '%U %S' -o "$out.time" "$@" >"$out" 2>&1
    rc=$?
    set -e
    t1=$(now)
    WALL=$(elapsed "$t0" "$t1")
    [[ $s == sshd ]] && sshd_settle
    c1=$(srv_ticks "$s")
    SRV_CPU=$(awk -v a="$c0" -v b="$c1" -v t="$CLK_TCK" 'BEGIN { printf "%.2f", (b - a) / t }')
    CLI_CPU=$(awk 'END { printf "%.2f", $1 + $2 }' "$out.time" 2>/dev/null || echo "")
    return "$rc"
}

# check = which upload of this round gets a sha256: 0 sftp, 1 curl, 2 one parallel part
m_sftp() { # ROUND SERVER CHECK
    local r=$1 s=$2 name="r$1-sftp.bin"
    printf 'put %s %s\n' "$T/src/big.bin" "$name" >"$T/batch.put"
    sftp_argv "$s" "$T/batch.put"
    if timed "$s" "$T/out.sftp" "${SFTP_ARGV[@]}"; then
        if verify "$s" "$name" big "$(( $3 == 0 ))"; then
            rec "$r" "$s" sftp_s "$WALL"; rec "$r" "$s" srv_cpu_sftp "$SRV_CPU"; rec "$r" "$s" cli_cpu_sftp "$CLI_CPU"
            log "round $r $s sftp -b put: $WALL s"
        else problem "$r" "$s" sftp_s "$VERIFY_MSG"; fi
    else
        problem "$r" "$s" sftp_s "sftp -b exited non-zero: $(tail -n 3 "$T/out.sftp" | tr '\n' ' ')"
        rm -f -- "$(srv_local "$s" "$name")"
    fi
}
m_curl() {
    local r=$1 s=$2 name="r$1-curl.bin"
    local url
    url="sftp://127.0.0.1:$(srv_port "$s")$(srv_remote "$s" "$name")"
    if timed "$s" "$T/out.curl" "$CURL" -sS --fail -k -u "$(srv_user "$s"):" --key "$KEY" --pubkey "$KEY.pub" \
            -T "$T/src/big.bin" "$url"; then
        if verify "$s" "$name" big "$(( $3 == 1 ))"; then
            rec "$r" "$s" curl_s "$WALL"; rec "$r" "$s" srv_cpu_curl "$SRV_CPU"; rec "$r" "$s" cli_cpu_curl "$CLI_CPU"
            log "round $r $s curl -T: $WALL s"
        else problem "$r" "$s" curl_s "$VERIFY_MSG"; fi
    else
        problem "$r" "$s" curl_s "curl -T exited non-zero: $(tail -n 3 "$T/out.curl" | tr '\n' ' ')"
        rm -f -- "$(srv_local "$s" "$name")"
    fi
}
m_par() {
    local r=$1 s=$2 i t0 t1 bad="" pid
    local pids=()
    for ((i = 1; i <= PAR; i++)); do printf 'put %s r%s-part%s.bin\n' "$T/src/part$i.bin" "$r" "$i" >"$T/batch.part$i"; done
    [[ $s == sshd ]] && sshd_settle
    rss_reset "$s"
    t0=$(now)
    for ((i = 1; i <= PAR; i++)); do
        sftp_argv "$s" "$T/batch.part$i"
        "${SFTP_ARGV[@]}" >"$T/out.part$i" 2>&1 &
        pids+=($!)
    done
    CLIENT_PIDS=("${pids[@]}")
    for ((i = 1; i <= PAR; i++)); do
        wait "${pids[i - 1]}" || bad+=" part$i(exit $?: $(tail -n 1 "$T/out.part$i"))"
    done
    t1=$(now)
    CLIENT_PIDS=()
    [[ $s == userdrop ]] && rec "$r" "$s" rss_par_mb "$(rss_peak_mb)"
    local check=$(( (r % PAR) + 1 ))
    for ((i = 1; i <= PAR; i++)); do
        verify "$s" "r$r-part$i.bin" "part$i" "$(( $3 == 2 && i == check ))" || bad+=" $VERIFY_MSG;"
    done
    if [[ -z $bad ]]; then
        local mbs; mbs=$(awk -v b="$BIG_BYTES" -v a="$t0" -v z="$t1" 'BEGIN { printf "%.1f", b / (z - a) / 1e6 }')
        rec "$r" "$s" par_mbs "$mbs"
        log "round $r $s $PAR parallel: $mbs MB/s ($(elapsed "$t0" "$t1") s)"
    else
        problem "$r" "$s" par_mbs "${bad# }"
    fi
}
# peak RSS during one upload: a fresh userdrop server (same config and data
# dir, any free port) serves exactly one sftp -b put; its VmHWM is then the
# peak of start-up + that upload. Stopped afterwards.
m_rss() {
    local r=$1 name="r$1-rss.bin" peak
    if ! start_userdrop userdrop-fresh --listen 127.0.0.1:0; then
        problem "$r" userdrop rss_upload_mb "fresh server: $UD_START_ERR"; stop_server "$UD_START_PID"; return 0
    fi
    local UD_PID=$UD_START_PID UD_PORT=${UD_START_ADDR##*:}   # dynamic scope: srv_port/srv_pid see these
    printf 'put %s %s\n' "$T/src/big.bin" "$name" >"$T/batch.rss"
    sftp_argv userdrop "$T/batch.rss"
    if "${SFTP_ARGV[@]}" >"$T/out.rss" 2>&1; then
        peak=$(rss_peak_mb)
        if verify userdrop "$name" big 0; then
            rec "$r" userdrop rss_upload_mb "$peak"
            log "round $r userdrop fresh server, one upload: peak RSS $peak MB"
        else problem "$r" userdrop rss_upload_mb "$VERIFY_MSG"; fi
    else
        problem "$r" userdrop rss_upload_mb "sftp -b to a fresh server exited non-zero: $(tail -n 3 "$T/out.rss" | tr '\n' ' ')"
        rm -f -- "$(srv_local userdrop "$name")"
    fi
    stop_server "$UD_PID"
}
m_ls() {
    local r=$1 s=$2 k
    printf 'ls\n' >"$T/batch.ls"
    sftp_argv "$s" "$T/batch.ls"
    for ((k = 1; k <= LS_REPS; k++)); do
        if timed "$s" "$T/out.ls" "${SFTP_ARGV[@]}"; then
            rec "$r" "$s" ls_s "$WALL"
        else
            problem "$r" "$s" ls_s "sftp -b ls exited non-zero: $(tail -n 3 "$T/out.ls" | tr '\n' ' ')"
        fi
    done
    # information: the same with the key exchange pinned to what userdrop negotiates by default
    # (OpenSSH 9.x prefers sntrup761x25519-sha512, which costs both ends CPU)
    sftp_argv "$s" "$T/batch.ls" -o "KexAlgorithms=$LS_KEX"
    for ((k = 1; k <= LS_REPS; k++)); do
        if timed "$s" "$T/out.ls" "${SFTP_ARGV[@]}"; then
            rec "$r" "$s" ls_kex_s "$WALL"
        else
            problem "$r" "$s" ls_kex_s "sftp -o KexAlgorithms=$LS_KEX -b ls exited non-zero: $(tail -n 3 "$T/out.ls" | tr '\n' ' ')"
        fi
    done
    log "round $r $s connect+auth+ls: $(awk -F'\t' -v r="$r" -v s="$s" '$1 == r && $2 == s && $3 == "ls_s" { printf "%s ", $4 }' "$RESULTS")(kex $LS_KEX: $(awk -F'\t' -v r="$r" -v s="$s" '$1 == r && $2 == s && $3 == "ls_kex_s" { printf "%s ", $4 }' "$RESULTS"))"
}

# ---------------------------------------------------------- smoke checks ----
cipher_of() { # SERVER -> negotiated kex / cipher, from ssh -v
    printf 'ls\n' >"$T/batch.ls"
    "$SFTP" -v "${SSH_OPTS[@]}" -o LogLevel=DEBUG1 -P "$(srv_port "$1")" -b "$T/batch.ls" "$(srv_user "$1")@127.0.0.1" 2>&1 >/dev/null \
        | awk '/kex: algorithm:/ { k = $NF } /kex: client->server cipher:/ { c = $5; mac = $7 } END { printf "kex %s, cipher %s%s", k, c, (mac == "<implicit>" ? "" : " + " mac) }'
}
for s in "${SERVERS[@]}"; do
    printf 'ls\n' >"$T/batch.ls"
    sftp_cmd "$s" "$T/batch.ls" >"$T/out.smoke" 2>&1 || { cat "$T/out.smoke" >&2; die "$s: sftp -b ls fails before any measurement"; }
done
PW_AUTH="not tried (SSHD_ONLY)"
if [[ $SSHD_ONLY != 1 ]]; then
    # password login works too (not timed: sshd runs as root with keys only)
    if [[ -x $SSHPASS_BIN ]] && SSHPASS="$UD_PASSWORD" "$SSHPASS_BIN" -e "$SFTP" -q -F /dev/null -o BatchMode=no \
            -o PubkeyAuthentication=no -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
            -P "$UD_PORT" -b "$T/batch.ls" bench@127.0.0.1 >"$T/out.pw" 2>&1; then
        PW_AUTH="ok"
    else
        PW_AUTH="FAILED ($(tail -n 1 "$T/out.pw"))"
    fi
fi

{
    echo "Machine: $(nproc) cores ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), $(awk '/^MemTotal/ { printf "%.0f GB RAM", $2 / 1048576 }' /proc/meminfo); $(date -u '+%Y-%m-%d %H:%M UTC'). Load average before the runs: $(cut -d' ' -f1-3 /proc/loadavg)."
    echo "Repo at $(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$REPO_DIR" diff --quiet HEAD -- 2>/dev/null || echo ' (with uncommitted changes)'). \`ROUNDS=$ROUNDS\`, medians; server order alternates per round. Files: ${SIZE_MIB} MiB random; ${PAR} x $((PART_BYTES / 1048576)) MiB for the parallel test (same ${SIZE_MIB} MiB in total). MB = 10^6 bytes for rates, 1024 KiB for RSS."
    echo "Clients: $(/usr/bin/ssh -V 2>&1 | cut -d, -f1) \`sftp -b\`; $("$CURL" -V | head -n 1 | grep -o 'curl [^ ]*') with $("$CURL" -V | head -n 1 | grep -o 'libssh2/[^ ]*'), key auth (ed25519) for both servers."
    for s in "${SERVERS[@]}"; do
        if [[ $s == sshd ]]; then
            echo "sshd: \`$SSHD -f CONFIG -D -e\` (internal-sftp, no chroot, runs as root), $(cipher_of sshd)."
        else
            echo "userdrop: \`${SFTP_SERVER_BIN#"$REPO_DIR"/} --config CONFIG\`, $(cipher_of userdrop); idle RSS ${UD_RSS_IDLE_KB:-?} KB; password auth (sshpass + sftp): $PW_AUTH."
        fi
    done
} >"$META"
[[ $PW_AUTH == ok || $SSHD_ONLY == 1 ]] || printf 'password login to userdrop: %s\n' "$PW_AUTH" >>"$PROBLEMS"

# ---------------------------------------------------------------- rounds ----
log "$ROUNDS rounds: ${SERVERS[*]}"
for ((r = 1; r <= ROUNDS; r++)); do
    if (( r % 2 )); then order=("${SERVERS[@]}"); else order=(); for ((i = ${#SERVERS[@]} - 1; i >= 0; i--)); do order+=("${SERVERS[i]}"); done; fi
    check=$(( (r - 1) % 3 ))
    for m in sftp curl par ls; do
        for s in "${order[@]}"; do "m_$m" "$r" "$s" "$check"; done
    done
    [[ $SSHD_ONLY == 1 ]] || m_rss "$r"
done
if [[ $SSHD_ONLY != 1 ]]; then
    rec all userdrop rss_lifetime_mb "$(rss_peak_mb)"
    rec all userdrop rss_end_mb "$(awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$UD_PID/status")"
fi
(( RSS_RESET_FAILED == 0 )) || echo "could not reset VmHWM (/proc/PID/clear_refs): the RSS figures are the server's lifetime peak" >>"$PROBLEMS"

report
exit "$FAILED"
