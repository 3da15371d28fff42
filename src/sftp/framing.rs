//! SFTP packets checked on the way in, before russh-sftp parses them.
//!
//! russh-sftp answers a request it cannot parse (a READ whose offset is 32
//! bits instead of 64, a string longer than its packet) with a status for
//! request id 0, which no client waits for: the client hangs. [`Checked`]
//! sits between the channel and russh-sftp: it frames each packet, parses
//! it with russh-sftp's own parser, and answers a malformed one itself with
//! `SSH_FX_BAD_MESSAGE` for that packet's request id, logging why; the
//! packet never reaches russh-sftp. A packet over the length limit closes
//! the channel (logged): the stream cannot be framed past it.
//!
//! Its role: framing and that one reply. What it must never do: change,
//! reorder or hold back a well-formed packet, or write its reply while
//! russh-sftp is writing one (russh-sftp is strictly request → reply: it
//! reads the next request only after its reply was flushed, so a reply
//! written while russh-sftp reads cannot interleave with its own).

use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use russh_sftp::protocol::Packet;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// SSH_FXP_STATUS and SSH_FX_BAD_MESSAGE (draft-ietf-secsh-filexfer-02).
const SSH_FXP_STATUS: u8 = 101;
const SSH_FX_BAD_MESSAGE: u32 = 5;
const SSH_FXP_INIT: u8 = 1;
const SSH_FXP_WRITE: u8 = 6;
/// How much is read from the channel at a time.
const READ_CHUNK: usize = 64 * 1024;

/// A channel stream whose incoming SFTP packets are checked; see the module docs.
pub(super) struct Checked<S> {
    inner: S,
    max_len: u32,
    ip: IpAddr,
    account: String,
    /// Bytes from the client in `input[..end]` (the rest is room, zeroed
    /// once when the buffer grows, never per read): `[start..checked]` are
    /// checked packets for russh-sftp, `[checked..end]` not yet framed.
    input: Vec<u8>,
    start: usize,
    checked: usize,
    end: usize,
    /// A reply of our own, written from `reply_pos` before reading on.
    reply: Vec<u8>,
    reply_pos: usize,
    /// The client's stream ended, or was closed over a bad length.
    eof: bool,
    closed: bool,
}

impl<S> Checked<S> {
    pub(super) fn new(inner: S, max_len: u32, ip: IpAddr, account: String) -> Checked<S> {
        Checked {
            inner,
            max_len,
            ip,
            account,
            input: Vec::new(),
            start: 0,
            checked: 0,
            end: 0,
            reply: Vec::new(),
            reply_pos: 0,
            eof: false,
            closed: false,
        }
    }

    /// Frames the next packet after `checked` if it is all there: a good
    /// one becomes readable, a bad one is cut out and answered. False when
    /// more bytes are needed.
    fn frame(&mut self) -> bool {
        let rest = &self.input[self.checked..self.end];
        let Some(head) = rest.get(..4) else {
            return false;
        };
        let len = u32::from_be_bytes(head.try_into().expect("4 bytes"));
        if len > self.max_len {
            tracing::warn!(ip = %self.ip, account = %self.account, len, max = self.max_len,
                "closing an SFTP channel: a packet longer than the limit");
            self.closed = true;
            return true;
        }
        let end = 4 + len as usize;
        let Some(body) = rest.get(4..end) else {
            return false;
        };
        match check(body) {
            Ok(()) => self.checked += end,
            Err(why) => {
                let kind = body.first().copied().unwrap_or(0);
                let id = request_id(body);
                tracing::warn!(ip = %self.ip, account = %self.account, packet_type = kind, id,
                    "answered a malformed SFTP request with BAD_MESSAGE: {why}");
                self.reply = bad_message(id);
                self.reply_pos = 0;
                let cut = self.checked + end;
                self.input.copy_within(cut..self.end, self.checked);
                self.end -= end;
            }
        }
        true
    }
}

