#!/usr/bin/env python3
"""Pickup latency of `userdrop serve` (issue 4's benchmark).

1. 50 sequential uploads of a 1,000-row file with OpenSSH `sftp -b`: time
   from the client's exit to the job reaching its final state (the daemon's
   "job finished" log line, microsecond timestamps). Target p50 <= 250 ms,
   p95 <= 1 s.
2. 20 tenants uploading at once (one `sftp` each, in parallel): all
   processed; the total from the first client's start to the last job.

Usage: python3 bench/latency/run.py [--uploads 50] [--tenants 20]
Builds the release binary first (cargo build --release). Everything listens
on 127.0.0.1; the data dir is a temp dir, removed at the end.
"""
import argparse
import datetime
import json
import os
import queue
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(REPO, "target", "release", "userdrop")


def users_csv(rows, salt):
    lines = ["user_id,email,first_name,last_name,enabled,roles"]
    for i in range(1, rows + 1):
        lines.append(f"{salt}{i:06},{salt.lower()}.{i}@example.com,First{i},Last{i},true,staff")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--uploads", type=int, default=50)
    ap.add_argument("--tenants", type=int, default=20)
    ap.add_argument("--rows", type=int, default=1000)
    args = ap.parse_args()

    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=REPO, check=True)
    tmp = tempfile.mkdtemp(prefix="userdrop-latency-")
    try:
        run(tmp, args)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(tmp, args):
    key = os.path.join(tmp, "id_ed25519")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
    public = open(key + ".pub").read().strip()
    tenants = ["acme"] + [f"t{i:02}" for i in range(1, args.tenants)]
    conf = [f'data_dir = "{tmp}/data"', 'log_format = "json"', "workers = 2",
            "[sftp]", 'listen = "127.0.0.1:0"', "max_sessions = 200", "max_sessions_per_account = 50"]
    for t in tenants:
        conf += [f"[tenants.{t}]", f'failed_import_email = "it@{t}.example"',
                 f"[[tenants.{t}.accounts]]", f'name = "{t}-hr"', f'authorized_keys = ["{public}"]']
    cfg = os.path.join(tmp, "userdrop.toml")
    open(cfg, "w").write("\n".join(conf) + "\n")

    daemon = subprocess.Popen([BIN, "--config", cfg, "serve"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "RUST_LOG": "info"})
    line = daemon.stdout.readline()
    port = int(line.split("listening on ")[1].split(";")[0].rsplit(":", 1)[1])
    finished = queue.Queue()
    archived = {}

    def tail():
        for l in daemon.stderr:
            try:
                v = json.loads(l)
            except ValueError:
                continue
            f = v.get("fields", {})
            ts = datetime.datetime.fromisoformat(v["timestamp"].replace("Z", "+00:00")).timestamp()
            if f.get("message") == "job finished":
                finished.put((f.get("tenant"), f.get("file"), ts, f.get("status")))
            elif f.get("message") == "archived":
                archived[(f.get("tenant"), f.get("file"))] = ts
    threading.Thread(target=tail, daemon=True).start()

    ssh = ["-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
           "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o", "LogLevel=ERROR",
           "-i", key, "-P", str(port)]

    def put(tenant, local, remote):
        batch = os.path.join(tmp, f"batch-{tenant}-{remote}")
        open(batch, "w").write(f"put {local} {remote}\n")
        subprocess.run(["sftp", *ssh, "-b", batch, f"{tenant}-hr@127.0.0.1"], check=True,
                       stdout=subprocess.DEVNULL)

    def wait(tenant, name):
        while True:
            t, f, ts, status = finished.get(timeout=60)
            if (t, f) == (tenant, name):
                return ts, status

    local = os.path.join(tmp, "users.csv")
    # 1. Sequential uploads: each new content (a new user per upload) so every job writes.
    lat = []
    names = []
    for i in range(args.uploads):
        open(local, "w").write(users_csv(args.rows, f"S{i:02}"))
        name = f"users{i:02}.csv"
        put("acme", local, name)
        exited = time.time()
        ts, status = wait("acme", name)
        assert status == "ok", status
        lat.append((ts - exited) * 1000)
        names.append((name, exited))
    time.sleep(0.5)  # let the last "archived" line arrive (reporting only)
    arch = sorted((archived[("acme", n)] - e) * 1000 for n, e in names if ("acme", n) in archived)
    lat.sort()
    p50 = statistics.median(lat)
    p95 = lat[max(0, int(round(0.95 * len(lat))) - 1)]
    print(f"sequential: {args.uploads} uploads of {args.rows} rows: client exit -> job final state: "
          f"p50 {p50:.0f} ms, p95 {p95:.0f} ms, min {lat[0]:.0f} ms, max {lat[-1]:.0f} ms "
          f"(targets: p50 <= 250 ms, p95 <= 1000 ms); to .bak/ + results/: "
          f"p50 {statistics.median(arch):.0f} ms, p95 {arch[max(0, int(round(0.95 * len(arch))) - 1)]:.0f} ms")

    # 2. Every tenant uploads at once.
    for t in tenants:
        open(os.path.join(tmp, f"{t}.csv"), "w").write(users_csv(args.rows, t.upper()))
    start = time.time()
    threads = [threading.Thread(target=put, args=(t, os.path.join(tmp, f"{t}.csv"), "users.csv"))
               for t in tenants]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    uploaded = time.time()
    seen = {}
    while len(seen) < len(tenants):
        t, f, ts, status = finished.get(timeout=120)
        if f == "users.csv":
            seen[t] = (ts, status)
    last = max(ts for ts, _ in seen.values())
    ok = sum(1 for _, s in seen.values() if s == "ok")
    print(f"parallel: {len(tenants)} tenants at once: {ok}/{len(tenants)} processed ok; "
          f"uploads took {uploaded - start:.2f} s, last job final {last - start:.2f} s after the first "
          f"client started ({(last - uploaded) * 1000:.0f} ms after the last client exited)")
    daemon.terminate()
    daemon.wait(timeout=60)


if __name__ == "__main__":
    sys.exit(main())
