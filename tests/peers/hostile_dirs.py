"""A paramiko client for the directory and handle tests (tests/hostile_dirs.rs).

PASSWORD may be key:FILE (an ed25519 private key) instead. Each mode prints
its result on stdout, one JSON object or one line per
operation; nothing here decides pass or fail.

  flood HOST PORT USER PASSWORD PID DIR SESSIONS CHANNELS ROUNDS
      Opens SESSIONS connections of CHANNELS SFTP channels each and, on every
      channel in turn, OPENDIR of DIR until the server refuses (at most 255
      per channel), reading one READDIR batch from each new handle. Then
      ROUNDS times, reads one more batch from every handle. The server's VmRSS (of process PID) is sampled
      after every request; past 100 MB the attack stops (so that an
      unbounded server cannot take the machine down). Prints
      {"opened": N, "refusals": {MESSAGE: COUNT}, "rss_kb_max": KB,
       "stopped_for_rss": BOOL, "entries_read": N}.
  list HOST PORT USER PASSWORD DIR
      OPENDIR + READDIR until EOF. Prints {"names": [...], "replies": N,
      "largest_reply": N}.
  ops HOST PORT USER PASSWORD OP...
      Each OP in turn, one line each: "OP OK" or "OP ERR <message>".
      OP is chmod:PATH:OCTAL, utime:PATH (SETSTAT), futime:PATH (FSETSTAT
      through a handle opened for reading), truncate:PATH:SIZE,
      put:LOCAL:REMOTE or opendir:PATH (kept open to the end).
"""

import json
import sys

import paramiko
from paramiko.sftp import CMD_OPENDIR, CMD_READDIR, CMD_CLOSE

RSS_STOP_KB = 100 * 1024


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def connect(host, port, user, password):
    """PASSWORD, or key:FILE for an ed25519 key (no argon2 work on the server)."""
    t = paramiko.Transport((host, int(port)))
    if password.startswith("key:"):
        t.connect(username=user, pkey=paramiko.Ed25519Key.from_private_key_file(password[4:]))
    else:
        t.connect(username=user, password=password)
    return t


def opendir(sftp, path):
    _, msg = sftp._request(CMD_OPENDIR, path)
    return msg.get_binary()


def readdir(sftp, handle):
    """Names in the next batch, or None at the end."""
    try:
        _, msg = sftp._request(CMD_READDIR, handle)
    except EOFError:
        return None
    n = msg.get_int()
    names = []
    for _ in range(n):
        names.append(msg.get_text())
        msg.get_text()  # long name
        paramiko.SFTPAttributes._from_msg(msg)
    return names


def flood(host, port, user, password, pid, path, sessions, channels, rounds):
    pid, sessions, channels, rounds = int(pid), int(sessions), int(channels), int(rounds)
    out = {"opened": 0, "refusals": {}, "rss_kb_max": 0, "stopped_for_rss": False,
           "entries_read": 0}
    transports, handles = [], []

    def sample():
        out["rss_kb_max"] = max(out["rss_kb_max"], rss_kb(pid))
        if out["rss_kb_max"] > RSS_STOP_KB:
            out["stopped_for_rss"] = True
        return out["stopped_for_rss"]

    for _ in range(sessions):
        if out["stopped_for_rss"]:
            break
        t = connect(host, port, user, password)
        transports.append(t)
        for _ in range(channels):
            if out["stopped_for_rss"]:
                break
            sftp = paramiko.SFTPClient.from_transport(t)
            for _ in range(255):
                try:
                    h = opendir(sftp, path)
                except IOError as e:
                    msg = str(e)
                    out["refusals"][msg] = out["refusals"].get(msg, 0) + 1
                    break
                out["opened"] += 1
                handles.append((sftp, h))
                batch = readdir(sftp, h)
                out["entries_read"] += len(batch or [])
                if sample():
                    break
    # Read slowly: one batch of every handle per round.
    live = list(handles)
    for _ in range(rounds):
        if not live or out["stopped_for_rss"]:
            break
        still = []
        for sftp, h in live:
            batch = readdir(sftp, h)
            if batch is not None:
                out["entries_read"] += len(batch)
                still.append((sftp, h))
            if sample():
                break
        live = still
    sample()
    for t in transports:
        t.close()
    print(json.dumps(out), flush=True)


def listing(host, port, user, password, path):
    t = connect(host, port, user, password)
    sftp = paramiko.SFTPClient.from_transport(t)
    h = opendir(sftp, path)
    names, replies, largest = [], 0, 0
    while True:
        batch = readdir(sftp, h)
        if batch is None:
            break
        replies += 1
        largest = max(largest, len(batch))
        names.extend(batch)
    sftp._request(CMD_CLOSE, h)
    t.close()
    print(json.dumps({"names": names, "replies": replies, "largest_reply": largest}), flush=True)


def ops(host, port, user, password, *ops):
    t = connect(host, port, user, password)
    sftp = paramiko.SFTPClient.from_transport(t)
    for op in ops:
        kind, *args = op.split(":")
        try:
            if kind == "chmod":
                sftp.chmod(args[0], int(args[1], 8))
            elif kind == "utime":
                sftp.utime(args[0], (1_600_000_000, 1_600_000_000))
            elif kind == "truncate":
                sftp.truncate(args[0], int(args[1]))
            elif kind == "futime":
                with sftp.open(args[0], "r") as f:
                    f.utime((1_600_000_000, 1_600_000_000))
            elif kind == "put":
                sftp.put(args[0], args[1])
            elif kind == "opendir":
                opendir(sftp, args[0])
            else:
                raise SystemExit("unknown op " + op)
            print(op, "OK", flush=True)
        except IOError as e:
            print(op, "ERR", str(e).replace("\n", " "), flush=True)
    t.close()


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    {"flood": flood, "list": listing, "ops": ops}[mode](*args)