/// Whether russh-sftp can parse `body` (type and payload) as a request.
fn check(body: &[u8]) -> Result<(), String> {
    let Some(&kind) = body.first() else {
        return Err("an empty packet".into());
    };
    if !(kind == SSH_FXP_INIT || (3..=20).contains(&kind) || kind == 200) {
        return Err(format!("type {kind} is not a request"));
    }
    if kind == SSH_FXP_WRITE {
        // The bulk of an upload: checked in place, not copied.
        return check_write(&body[1..]);
    }
    let mut bytes = bytes::Bytes::copy_from_slice(body);
    Packet::try_from(&mut bytes)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// WRITE: id, handle, 64-bit offset, data, as russh-sftp reads them.
fn check_write(mut p: &[u8]) -> Result<(), String> {
    let short = || "too short for a WRITE (id, handle, 64-bit offset, data)".to_string();
    let take = |n: usize, p: &mut &[u8]| -> Result<(), String> {
        *p = p.get(n..).ok_or_else(short)?;
        Ok(())
    };
    let u32_at = |p: &[u8]| {
        p.get(..4)
            .map(|b| u32::from_be_bytes(b.try_into().unwrap()))
    };
    take(4, &mut p)?; // id
    let handle = u32_at(p).ok_or_else(short)? as usize;
    take(4 + handle, &mut p)?;
    take(8, &mut p)?; // offset
    let data = u32_at(p).ok_or_else(short)? as usize;
    take(4 + data, &mut p)
}

/// The request id (the 4 bytes after the type), 0 when there are none.
fn request_id(body: &[u8]) -> u32 {
    body.get(1..5)
        .map(|b| u32::from_be_bytes(b.try_into().expect("4 bytes")))
        .unwrap_or(0)
}

/// A whole SSH_FXP_STATUS packet: BAD_MESSAGE for `id`.
fn bad_message(id: u32) -> Vec<u8> {
    let message = b"malformed request";
    let language = b"en";
    let mut body = vec![SSH_FXP_STATUS];
    body.extend_from_slice(&id.to_be_bytes());
    body.extend_from_slice(&SSH_FX_BAD_MESSAGE.to_be_bytes());
    for s in [&message[..], &language[..]] {
        body.extend_from_slice(&(s.len() as u32).to_be_bytes());
        body.extend_from_slice(s);
    }
    let mut packet = (body.len() as u32).to_be_bytes().to_vec();
    packet.extend_from_slice(&body);
    packet
}

impl<S: AsyncRead + AsyncWrite + Unpin> Checked<S> {
    /// Writes and flushes the pending reply of our own.
    fn poll_reply(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.reply_pos < self.reply.len() {
            let n =
                ready!(Pin::new(&mut self.inner).poll_write(cx, &self.reply[self.reply_pos..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.reply_pos += n;
        }
        if !self.reply.is_empty() {
            ready!(Pin::new(&mut self.inner).poll_flush(cx))?;
            self.reply.clear();
            self.reply_pos = 0;
        }
        Poll::Ready(Ok(()))
    }

    /// Reads more from the client into `input`; sets `eof` at its end.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.start > 0 {
            self.input.copy_within(self.start..self.end, 0);
            self.checked -= self.start;
            self.end -= self.start;
            self.start = 0;
        }
        if self.input.len() < self.end + READ_CHUNK {
            self.input.resize(self.end + READ_CHUNK, 0);
        }
        let mut buf = ReadBuf::new(&mut self.input[self.end..]);
        let r = Pin::new(&mut self.inner).poll_read(cx, &mut buf);
        let n = buf.filled().len();
        self.end += n;
        ready!(r)?;
        if n == 0 {
            self.eof = true;
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Checked<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.closed {
                return Poll::Ready(Ok(()));
            }
            ready!(this.poll_reply(cx))?;
            if this.start < this.checked {
                let n = (this.checked - this.start).min(buf.remaining());
                buf.put_slice(&this.input[this.start..this.start + n]);
                this.start += n;
                return Poll::Ready(Ok(()));
            }
            if this.frame() {
                continue;
            }
            if this.eof {
                // A cut packet at the end: russh-sftp sees its end of stream.
                if this.checked < this.end {
                    this.checked = this.end;
                    continue;
                }
                return Poll::Ready(Ok(()));
            }
            ready!(this.poll_fill(cx))?;
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Checked<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn packet(body: &[u8]) -> Vec<u8> {
        let mut p = (body.len() as u32).to_be_bytes().to_vec();
        p.extend_from_slice(body);
        p
    }

    fn string(s: &[u8]) -> Vec<u8> {
        let mut v = (s.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(s);
        v
    }

    /// READ id 7 of handle "h": a 64-bit offset (good) or a 32-bit one (bad).
    fn read(id: u32, offset_bits: u32) -> Vec<u8> {
        let mut b = vec![5u8];
        b.extend_from_slice(&id.to_be_bytes());
        b.extend(string(b"h"));
        if offset_bits == 64 {
            b.extend_from_slice(&0u64.to_be_bytes());
        } else {
            b.extend_from_slice(&0u32.to_be_bytes());
        }
        b.extend_from_slice(&4096u32.to_be_bytes());
        packet(&b)
    }

    #[tokio::test]
    async fn a_malformed_request_is_answered_with_its_id_and_good_ones_pass_whole() {
        let (mut client, server) = tokio::io::duplex(1 << 20);
        let mut checked = Checked::new(server, 1 << 20, "127.0.0.1".parse().unwrap(), "a".into());
        let good = read(8, 64);
        let mut write = vec![6u8];
        write.extend_from_slice(&9u32.to_be_bytes());
        write.extend(string(b"h"));
        write.extend_from_slice(&0u64.to_be_bytes());
        write.extend(string(&[0x5a; 5000]));
        let write = packet(&write);
        let mut sent = read(7, 32);
        sent.extend_from_slice(&good);
        sent.extend_from_slice(&write);
        client.write_all(&sent).await.unwrap();
        drop(client.shutdown().await);

        let mut passed = Vec::new();
        checked.read_to_end(&mut passed).await.unwrap();
        let mut want = good.clone();
        want.extend_from_slice(&write);
        assert_eq!(
            passed, want,
            "the good READ and WRITE reach russh-sftp whole"
        );

        let mut reply = vec![0u8; bad_message(7).len()];
        client.read_exact(&mut reply).await.unwrap();
        assert_eq!(reply, bad_message(7));
        assert_eq!(
            request_id(&reply[4..]),
            7,
            "the reply carries the request's id"
        );
        assert_eq!(reply[4], SSH_FXP_STATUS);
        assert_eq!(&reply[9..13], &SSH_FX_BAD_MESSAGE.to_be_bytes());
    }

    #[tokio::test]
    async fn packets_cut_into_small_reads_are_framed_whole() {
        let (client, server) = tokio::io::duplex(5);
        let (mut from_server, mut to_server) = tokio::io::split(client);
        let mut checked = Checked::new(server, 1 << 20, "127.0.0.1".parse().unwrap(), "a".into());
        let sent = [read(8, 64), read(7, 32), read(9, 64)].concat();
        let writer = tokio::spawn(async move {
            to_server.write_all(&sent).await.unwrap();
            to_server.shutdown().await.unwrap();
        });
        let reply = tokio::spawn(async move {
            let mut r = vec![0u8; bad_message(7).len()];
            from_server.read_exact(&mut r).await.unwrap();
            r
        });
        let mut passed = Vec::new();
        checked.read_to_end(&mut passed).await.unwrap();
        writer.await.unwrap();
        assert_eq!(passed, [read(8, 64), read(9, 64)].concat());
        assert_eq!(reply.await.unwrap(), bad_message(7));
    }

    #[test]
    fn writes_are_checked_in_place() {
        let mut w = vec![6u8];
        w.extend_from_slice(&1u32.to_be_bytes());
        w.extend(string(b"handle"));
        w.extend_from_slice(&0u64.to_be_bytes());
        w.extend(string(b"data"));
        assert_eq!(check(&w), Ok(()));
        assert!(check(&w[..w.len() - 1]).is_err(), "data cut short");
        assert!(check(&w[..10]).is_err(), "no offset");
        assert!(
            check(&[102, 0, 0, 0, 1]).is_err(),
            "a reply type from a client"
        );
    }

    #[tokio::test]
    async fn a_packet_over_the_limit_closes_the_stream() {
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let mut checked = Checked::new(server, 100, "127.0.0.1".parse().unwrap(), "a".into());
        client.write_all(&packet(&[5u8; 200])).await.unwrap();
        let mut passed = Vec::new();
        checked.read_to_end(&mut passed).await.unwrap();
        assert!(passed.is_empty());
    }
}
