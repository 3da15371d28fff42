"""A paramiko client for the hostile-upload tests (tests/hostile_files.rs):
what a hostile or careless customer does that OpenSSH's sftp cannot say.

Each mode prints one result per line on stdout, flushed, for the Rust test
to read; nothing here decides pass or fail.

  held HOST PORT USER PASSWORD FIRST SECOND
      Opens .held.csv for writing, writes the bytes of the local file FIRST,
      posix-renames .held.csv to held.csv with the handle still open and
      prints RENAMED; then obeys stdin lines:
        overwrite -> writes the bytes of SECOND at offset 0 through the same
                     handle: OK or ERR <message>
        bye       -> closes the handle and the connection: BYE
  put HOST PORT USER PASSWORD LOCAL REMOTE
      Uploads LOCAL to REMOTE in 32 KiB writes, each awaited (paramiko's
      own put pipelines and drops the server's write errors): OK or
      ERR <message> (the first error; then the handle is closed).
  rename HOST PORT USER PASSWORD OLD NEW
      A plain SSH_FXP_RENAME: OK or ERR <message>.
  partial HOST PORT USER PASSWORD LOCAL REMOTE BYTES
      Writes the first BYTES bytes of LOCAL to REMOTE, prints READY and
      waits (the test kills it: the session dies with the handle open).
  resume HOST PORT USER PASSWORD LOCAL REMOTE FINAL
      Appends to REMOTE the rest of LOCAL (from REMOTE's size), closes it,
      posix-renames it to FINAL: OK or ERR <message>.
"""

import sys

import paramiko


def say(*parts):
    print(*parts, flush=True)


def login(host, port, user, password):
    t = paramiko.Transport((host, int(port)))
    t.start_client(timeout=30)
    t.auth_password(user, password, fallback=False)
    return t, paramiko.SFTPClient.from_transport(t)


def err(e):
    return " ".join(str(a) for a in e.args).replace("\n", " ")


def held(host, port, user, password, first, second):
    t, sftp = login(host, port, user, password)
    f = sftp.open(".held.csv", "w")
    f.write(open(first, "rb").read())
    f.flush()
    sftp.posix_rename(".held.csv", "held.csv")
    say("RENAMED")
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "overwrite":
            try:
                f.seek(0)
                f.write(open(second, "rb").read())
                f.flush()
                say("OK")
            except IOError as e:
                say("ERR", err(e))
        elif cmd == "bye":
            try:
                f.close()
            except IOError:
                pass
            t.close()
            say("BYE")
            return
        else:
            raise SystemExit("unknown command " + cmd)


def put(host, port, user, password, local, remote):
    t, sftp = login(host, port, user, password)
    data = open(local, "rb").read()
    try:
        f = sftp.open(remote, "wb")
    except IOError as e:
        say("ERR", err(e))
        t.close()
        return
    try:
        for i in range(0, len(data), 32768):
            f.write(data[i : i + 32768])
        f.close()
        say("OK")
    except IOError as e:
        say("ERR", err(e))
        try:
            f.close()
        except IOError:
            pass
    t.close()


def rename(host, port, user, password, old, new):
    t, sftp = login(host, port, user, password)
    try:
        sftp.rename(old, new)
        say("OK")
    except IOError as e:
        say("ERR", err(e))
    t.close()


def partial(host, port, user, password, local, remote, count):
    t, sftp = login(host, port, user, password)
    f = sftp.open(remote, "w")
    f.write(open(local, "rb").read()[: int(count)])
    f.flush()
    say("READY")
    sys.stdin.read()


def resume(host, port, user, password, local, remote, final):
    t, sftp = login(host, port, user, password)
    try:
        size = sftp.stat(remote).st_size
        f = sftp.open(remote, "a")
        f.write(open(local, "rb").read()[size:])
        f.close()
        sftp.posix_rename(remote, final)
        say("OK")
    except IOError as e:
        say("ERR", err(e))
    t.close()


MODES = {
    "held": held,
    "put": put,
    "rename": rename,
    "partial": partial,
    "resume": resume,
}

if __name__ == "__main__":
    MODES[sys.argv[1]](*sys.argv[2:])
