#!/usr/bin/env python3
"""SCIM provisioning benchmark (issue 15); run by bench/scim/run.sh, see
bench/README.md, section "SCIM provisioning (bench/scim)".

Each round runs, in turn (A B A B ...), on a fresh in-memory scim2-server:

A  userdrop: a release `userdrop serve` whose tenant `bench` has
   `[tenants.bench.provision]` pointing at the server. The users file is
   uploaded through the HTTP API (`POST /v1/tenants/bench/imports?wait=true`);
   once the job is archived the daemon wakes its provisioner. Timed from the
   daemon's `archived` log line of that job to its `provisioned` line whose
   `seq` is the ledger's last change (both timestamps are the daemon's own:
   no polling load on the application, and the cursor moves only once the
   application answered every change before it). Afterwards (untimed) the
   application is asked how many users it holds: it must be every one.

B  the floor: a plain Python loop, one `requests.Session()` (keep-alive on
   the client side), POSTing the same users one after another, each as the
   same SCIM JSON `src/provision/mapping.rs` builds. Timed from the first
   request to the last answer (the bodies are built before the clock starts).

Prints a markdown table (min / median / max of A, B and A/B pair by pair)
on stdout, progress on stderr. Exit 1 when a run failed or the application
did not end up holding every user.
"""

import argparse
import csv
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime

import requests

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCIM_PEER = os.path.join(REPO, "tests", "peers", "scim_server.py")
TOKEN = "bench-scim-token"
TENANT = "bench"
CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
COUNTRIES = ["US", "DE", "FR", "GB", "NL", "SE"]


def log(msg):
    sys.stderr.write(f"[bench/scim {time.strftime('%H:%M:%S')}] {msg}\n")
    sys.stderr.flush()


def generate(path, users, seed):
    """A deterministic users file: every user new, no managers (so A and B
    send the same requests, one POST per user)."""
    rnd = random.Random(seed)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["userId", "email", "firstName", "lastName", "mobileNumber", "country", "roles"])
        for i in range(users):
            w.writerow([
                f"u{i:06d}",
                f"u{i:06d}@bench.example",
                f"First{i}",
                f"Last{rnd.randint(0, 10**6)}",
                f"+1555{rnd.randint(0, 10**7 - 1):07d}",
                rnd.choice(COUNTRIES),
                "staff",
            ])


def scim_bodies(path):
    """Each row as the SCIM JSON src/provision/mapping.rs sends for a new,
    enabled user without a manager (same keys, same order)."""
    bodies = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            key = row["userId"]
            o = {"schemas": [CORE], "userName": key, "externalId": key}
            o["name"] = {"givenName": row["firstName"], "familyName": row["lastName"]}
            o["emails"] = [{"value": row["email"], "primary": True}]
            o["active"] = True
            o["phoneNumbers"] = [{"value": row["mobileNumber"], "type": "mobile"}]
            o["addresses"] = [{"country": row["country"]}]
            o["roles"] = [{"value": row["roles"]}]
            bodies.append(json.dumps(o, separators=(",", ":")).encode())
    return bodies


class App:
    """A fresh scim2-server (in memory), through tests/peers/scim_server.py."""

    def __init__(self):
        self.proc = subprocess.Popen(
            [sys.executable, SCIM_PEER, "--port", "0", "--bearer-token", TOKEN],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True)
        for line in self.proc.stdout:
            if line.startswith("PORT "):
                self.port = int(line.split()[1])
                break
        else:
            raise SystemExit(f"scim2-server exited before listening ({self.proc.wait()}): "
                             "pip install scim2-server")
        self.url = f"http://127.0.0.1:{self.port}/v2"

    def held(self):
        r = requests.get(f"{self.url}/Users", params={"count": "0"},
                         headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120)
        r.raise_for_status()
        return r.json()["totalResults"]

    def cpu(self):
        return cpu_seconds(self.proc.pid)

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def cpu_seconds(pid):
    """User + system CPU time of a process so far, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


CPU = {}


def overflows():
    """The kernel's count of connections dropped by a full listen backlog
    (each one costs its client a 1 s SYN retransmission); None without nstat.
    It counts the whole machine's listeners, not only this run's."""
    if not shutil.which("nstat"):
        return None
    out = subprocess.run(["nstat", "-az", "TcpExtListenOverflows"], capture_output=True,
                         text=True).stdout
    for line in out.splitlines():
        if line.startswith("TcpExtListenOverflows"):
            return int(line.split()[1])
    return None


def counted(side, f, *args):
    before = overflows()
    wall = f(*args)
    after = overflows()
    if before is not None and after is not None:
        CPU.setdefault(f"{side}_listen_overflows", []).append(after - before)
    return wall


def run_b(bodies):
    app = App()
    try:
        s = requests.Session()
        s.headers.update({
            "Authorization": f"Bearer {TOKEN}",
            "Content-Type": "application/scim+json",
            "Accept": "application/scim+json, application/json",
        })
        url = f"{app.url}/Users"
        start = time.monotonic()
        for b in bodies:
            r = s.post(url, data=b, timeout=30)
            if r.status_code != 201:
                raise SystemExit(f"B: POST answered {r.status_code}: {r.text[:300]}")
        wall = time.monotonic() - start
        CPU.setdefault("b_app", []).append(app.cpu())
        held = app.held()
        if held != len(bodies):
            raise SystemExit(f"B: the application holds {held} users, not {len(bodies)}")
        return wall
    finally:
        app.stop()


def ts(line):
    return datetime.fromisoformat(line["timestamp"].replace("Z", "+00:00")).timestamp()


def run_a(binary, csv_path, users):
    app = App()
    work = tempfile.mkdtemp(prefix="bench-scim-")
    serve = None
    try:
        token_file = os.path.join(work, "scim.token")
        with open(token_file, "w") as f:
            f.write(TOKEN + "\n")
        config = os.path.join(work, "userdrop.toml")
        with open(config, "w") as f:
            f.write(f"""data_dir = "{work}/data"
