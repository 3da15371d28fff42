#!/usr/bin/env python3
"""A real SMTP server for userdrop's mail tests (aiosmtpd).

Binds 127.0.0.1 on a port the kernel picks (port 0: no port is ever guessed
and reused, so parallel tests cannot race for one) and prints, one line
each, flushed:
    port N              once, when the port is bound
    up                  when it accepts connections (at once, or on "up")
    connect             a client connected
    command VERB        each SMTP command received (EHLO, STARTTLS, AUTH,
                        MAIL, RCPT, DATA, QUIT, ...), before it is answered
    auth ok|rejected    the outcome of each AUTH
    message PATH        each message accepted, saved as PATH (raw bytes)
                        with PATH.json beside it ({"mail_from", "rcpt_tos"})
    rejected PATH       each message refused at the end of DATA, saved the
                        same way (what the client did send)
    disconnect          a client connection ended
It runs until its standard input closes (the test process ended or dropped
it), so it never outlives the test. Lines read on standard input are
commands: "up" starts listening (see --down).

    smtp_server.py --dir DIR [--starttls CERT KEY | --tls CERT KEY]
                   [--auth USER:PASSWORD] [--reject STAGE:N] [--down]

--starttls: STARTTLS offered and required before MAIL; --tls: TLS from the
first byte (implicit TLS, "smtps"); without either, STARTTLS is not offered
at all. --auth: AUTH required (PLAIN/LOGIN, only over TLS) with these
credentials. --reject rcpt:N / data:N / auth:N: the first N attempts are
refused permanently at that stage (550 at RCPT, 554 after DATA, 535 for
AUTH: an attempt is a MAIL transaction, or an AUTH command), later ones
accepted. --down: the port is bound but not listening (a connection is
refused, as by a server that is down, and no other process can take the
port) until "up" arrives on standard input.
"""

import argparse
import asyncio
import functools
import json
import logging
import os
import socket
import ssl
import sys
import warnings

try:
    from aiosmtpd.smtp import SMTP, AuthResult
except ImportError:
    print("aiosmtpd is missing: pip install aiosmtpd (scripts/test installs it)", file=sys.stderr)
    sys.exit(3)


def say(line):
    print(line, flush=True)


class Saver:
    def __init__(self, directory, reject_stage, reject_count):
        self.directory = directory
        self.count = 0
        self.transactions = 0
        self.reject_stage = reject_stage
        self.reject_count = reject_count

    def refusing(self, stage):
        return self.reject_stage == stage and self.transactions <= self.reject_count

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        self.transactions += 1
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refusing("rcpt"):
            return "550 5.1.1 mailbox unavailable (test: refused on purpose)"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        refuse = self.refusing("data")
        name = "%04d.eml" % self.count if not refuse else "%04d.rejected" % self.count
        path = os.path.join(self.directory, name)
        data = envelope.original_content or envelope.content
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        with open(path + ".json", "w") as f:
            json.dump({"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos}, f)
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, path)
        if refuse:
            say("rejected " + path)
            return "554 5.6.0 message refused (test: refused on purpose)"
        say("message " + path)
        return "250 OK"


class Logging(SMTP):
    """An SMTP session that reports what its client does."""

    def connection_made(self, transport):
        if not getattr(self, "_said_connect", False):
            self._said_connect = True
            say("connect")
        super().connection_made(transport)

    def connection_lost(self, error):
        super().connection_lost(error)
        if not getattr(self, "_said_disconnect", False):
            self._said_disconnect = True
            say("disconnect")


def logged(verb):
    original = getattr(SMTP, "smtp_" + verb)

    # wraps: keeps the @syntax marks aiosmtpd reads (HELP, STARTTLS "when").
    @functools.wraps(original)
    async def method(self, arg):
        say("command " + verb)
        return await original(self, arg)
    return method


for _verb in ("EHLO", "HELO", "STARTTLS", "AUTH", "MAIL", "RCPT", "DATA", "RSET", "QUIT", "NOOP"):
    setattr(Logging, "smtp_" + _verb, logged(_verb))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True)
    p.add_argument("--starttls", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--auth")
    p.add_argument("--reject", metavar="STAGE:N")
    p.add_argument("--down", action="store_true")
    a = p.parse_args()
    os.makedirs(a.dir, exist_ok=True)

    def context(pair):
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(pair[0], pair[1])
        return ctx

    reject_stage, reject_count = None, 0
    if a.reject:
        reject_stage, n = a.reject.split(":", 1)
        if reject_stage not in ("rcpt", "data", "auth"):
            p.error("--reject: STAGE is rcpt, data or auth")
        reject_count = int(n)

    starttls = context(a.starttls) if a.starttls else None
    implicit = context(a.tls) if a.tls else None
    handler = Saver(a.dir, reject_stage, reject_count)
    auth_attempts = [0]

    def authenticator(server, session, envelope, mechanism, auth_data):
        user, password = a.auth.split(":", 1)
        ok = auth_data.login.decode() == user and auth_data.password.decode() == password
        auth_attempts[0] += 1
        if reject_stage == "auth" and auth_attempts[0] <= reject_count:
            ok = False
        say("auth " + ("ok" if ok else "rejected"))
        # handled=False: aiosmtpd answers (235, or 535 on failure); its
        # default (True) sends no reply at all to a failed AUTH.
        return AuthResult(success=ok, handled=False)

    # Over implicit TLS, AUTH without STARTTLS is encrypted all the same.
    warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
    logging.getLogger("mail.log").setLevel(logging.ERROR)

    def factory():
        kwargs = dict(hostname="userdrop-test", ident="userdrop test SMTP")
        if starttls:
            kwargs.update(tls_context=starttls, require_starttls=True)
        if a.auth:
            # Over implicit TLS the whole session is encrypted already.
            kwargs.update(authenticator=authenticator, auth_required=True,
                          auth_require_tls=implicit is None)
        return Logging(handler, **kwargs)

    async def serve():
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        say("port %d" % sock.getsockname()[1])
        server = None

        async def up():
            nonlocal server
            if server is None:
                # create_server listens on the socket bound above.
                server = await loop.create_server(factory, sock=sock, ssl=implicit)
                say("up")

        if not a.down:
            await up()
        # Runs until stdin closes; its lines are commands.
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                break
            if line.strip() == "up":
                await up()
        if server is not None:
            server.close()

    asyncio.run(serve())
    os._exit(0)


if __name__ == "__main__":
    main()
