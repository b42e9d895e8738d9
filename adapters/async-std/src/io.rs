//! Moving bytes between a socket and a session, without deciding anything.
//!
//! Two kinds of peer connection:
//!
//! * **TCP** ([`Async<TcpStream>`]): the driver waits for *readiness* before it asks the session
//!   for a receive buffer ([`Session::read_buf`] hands out, and may allocate, a buffer of the
//!   read window's size). An idle TCP peer therefore makes the session hold no buffer: the session
//!   frees its empty buffers a second after the last read, and nothing lends one again until the
//!   socket is readable. Readiness is cached per direction, like tokio's: a short read or write,
//!   or `WouldBlock`, clears it, so a busy socket is read and written without a round trip
//!   through the reactor.
//! * **Any futures-io stream** ([`StreamPeer`]): TLS streams and other runtimes' sockets expose
//!   no readiness, so the session's buffer is lent to `poll_read` directly. Such a peer keeps one
//!   receive buffer while an idle tunnel waits.
//!
//! A connection just accepted is read at once, before the reactor is asked: the client sends its
//! request right after connecting, so by the time the accept loop has the socket the head has
//! usually arrived, and reading first saves a reactor registration and a wake-up. (If it has not,
//! one read returns `WouldBlock` and the connection waits like any other.) Heads are read into
//! small windows the session grows as needed (1 KiB first), so a new connection costs no large
//! buffer.
//!
//! Each step reports an [`Outcome`]; failures are reported, not handled, so that the driver can
//! choose between [`Session::handle_error`] and a failover ([`Session::retry`]).

use std::io::{ErrorKind, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use async_io::Async;
use futures_io::{AsyncRead, AsyncWrite};
use switchyard_proto::{Session, Side};

/// Most chunks handed to one vectored write.
const MAX_SLICES: usize = 16;

/// Attempts per step before yielding: bounds the loop on spurious readiness or `EINTR`.
const MAX_ATTEMPTS: usize = 8;

/// What one read or write step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Nothing to do, or the peer is not ready: a wake-up is registered where one is needed.
    Blocked,
    /// The session was told something (bytes read or written, EOF): drain its events.
    Progress,
    /// The connection failed; the session has not been told yet.
    Failed,
}

/// The client side of a session: a TCP socket or any futures-io stream.
pub(crate) trait Peer {
    /// Reads what the session accepts from this peer, if anything.
    fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        session: &mut Session,
        side: Side,
        now: Instant,
    ) -> Outcome;
    /// Writes what the session queued for this peer, if anything.
    fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        session: &mut Session,
        side: Side,
        now: Instant,
    ) -> Outcome;
    /// Starts shutting down the write half ([`Event::Shutdown`](switchyard_proto::Event)).
    fn shutdown_write(&mut self);
    /// Drives a shutdown that could not complete at once.
    fn poll_shutdown(&mut self, cx: &mut Context<'_>);
}

/// Cached readiness of one TCP socket.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Readiness {
    readable: bool,
    writable: bool,
}

impl Readiness {
    /// A new connection: assumed writable (a write is tried first), not known to be readable
    /// (no buffer is lent before the reactor says so).
    pub(crate) fn fresh() -> Self {
        Self {
            readable: false,
            writable: true,
        }
    }
}

/// A TCP peer.
#[derive(Debug)]
pub(crate) struct TcpPeer {
    socket: Async<TcpStream>,
    ready: Readiness,
}

impl TcpPeer {
    /// A client connection just accepted: read before waiting (see the module docs).
    pub(crate) fn accepted(socket: Async<TcpStream>) -> Self {
        Self {
            socket,
            ready: Readiness {
                readable: true,
                writable: true,
            },
        }
    }
}

impl Peer for TcpPeer {
    fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        session: &mut Session,
        side: Side,
        now: Instant,
    ) -> Outcome {
        read_tcp(&self.socket, &mut self.ready, cx, session, side, now)
    }

    fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        session: &mut Session,
        side: Side,
        now: Instant,
    ) -> Outcome {
        write_tcp(&self.socket, &mut self.ready, cx, session, side, now)
    }

    fn shutdown_write(&mut self) {
        shutdown_tcp(&self.socket);
    }

    fn poll_shutdown(&mut self, _cx: &mut Context<'_>) {}
}

/// Shuts down the write half of a TCP socket. A failure means the connection is already gone,
/// which its next read reports.
pub(crate) fn shutdown_tcp(socket: &Async<TcpStream>) {
    if let Err(e) = socket.get_ref().shutdown(Shutdown::Write) {
        log::debug!("shutdown(Write) failed: {e}");
    }
}

/// Reads from a TCP socket into the session, waiting for readiness before lending a buffer.
pub(crate) fn read_tcp(
    socket: &Async<TcpStream>,
    ready: &mut Readiness,
    cx: &mut Context<'_>,
    session: &mut Session,
    side: Side,
    now: Instant,
) -> Outcome {
    for _ in 0..MAX_ATTEMPTS {
        let window = session.read_window(side);
        if window == 0 {
            return Outcome::Blocked;
        }
        if !ready.readable {
            match socket.poll_readable(cx) {
                Poll::Pending => return Outcome::Blocked,
                Poll::Ready(Err(_)) => return Outcome::Failed,
                Poll::Ready(Ok(())) => ready.readable = true,
            }
        }
        let mut stream = socket.get_ref();
        let (result, asked) = {
            let buf = session.read_buf(side);
            let asked = buf.len();
            let result = stream.read(buf);
            // Reports the bytes, or takes the lent buffer back at once (so that it can be
            // freed while idle).
            session.handle_read(side, *result.as_ref().unwrap_or(&0), now);
            (result, asked)
        };
        match result {
            Ok(0) => {
                session.handle_eof(side, now);
                return Outcome::Progress;
            }
            Ok(n) => {
                // A short read drained the socket: wait for the reactor before reading again.
                ready.readable = n == asked;
                return Outcome::Progress;
            }
            Err(e) => match e.kind() {
                ErrorKind::WouldBlock => ready.readable = false,
                ErrorKind::Interrupted => {}
                _ => return Outcome::Failed,
            },
        }
    }
    cx.waker().wake_by_ref();
    Outcome::Blocked
}

