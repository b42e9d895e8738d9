//! The two ways of doing I/O with one peer of a session.
//!
//! * [`TcpStream`] — the fast path: wait for read readiness first, and only then read. A quiet
//!   connection therefore never has a buffer lent, and the session can free its empty buffers
//!   while the connection idles. Readiness is tokio's, cached per direction: a *short* read or
//!   write (fewer bytes than asked) means the socket is drained or its send buffer full, so it
//!   clears that readiness exactly as `WouldBlock` would, and the next read or write waits for
//!   the reactor instead of making a system call that can only fail with `EAGAIN`.
//! * [`Stream`] — any `AsyncRead + AsyncWrite + Unpin` (TLS, pipes): read with `poll_read`.
//!
//! Either way a byte is read once into the session's buffer and written from it: no copy in
//! between and no allocation per read. The buffer is lent only for the read itself and handed
//! back at once (`handle_read`), so a read that finds nothing leaves no buffer lent.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use switchyard_proto::{Session, Side};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

/// One peer of a session, as the driver sees it.
pub(crate) trait Peer {
    /// Reads `side`'s next bytes into the session's buffer once some are there (already
    /// reported with [`Session::handle_read`]), and returns how many; 0 is the end of the
    /// stream, which the caller reports with `handle_eof`.
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
            // Readiness first: no buffer is lent to a socket with nothing to read.
            ready!(self.poll_read_ready(cx))?;
            // tokio's `poll_read` clears the readiness on a short read as on `WouldBlock`
            // (then it returns `Pending`, with the waker registered).
            let stream = Pin::new(&mut *self);
            match read_into_session(session, side, now, |buf| stream.poll_read(cx, buf)) {
                Poll::Ready(Err(e)) if is_transient(&e) => {}
                polled => return polled,
            }
        }
    }

    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let offered: usize = bufs.iter().map(|buf| buf.len()).sum();
        let stream: &Self = self;
        loop {
            ready!(stream.poll_write_ready(cx))?;
            let mut short = None;
            let written = stream.try_io(Interest::WRITABLE, || {
                let n = stream.try_write_vectored(bufs)?;
                if 0 < n && n < offered {
                    // The send buffer is full. `try_io` clears the readiness on `WouldBlock`
                    // only (tokio's own `poll_write_vectored` does not clear it at all), so
                    // say `WouldBlock` and keep the count: the next write waits for the
                    // reactor instead of failing with `EAGAIN`.
                    short = Some(n);
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                Ok(n)
            });
            match (short, written) {
                (Some(n), _) => return Poll::Ready(Ok(n)),
                // Stale readiness, now cleared: wait for the reactor.
                (None, Err(e)) if is_transient(&e) => {}
                (None, written) => return Poll::Ready(written),
            }
        }
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
        let stream = Pin::new(&mut self.0);
        match read_into_session(session, side, now, |buf| stream.poll_read(cx, buf)) {
            Poll::Ready(Err(e)) if is_transient(&e) => {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            polled => polled,
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

/// Runs one `read` into the session's buffer and reports it; returns how many bytes were read
/// (0: end of stream, for the caller to report). The buffer is taken back at once when nothing
/// was read, so that it can be freed while the peer is quiet.
fn read_into_session(
    session: &mut Session,
    side: Side,
    now: Instant,
    read: impl FnOnce(&mut ReadBuf<'_>) -> Poll<io::Result<()>>,
) -> Poll<io::Result<usize>> {
    let mut buf = ReadBuf::new(session.read_buf(side));
    let polled = read(&mut buf);
    let n = match polled {
        Poll::Ready(Ok(())) => buf.filled().len(),
        _ => 0,
    };
    session.handle_read(side, n, now);
    polled.map_ok(|()| n)
}

/// Errors that mean "try again", not "the connection failed".
pub(crate) fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}
