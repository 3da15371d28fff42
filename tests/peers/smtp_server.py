#!/usr/bin/env python3
"""A real SMTP server for userdrop's mail tests (aiosmtpd).

Listens on 127.0.0.1 (port 0 = any free one) and prints, one line each,
flushed:
    port N              once, when it accepts connections
    message PATH        for each message received, saved as PATH (raw bytes)
                        with PATH.json beside it ({"mail_from", "rcpt_tos"})
It runs until its standard input closes (the test process ended or dropped
it), so it never outlives the test.

    smtp_server.py --dir DIR [--port N] [--starttls CERT KEY | --tls CERT KEY]
                   [--auth USER:PASSWORD]

--starttls: STARTTLS offered and required before MAIL; --tls: TLS from the
first byte (implicit TLS, "smtps"); --auth: AUTH required (PLAIN/LOGIN, only
over TLS) with these credentials.
"""

import argparse
import asyncio
import json
import os
import ssl
import sys

try:
    from aiosmtpd.smtp import SMTP, AuthResult
except ImportError:
    print("aiosmtpd is missing: pip install aiosmtpd (scripts/test installs it)", file=sys.stderr)
    sys.exit(3)


class Saver:
    def __init__(self, directory):
        self.directory = directory
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        path = os.path.join(self.directory, "%04d.eml" % self.count)
        data = envelope.original_content or envelope.content
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        with open(path + ".json", "w") as f:
            json.dump({"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos}, f)
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, path)
        print("message " + path, flush=True)
        return "250 OK"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--starttls", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--auth")
    a = p.parse_args()
    os.makedirs(a.dir, exist_ok=True)

    def context(pair):
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(pair[0], pair[1])
        return ctx

    starttls = context(a.starttls) if a.starttls else None
    implicit = context(a.tls) if a.tls else None
    handler = Saver(a.dir)

    def authenticator(server, session, envelope, mechanism, auth_data):
        user, password = a.auth.split(":", 1)
        ok = auth_data.login.decode() == user and auth_data.password.decode() == password
        return AuthResult(success=ok)

    def factory():
        kwargs = dict(hostname="userdrop-test", ident="userdrop test SMTP")
        if starttls:
            kwargs.update(tls_context=starttls, require_starttls=True)
        if a.auth:
            # Over implicit TLS the whole session is encrypted already.
            kwargs.update(authenticator=authenticator, auth_required=True,
                          auth_require_tls=implicit is None)
        return SMTP(handler, **kwargs)

    async def serve():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(factory, "127.0.0.1", a.port, ssl=implicit)
        print("port %d" % server.sockets[0].getsockname()[1], flush=True)
        # Runs until stdin closes.
        await loop.run_in_executor(None, sys.stdin.buffer.read)
        server.close()

    asyncio.run(serve())
    os._exit(0)


if __name__ == "__main__":
    main()
