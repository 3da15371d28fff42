"""A real SCIM 2.0 application for tests/provision.rs: scim2-server's test
server (pip install scim2-server), started on the port given (0: any free
one), printing `PORT <n>` on stdout once it listens, so the test never
guesses a port or sleeps. Arguments are scim2-server's own
(`--port 0 --bearer-token TOKEN`)."""

import sys

import scim2_server.testserver.cli as cli

_make_server = cli.make_server


def make_server(*args, **kwargs):
    srv = _make_server(*args, **kwargs)
    print(f"PORT {srv.server_port}", flush=True)
    return srv


cli.make_server = make_server

if __name__ == "__main__":
    sys.argv[0] = "scim2-server"
    cli.main()
