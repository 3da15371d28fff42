"""A paramiko client for the SFTP login and session tests (tests/sftp.rs).

Each mode prints one result per line on stdout, flushed, for the Rust test
to read; nothing here decides pass or fail. (Several password attempts on one
connection are tested with OpenSSH instead: paramiko sends a new
SERVICE_REQUEST before each auth call, which russh ignores.)

  timing HOST PORT ROUNDS USER...
      ROUNDS times, for each USER in turn: a fresh connection, one wrong
      password, timed from the request to the answer. Prints one JSON
      object {USER: [seconds, ...]}.
  hold HOST PORT USER PASSWORD KEYFILE NAME
      Logs in (PASSWORD, or KEYFILE when PASSWORD is empty), opens NAME for
      writing, writes a line, prints READY; then obeys stdin lines:
        write   -> writes and flushes a line: OK or ERR <exception>
        closed  -> waits up to 30 s for the connection to end:
                   CLOSED <disconnect reason> or OPEN
        bye     -> closes the file and the connection: BYE
  special HOST PORT USER PASSWORD NAME...
      Raw SFTP OPEN of each NAME for reading, then for writing, no stat
      first, with a 10 s answer timeout. Prints per open:
      NAME r|w ERR <errno> <message>, NAME r|w OPENED, or NAME r|w TIMEOUT
      (then stops: the session is stuck).
  rename HOST PORT USER PASSWORD OLD NEW
      A plain SSH_FXP_RENAME (not posix-rename): OK or ERR <message>.
"""

import json
import logging
import socket
import sys
import time

import paramiko


class Reasons(logging.Handler):
    """Keeps the disconnect reasons paramiko logs."""

    def __init__(self):
        super().__init__()
        self.reasons = []

    def emit(self, record):
        msg = record.getMessage()
        if msg.startswith("Disconnect"):
            self.reasons.append(msg)


REASONS = Reasons()
logging.getLogger("paramiko").addHandler(REASONS)
logging.getLogger("paramiko").setLevel(logging.INFO)


def say(*parts):
    print(*parts, flush=True)


def transport(host, port):
    t = paramiko.Transport((host, int(port)))
    t.start_client(timeout=30)
    return t


def timing(host, port, rounds, *users):
    took = {u: [] for u in users}
    for i in range(int(rounds)):
        for user in users:
            t = transport(host, port)
            start = time.monotonic()
            try:
                t.auth_password(user, "wrong-password-{}".format(i), fallback=False)
                raise SystemExit("a wrong password was accepted for " + user)
            except paramiko.AuthenticationException:
                pass
            took[user].append(time.monotonic() - start)
            t.close()
    say(json.dumps(took))


def login(host, port, user, password, keyfile):
    t = transport(host, port)
    if password:
        t.auth_password(user, password, fallback=False)
    else:
        t.auth_publickey(user, paramiko.Ed25519Key.from_private_key_file(keyfile))
    return t


def hold(host, port, user, password, keyfile, name):
    t = login(host, port, user, password, keyfile)
    sftp = paramiko.SFTPClient.from_transport(t)
    f = sftp.open(name, "w")
    f.write(b"first line\n")
    f.flush()
    say("READY")
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "write":
            try:
                f.write(b"another line\n")
                f.flush()
                say("OK")
            except Exception as e:  # what the client sees is the result
                say("ERR", type(e).__name__, str(e).replace("\n", " "))
        elif cmd == "closed":
            t.join(30)
            if t.is_alive():
                say("OPEN")
            else:
                say("CLOSED", " | ".join(REASONS.reasons) or "(no reason)")
        elif cmd == "bye":
            try:
                f.close()
                sftp.close()
            except Exception:
                pass
            t.close()
            say("BYE")
            return
        else:
            raise SystemExit("unknown command " + cmd)


def special(host, port, user, password, *names):
    t = login(host, port, user, password, "")
    sftp = paramiko.SFTPClient.from_transport(t)
    sftp.get_channel().settimeout(10)
    for name in names:
        for mode in ("r", "w"):
            try:
                f = sftp.open(name, mode)
                say(name, mode, "OPENED")
                f.close()
            except socket.timeout:
                say(name, mode, "TIMEOUT")
                return
            except IOError as e:
                say(name, mode, "ERR", e.errno, str(e).replace("\n", " "))
    t.close()


def rename(host, port, user, password, old, new):
    t = login(host, port, user, password, "")
    sftp = paramiko.SFTPClient.from_transport(t)
    try:
        sftp.rename(old, new)
        say("OK")
    except IOError as e:
        say("ERR", str(e))
    t.close()


MODES = {
    "timing": timing,
    "hold": hold,
    "special": special,
    "rename": rename,
}

if __name__ == "__main__":
    MODES[sys.argv[1]](*sys.argv[2:])
