"""A reverse proxy in front of the real SCIM application (scim2-server), for
tests/provision.rs: it answers some requests itself with an error, so the
provisioner's retry paths that scim2-server never takes (5xx, 429 with
Retry-After, an application that is down) are exercised against the real
application behind it.

    python3 scim_flaky.py [--backend PORT] [--fail N] [--status S]
                          [--retry-after SECS] [--fail-user NAME]

Listens on 127.0.0.1, a free port, and prints `PORT <n>` once it listens.
The first N requests (only those whose JSON body has userName NAME, with
--fail-user) are answered with status S (default 503) and, with
--retry-after, a `Retry-After: SECS` header; every other request is sent on
to 127.0.0.1:PORT and its answer returned. Without a backend (none given
yet, or it refuses the connection) the connection is closed without an
answer, as an application that is down.

A line `BACKEND <port>` on stdin points the proxy at another backend; it
answers `BACKEND <port>` on stdout once it does; a line `HEAL` ends the
failures (answered `HEAL`). It exits when its stdin
closes (the test that started it is gone).

For each request it prints, once answered:
    REQ <n> <ms since start> <method> <path> <userName or -> <status>
(status 0: closed without an answer), so a test counts and orders the
requests without guessing.
"""

import argparse
import http.client
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection"}


class State:
    def __init__(self, args):
        self.lock = threading.Lock()
        self.backend = args.backend
        self.fail = args.fail
        self.status = args.status
        self.retry_after = args.retry_after
        self.fail_user = args.fail_user
        self.n = 0
        self.start = time.monotonic()


STATE = None
OUT = threading.Lock()


def say(line):
    with OUT:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        user = "-"
        if body:
            try:
                user = json.loads(body).get("userName") or "-"
            except (ValueError, AttributeError):
                pass
        with STATE.lock:
            STATE.n += 1
            n = STATE.n
            fake = None
            if STATE.fail > 0 and (STATE.fail_user is None or STATE.fail_user == user):
                STATE.fail -= 1
                fake = STATE.status
            backend = STATE.backend
        at = int((time.monotonic() - STATE.start) * 1000)
        if fake is not None:
            text = json.dumps({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                "status": str(fake),
                "detail": "scim_flaky: not now",
            }).encode()
            self.send_response(fake)
            self.send_header("Content-Type", "application/scim+json")
            self.send_header("Content-Length", str(len(text)))
            if STATE.retry_after is not None:
                self.send_header("Retry-After", str(STATE.retry_after))
            self.end_headers()
            self.wfile.write(text)
            self.wfile.flush()
            say(f"REQ {n} {at} {self.command} {self.path} {user} {fake}")
            return
        status = 0
        try:
            if backend is None:
                raise ConnectionRefusedError("no backend")
            conn = http.client.HTTPConnection("127.0.0.1", backend, timeout=60)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
            conn.request(self.command, self.path, body=body or None, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            conn.close()
        except OSError:
            # Down: no answer at all.
            self.close_connection = True
            say(f"REQ {n} {at} {self.command} {self.path} {user} 0")
            return
        status = resp.status
        self.send_response(status)
        for k, v in resp.getheaders():
            if k.lower() not in HOP and k.lower() not in ("server", "date"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()
        say(f"REQ {n} {at} {self.command} {self.path} {user} {status}")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any


def control():
    for line in sys.stdin:
        parts = line.split()
        if len(parts) == 2 and parts[0] == "BACKEND":
            with STATE.lock:
                STATE.backend = int(parts[1])
            say(f"BACKEND {parts[1]}")
        elif parts == ["HEAL"]:
            with STATE.lock:
                STATE.fail = 0
            say("HEAL")
    # The test that started it is gone.
    os._exit(0)


def main():
    global STATE
    p = argparse.ArgumentParser()
    p.add_argument("--backend", type=int, default=None)
    p.add_argument("--fail", type=int, default=0)
    p.add_argument("--status", type=int, default=503)
    p.add_argument("--retry-after", type=int, default=None)
    p.add_argument("--fail-user", default=None)
    args = p.parse_args()
    STATE = State(args)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    say(f"PORT {server.server_port}")
    threading.Thread(target=control, daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
