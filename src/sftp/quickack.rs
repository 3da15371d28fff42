//! A TCP stream that acknowledges at once during the SSH handshake.
//!
//! OpenSSH's client sets no TCP_NODELAY on sessions without a terminal, so
//! after its KEXINIT it holds the small KEX_ECDH_INIT back (Nagle) until
//! our ACK arrives, and Linux delays that ACK by 40 ms: half of all logins
//! took 40 ms longer (measured with russh traces). TCP_QUICKACK is not
//! sticky (the kernel leaves quickack mode on its own), so it is set again
//! after each of the first reads. This module must never change what is
//! read or written: it only adjusts the socket.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// How many reads get an immediate ACK: the handshake and login take well
/// under this many; a bulk upload afterwards pays nothing.
const HANDSHAKE_READS: u32 = 32;

pub struct QuickAck {
    inner: TcpStream,
    reads_left: u32,
}

impl QuickAck {
    pub fn new(inner: TcpStream) -> QuickAck {
        let mut s = QuickAck {
            inner,
            reads_left: HANDSHAKE_READS,
        };
        s.arm();
        s
    }

    fn arm(&mut self) {
        if self.reads_left > 0 {
            self.reads_left -= 1;
            let _ = rustix::net::sockopt::set_tcp_quickack(&self.inner, true);
        }
    }
}

impl AsyncRead for QuickAck {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.arm();
        }
        result
    }
}

impl AsyncWrite for QuickAck {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
