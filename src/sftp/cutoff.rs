//! A connection the accept loop can cut from outside.
//!
//! russh runs each session on a task of its own and reads the messages of
//! its `Handle` (a disconnect among them) only once the key exchange is
//! done: a client that sends its banner and then nothing cannot be
//! disconnected through the handle, and dropping the session's future does
//! not stop its task. [`Cutoff`] wraps the socket: once its token is
//! cancelled, reads fail, so the session's task ends and drops the socket.
//!
//! Its role: that one switch. What it must never do: change a byte read or
//! written, or cut a connection whose token was not cancelled.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

pub struct Cutoff<S> {
    inner: S,
    cut: Pin<Box<WaitForCancellationFutureOwned>>,
}

impl<S> Cutoff<S> {
    /// `inner`, cut when `token` is cancelled.
    pub fn new(inner: S, token: CancellationToken) -> Cutoff<S> {
        Cutoff {
            inner,
            cut: Box::pin(token.cancelled_owned()),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Cutoff<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.cut.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "connection cut by the server",
            )));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Cutoff<S> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn reads_pass_until_the_token_is_cancelled_then_fail() {
        let (mut peer, ours) = tokio::io::duplex(64);
        let token = CancellationToken::new();
        let mut s = Cutoff::new(ours, token.clone());
        peer.write_all(b"abc").await.unwrap();
        let mut buf = [0u8; 3];
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"abc");
        // A read waiting on a silent peer is woken by the cut.
        let reader = tokio::spawn(async move { s.read(&mut [0u8; 8]).await });
        token.cancel();
        let r = reader.await.unwrap();
        assert_eq!(r.unwrap_err().kind(), io::ErrorKind::ConnectionAborted);
    }
}