log_format = "json"
[sftp]
listen = "127.0.0.1:0"
[http]
listen = "127.0.0.1:0"
max_upload = "1GiB"
[tenants.{TENANT}]
failed_import_email = "it@bench.example"
[tenants.{TENANT}.provision]
scim_url = "{app.url}"
token_file = "{token_file}"
""")
        out = subprocess.run([binary, "--config", config, "api-key", "new", "--tenant", TENANT,
                              "--name", "bench"], capture_output=True, text=True, check=True).stdout
        key = next(l.split()[0] for l in out.splitlines() if l.startswith("  udk_"))
        with open(config, "a") as f:
            f.write(out[out.index("[[tenants"):])
        err = open(os.path.join(work, "serve.err"), "w")
        serve = subprocess.Popen([binary, "--config", config, "serve"], stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=err, text=True)
        http = None
        for line in serve.stdout:
            if line.startswith("userdrop: HTTP listening on "):
                http = line.split("on ", 1)[1].strip()
                break
        if http is None:
            raise SystemExit(f"A: userdrop serve exited ({serve.wait()}); see {work}/serve.err")
        with open(csv_path, "rb") as f:
            r = requests.post(f"{http}/v1/tenants/{TENANT}/imports", params={"wait": "true"},
                              headers={"x-api-key": key}, files={"file": ("users.csv", f)},
                              timeout=600)
        if r.status_code >= 300:
            raise SystemExit(f"A: upload answered {r.status_code}: {r.text[:300]}")
        job = r.json().get("id")
        # The job is decided: its changes are in the ledger.
        last = status_last(binary, config)
        archived = end = None
        deadline = time.monotonic() + 1800
        with open(os.path.join(work, "serve.err")) as lines:
            while archived is None or end is None:
                line = lines.readline()
                if not line:
                    if serve.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit(f"A: no end of provisioning; see {work}/serve.err")
                    time.sleep(0.05)
                    continue
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                fields = ev.get("fields", {})
                msg = fields.get("message")
                if msg == "archived" and str(fields.get("job")) == str(job):
                    archived = ts(ev)
                elif msg == "provisioned" and str(fields.get("seq")) == str(last):
                    end = ts(ev)
        CPU.setdefault("a_app", []).append(app.cpu())
        CPU.setdefault("a_userdrop", []).append(cpu_seconds(serve.pid))
        held = app.held()
        if held != users:
            raise SystemExit(f"A: the application holds {held} users, not {users}")
        return end - archived
    finally:
        if serve is not None:
            serve.terminate()
            serve.wait()
        app.stop()
        shutil.rmtree(work, ignore_errors=True)


def status_last(binary, config):
    out = subprocess.run([binary, "--config", config, "provision", "status", "--json"],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)["last_seq"]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", required=True)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--users", type=int, default=10000)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--only", choices=["a", "b"], default=None)
    args = p.parse_args()

    work = tempfile.mkdtemp(prefix="bench-scim-csv-")
    csv_path = os.path.join(work, "users.csv")
    generate(csv_path, args.users, args.seed)
    bodies = scim_bodies(csv_path)
    a, b = [], []
    for i in range(args.runs):
        if args.only != "b":
            wall = counted("a", run_a, args.bin, csv_path, args.users)
            a.append(wall)
            log(f"run {i + 1}: A userdrop {wall:.2f} s")
        if args.only != "a":
            wall = counted("b", run_b, bodies)
            b.append(wall)
            log(f"run {i + 1}: B python loop {wall:.2f} s")
    shutil.rmtree(work, ignore_errors=True)

    def row(name, xs, fmt="{:.2f}"):
        return f"| {name} | " + " | ".join(fmt.format(v) for v in (min(xs), statistics.median(xs), max(xs))) + " |"

    print(f"{args.users} new users, {args.runs} runs each (A B A B ...), load before "
          f"{open('/proc/loadavg').read().split()[0]}\n")
    print("| | min | median | max |")
    print("| --- | --- | --- | --- |")
    if a:
        print(row("A userdrop serve, s", a))
    if b:
        print(row("B python requests loop, s", b))
    if a and b:
        print(row("A/B (pair by pair)", [x / y for x, y in zip(a, b)], "{:.2f}"))
    for k, xs in sorted(CPU.items()):
        what = "listen backlog overflows" if k.endswith("overflows") else "CPU seconds"
        print(f"\n{what}, {k}: {' '.join(f'{x:.1f}' if isinstance(x, float) else str(x) for x in xs)}", end="")
    print()
    print(f"\nA runs: {' '.join(f'{x:.2f}' for x in a)}; B runs: {' '.join(f'{x:.2f}' for x in b)}")


if __name__ == "__main__":
    main()
