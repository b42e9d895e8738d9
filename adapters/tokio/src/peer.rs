//! The two ways of doing I/O with one peer of a session.
//!
//! * [`TcpStream`] — the fast path: wait for read readiness first, and only then lend the
//!   session's receive buffer to `try_read`. A quiet connection therefore never has a buffer
//!   lent, and the session can free its empty buffers while the connection idles.
//! * [`Stream`] — any `AsyncRead + AsyncWrite + Unpin` (TLS, pipes): `poll_read` straight into
//!   the session's buffer, which is taken back at once when the read is pending.
//!
//! Either way a byte is read once into the session's buffer and written from it: no copy in
//! between and no allocation per read.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use switchyard_proto::{Session, Side};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// One peer of a session, as the driver sees it.
pub(crate) trait Peer {
    /// Reads `side`'s next bytes into the session's buffer once some are there; returns how
    /// many (0: end of stream). The caller reports them with `handle_read` / `handle_eof`.
    /// Call only when `session.read_window(side) > 0`.
    fn poll_read_into(
        &mut self,
        cx: &mut Context<'_>,
        session: &mut Session,
        side: Side,
        now: Instant,
    ) -> Poll<io::Result<usize>>;

    /// Writes some of `bufs`.
    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>>;

    /// Shuts the write half down.
    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
}

impl Peer for TcpStream {
    fn poll_read_into(
        &mut self,
        cx: &mut Context<'_>,
        session: &mut Session,
        side: Side,
        now: Instant,
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.poll_read_ready(cx))?;
            match self.try_read(session.read_buf(side)) {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if is_transient(&e) => {
                    // The readiness was stale (tokio has cleared it): take the buffer back.
                    session.handle_read(side, 0, now);
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        AsyncWrite::poll_write_vectored(Pin::new(self), cx, bufs)
    }

    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // tokio's TcpStream shuts the write half down (`shutdown(Write)`), at once.
        AsyncWrite::poll_shutdown(Pin::new(self), cx)
    }
}

/// A generic client stream, read with `poll_read`.
#[derive(Debug)]
pub(crate) struct Stream<S>(pub(crate) S);

impl<S: AsyncRead + AsyncWrite + Unpin> Peer for Stream<S> {
    fn poll_read_into(
        &mut self,
        cx: &mut Context<'_>,
        session: &mut Session,
        side: Side,
        now: Instant,
    ) -> Poll<io::Result<usize>> {
        let mut buf = ReadBuf::new(session.read_buf(side));
        match Pin::new(&mut self.0).poll_read(cx, &mut buf) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(buf.filled().len())),
            Poll::Ready(Err(e)) if is_transient(&e) => {
                session.handle_read(side, 0, now);
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                // Nothing was read: the buffer is not kept lent while the stream waits.
                session.handle_read(side, 0, now);
                Poll::Pending
            }
        }
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// Errors that mean "try again", not "the connection failed".
pub(crate) fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}
