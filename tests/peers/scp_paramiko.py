"""Speaks the legacy SCP protocol by hand over a paramiko exec channel, for
tests/scp_legacy.rs: the server side is the SCP sink (`scp -t`).

  python3 scp_paramiko.py HOST PORT USER PASSWORD COMMAND STEP...

Logs in with PASSWORD, sends COMMAND as an exec request, then runs each
STEP in order and prints one line per result on stdout, flushed:

  send:TEXT   sends TEXT, Python escapes decoded (\\n, \\x00, ...); prints nothing
  recv        reads one answer of the sink: ACK (a \\0), WARN <message>
              (\\x01), FATAL <message> (\\x02), or EOF (the channel ended)
  eof         sends EOF (the client has nothing more to send)

At the end it waits for the exit status and prints EXIT <n>. A refused
exec request prints EXECFAIL <exception> and stops. Nothing here decides
pass or fail.
"""

import codecs
import sys

import paramiko


def say(*parts):
    print(*parts, flush=True)


def read_exact(chan, n):
    data = b""
    while len(data) < n:
        chunk = chan.recv(n - len(data))
        if not chunk:
            return data
        data += chunk
    return data


def answer(chan):
    first = read_exact(chan, 1)
    if not first:
        return "EOF"
    if first == b"\0":
        return "ACK"
    line = b""
    while not line.endswith(b"\n"):
        c = read_exact(chan, 1)
        if not c:
            break
        line += c
    kind = {b"\x01": "WARN", b"\x02": "FATAL"}.get(first, "OTHER")
    return kind + " " + line.decode("utf-8", "replace").strip()


def main():
    host, port, user, password, command = sys.argv[1:6]
    steps = sys.argv[6:]
    transport = paramiko.Transport((host, int(port)))
    transport.connect(username=user, password=password)
    chan = transport.open_session(timeout=30)
    chan.settimeout(30)
    try:
        chan.exec_command(command)
    except paramiko.SSHException as e:
        say("EXECFAIL", e)
        transport.close()
        return
    for step in steps:
        if step.startswith("send:"):
            text = codecs.decode(step[len("send:"):], "unicode_escape")
            chan.sendall(text.encode("latin-1"))
        elif step == "recv":
            say(answer(chan))
        elif step == "eof":
            chan.shutdown_write()
        else:
            raise SystemExit("unknown step " + step)
    say("EXIT", chan.recv_exit_status())
    transport.close()


if __name__ == "__main__":
    main()
