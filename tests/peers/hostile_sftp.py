"""A paramiko peer for the hostile connection tests (tests/hostile_conn.rs).

  malformed HOST PORT USER PASSWORD
      Logs in with paramiko, starts the sftp subsystem, exchanges INIT and
      VERSION by hand, then sends READ id 7 whose offset is 32 bits instead
      of 64 (the packet is 4 bytes short), and prints what came back within
      10 s: STATUS <id> <code>, OTHER <type>, CLOSED (the channel ended) or
      TIMEOUT. Then a well-formed REALPATH "." id 8: REPLY <type> <id>, or
      CLOSED / TIMEOUT. One result per line, flushed; nothing here decides
      pass or fail.
  put HOST PORT USER PASSWORD LOCAL REMOTE
      Uploads LOCAL as REMOTE (any bytes but NUL in the name) without the
      stat paramiko does after a put (the daemon may have taken the file
      already): PUT OK.
"""

import socket
import struct
import sys

import paramiko


def say(*parts):
    print(*parts, flush=True)


def string(b):
    return struct.pack(">I", len(b)) + b


def put(host, port, user, password, local, remote):
    t = paramiko.Transport((host, int(port)))
    t.connect(username=user, password=password)
    sftp = paramiko.SFTPClient.from_transport(t)
    sftp.put(local, remote, confirm=False)
    sftp.close()
    t.close()
    say("PUT OK")


def malformed(host, port, user, password):
    t = paramiko.Transport((host, int(port)))
    t.connect(username=user, password=password)
    ch = t.open_session()
    ch.invoke_subsystem("sftp")
    ch.settimeout(10)

    def send(body):
        ch.sendall(struct.pack(">I", len(body)) + body)

    def recv_exact(n):
        buf = b""
        while len(buf) < n:
            chunk = ch.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf

    def recv_packet():
        (n,) = struct.unpack(">I", recv_exact(4))
        return recv_exact(n)

    def answer(tag):
        try:
            p = recv_packet()
        except socket.timeout:
            say("TIMEOUT")
            return False
        except EOFError:
            say("CLOSED")
            return False
        if tag == "status":
            if p[0] == 101:
                rid, code = struct.unpack(">II", p[1:9])
                say("STATUS", rid, code)
            else:
                say("OTHER", p[0])
        else:
            say("REPLY", p[0], struct.unpack(">I", p[1:5])[0])
        return True

    send(bytes([1]) + struct.pack(">I", 3))
    version = recv_packet()
    say("VERSION", version[0], struct.unpack(">I", version[1:5])[0])

    # READ: type, id 7, handle "h", offset as 32 bits (should be 64), len.
    send(bytes([5]) + struct.pack(">I", 7) + string(b"h") + struct.pack(">II", 0, 4096))
    if answer("status"):
        send(bytes([16]) + struct.pack(">I", 8) + string(b"."))
        answer("reply")
    t.close()


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "malformed":
        malformed(*sys.argv[2:6])
    elif mode == "put":
        put(*sys.argv[2:8])
    else:
        raise SystemExit("unknown mode " + mode)
