#!/usr/bin/env python3
"""Times the web page's Users table: signs in as a browser does, then asks
for the first page, a page from the middle (by its cursor) and a prefix
search, N times each, over one keep-alive connection. Prints a markdown
table of the server's time (Server-Timing) and the client's wall time.

Usage: users.py BASE_URL TENANT USER PASSWORD N ROWS
"""

import http.client
import re
import sys
import time
import urllib.parse


def main():
    base, tenant, user, password, n, rows = sys.argv[1:7]
    n, rows = int(n), int(rows)
    u = urllib.parse.urlparse(base)
    conn = http.client.HTTPConnection(u.hostname, u.port)

    def req(method, path, body=None, cookie=None, ctype=None):
        h = {}
        if cookie:
            h["Cookie"] = cookie
        if ctype:
            h["Content-Type"] = ctype
        t0 = time.perf_counter()
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        data = r.read()
        wall = (time.perf_counter() - t0) * 1000
        return r, data, wall

    r, data, _ = req("GET", "/ui/")
    signin = re.search(r"userdrop_signin=([0-9a-f]+)", r.getheader("Set-Cookie", "")).group(1)
    csrf = re.search(rb'name="csrf" value="([0-9a-f]+)"', data).group(1).decode()
    form = urllib.parse.urlencode({"tenant": tenant, "user": user, "password": password, "csrf": csrf})
    r, _, _ = req("POST", "/ui/signin", form, f"userdrop_signin={signin}", "application/x-www-form-urlencoded")
    assert r.status == 303, r.status
    session = re.search(r"userdrop_session=([0-9a-f]+)", ",".join(r.headers.get_all("Set-Cookie"))).group(1)
    cookie = f"userdrop_session={session}"

    middle = f"U{rows // 2:07d}"
    cases = [
        ("first page", "/ui/users"),
        (f"a middle page (after={middle})", f"/ui/users?after={middle}"),
        ("prefix search, name \"kat\"", "/ui/users?q=kat&by=name"),
        ("prefix search, email \"mar\"", "/ui/users?q=mar&by=email"),
        ("prefix search, name \"kat\", next page", None),
    ]
    # The next page of the name search, from its own Next link.
    r, data, _ = req("GET", "/ui/users?q=kat&by=name", cookie=cookie)
    nxt = re.search(rb'id="next" rel="next" href="([^"]+)"', data)
    cases[-1] = (cases[-1][0], nxt.group(1).decode().replace("&amp;", "&") if nxt else "/ui/users?q=kat&by=name")

    print("| request | rows shown | server p50 | server p95 | server max | client p95 | target p95 ≤ 50 ms |")
    print("|---|---|---|---|---|---|---|")
    for label, path in cases:
        server, wall = [], []
        shown = 0
        for i in range(n + 5):
            r, data, w = req("GET", path, cookie=cookie)
            assert r.status == 200, (path, r.status, data[:200])
            dur = float(re.search(r"dur=([0-9.]+)", r.getheader("Server-Timing")).group(1))
            if i >= 5:  # the first few warm the caches
                server.append(dur)
                wall.append(w)
            shown = data.count(b"<tr>") - 1
        server.sort()
        wall.sort()
        p = lambda xs, q: xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]
        ok = "met" if p(server, 0.95) <= 50 else "**not met**"
        print(f"| {label} | {shown} | {p(server, .5):.2f} ms | {p(server, .95):.2f} ms | {server[-1]:.2f} ms | {p(wall, .95):.2f} ms | {ok} |")


if __name__ == "__main__":
    main()