/// Writes what the session queued for `side` to a TCP socket, several chunks at once.
pub(crate) fn write_tcp(
    socket: &Async<TcpStream>,
    ready: &mut Readiness,
    cx: &mut Context<'_>,
    session: &mut Session,
    side: Side,
    now: Instant,
) -> Outcome {
    for _ in 0..MAX_ATTEMPTS {
        let written = {
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let count = session.transmit_vectored(side, &mut slices);
            if count == 0 {
                return Outcome::Blocked;
            }
            if !ready.writable {
                match socket.poll_writable(cx) {
                    Poll::Pending => return Outcome::Blocked,
                    Poll::Ready(Err(_)) => return Outcome::Failed,
                    Poll::Ready(Ok(())) => ready.writable = true,
                }
            }
            let offered: usize = slices[..count].iter().map(|s| s.len()).sum();
            let mut stream = socket.get_ref();
            stream
                .write_vectored(&slices[..count])
                .map(|n| (n, offered))
        };
        match written {
            Ok((0, _)) => return Outcome::Failed,
            Ok((n, offered)) => {
                // A short write filled the send buffer: wait for the reactor before the next.
                ready.writable = n == offered;
                session.handle_written(side, n, now);
                return Outcome::Progress;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => ready.writable = false,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Outcome::Failed,
        }
    }
    cx.waker().wake_by_ref();
    Outcome::Blocked
}

/// A client connection over any futures-io stream.
#[derive(Debug)]
pub(crate) struct StreamPeer<S> {
    stream: S,
    /// Bytes were written since the last flush.
    unflushed: bool,
    /// `poll_close` was started and has not completed.
    closing: bool,
}

impl<S> StreamPeer<S> {
    pub(crate) fn new(stream: S) -> Self {
        Self {
            stream,
            unflushed: false,
            closing: false,
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Peer for StreamPeer<S> {
    fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        session: &mut Session,
        side: Side,
        now: Instant,
    ) -> Outcome {
        for _ in 0..MAX_ATTEMPTS {
            let window = session.read_window(side);
            if window == 0 {
                return Outcome::Blocked;
            }
            let stream = Pin::new(&mut self.stream);
            let result = stream.poll_read(cx, session.read_buf(side));
            let n = match &result {
                Poll::Ready(Ok(n)) => *n,
                _ => 0,
            };
            // Reports the bytes, or takes the lent buffer back.
            session.handle_read(side, n, now);
            match result {
                Poll::Ready(Ok(0)) => {
                    session.handle_eof(side, now);
                    return Outcome::Progress;
                }
                Poll::Ready(Ok(_)) => return Outcome::Progress,
                Poll::Ready(Err(e)) if e.kind() == ErrorKind::Interrupted => {}
                Poll::Ready(Err(_)) => return Outcome::Failed,
                Poll::Pending => return Outcome::Blocked,
            }
        }
        cx.waker().wake_by_ref();
        Outcome::Blocked
    }

    fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        session: &mut Session,
        side: Side,
        now: Instant,
    ) -> Outcome {
        for _ in 0..MAX_ATTEMPTS {
            let written = {
                let mut slices = [IoSlice::new(&[]); MAX_SLICES];
                let count = session.transmit_vectored(side, &mut slices);
                if count == 0 {
                    return self.poll_flush(cx);
                }
                Pin::new(&mut self.stream).poll_write_vectored(cx, &slices[..count])
            };
            match written {
                Poll::Pending => return Outcome::Blocked,
                Poll::Ready(Ok(0)) => return Outcome::Failed,
                Poll::Ready(Ok(n)) => {
                    self.unflushed = true;
                    session.handle_written(side, n, now);
                    return Outcome::Progress;
                }
                Poll::Ready(Err(e)) if e.kind() == ErrorKind::Interrupted => {}
                Poll::Ready(Err(_)) => return Outcome::Failed,
            }
        }
        cx.waker().wake_by_ref();
        Outcome::Blocked
    }

    fn shutdown_write(&mut self) {
        self.closing = true;
    }

    fn poll_shutdown(&mut self, cx: &mut Context<'_>) {
        if !self.closing {
            return;
        }
        match Pin::new(&mut self.stream).poll_close(cx) {
            Poll::Pending => {}
            Poll::Ready(result) => {
                self.closing = false;
                self.unflushed = false;
                if let Err(e) = result {
                    log::debug!("closing the client stream failed: {e}");
                }
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> StreamPeer<S> {
    /// Flushes a stream that buffers writes (TLS) once everything queued was written to it.
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Outcome {
        if !self.unflushed || self.closing {
            return Outcome::Blocked;
        }
        match Pin::new(&mut self.stream).poll_flush(cx) {
            Poll::Pending => Outcome::Blocked,
            Poll::Ready(Ok(())) => {
                self.unflushed = false;
                Outcome::Blocked
            }
            Poll::Ready(Err(_)) => Outcome::Failed,
        }
    }
}
