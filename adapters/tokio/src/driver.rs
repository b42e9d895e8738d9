//! The drive loop: one client connection, one future.
//!
//! The future follows the core's drive rule on every wake-up, in rounds: drain
//! [`Session::poll_event`] and act on each event; poll the pending upstream connect; finish
//! pending write shutdowns; write what [`Session::transmit_vectored`] offers while the socket
//! accepts it; read each peer whose [`Session::read_window`] is open; fire the one timer armed
//! at [`Session::poll_timeout`]. A round in which nothing moved leaves every interesting source
//! registered with the task's waker, so the future returns `Pending`. After `MAX_ROUNDS` busy
//! rounds it yields, so that one busy tunnel cannot starve the other tasks of its worker.
//!
//! The driver decides nothing about HTTP: the only choices it makes are which upstream server
//! to dial (proto's `Failover`) and whether a pooled connection is still open.

use std::future::{poll_fn, Future};
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::task::{Context as TaskContext, Poll};
use std::time::Instant;

use switchyard_proto::{ClientInfo, Event, Failover, Pooled, Session, Side, Summary};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::futures::Notified;
use tokio::time::Sleep;

use crate::context::{Context, OpenSession};
use crate::peer::{is_transient, Peer, Stream};

/// Most chunks handed to one vectored write.
const MAX_SLICES: usize = 16;
/// Busy rounds of one poll before the future yields to the other tasks of its worker.
const MAX_ROUNDS: usize = 64;

/// Proxies one client connection over any stream (a TLS stream, a pipe, a TCP stream) until
/// the session ends or the [`Context`] shuts down, and resolves to how it ended. The stream is
/// read with `poll_read`; for a plain [`TcpStream`] prefer [`proxy_tcp_connection`], which
/// waits for readiness before it reads.
///
/// The session starts (and counts in [`Context::open_sessions`]) when this is called; await the
/// future at once.
pub fn proxy_connection<'a, S>(
    client: S,
    info: ClientInfo,
    ctx: &'a Context,
) -> impl Future<Output = Summary> + 'a
where
    S: AsyncRead + AsyncWrite + Unpin + 'a,
{
    drive(Stream(client), info, ctx)
}

/// Proxies one TCP client connection (the fast path [`serve`](crate::serve) uses): reads wait
/// for readiness, so that an idle connection holds no buffer, and `TCP_NODELAY` is set. Like
/// [`proxy_connection`], the session starts when this is called.
pub fn proxy_tcp_connection(
    client: TcpStream,
    info: ClientInfo,
    ctx: &Context,
) -> impl Future<Output = Summary> + '_ {
    if let Err(e) = client.set_nodelay(true) {
        log::debug!("TCP_NODELAY on the client socket: {e}");
    }
    drive(client, info, ctx)
}

/// The session's future. A plain function returning an `async` block that captures only the
/// driver: an `async fn` would also keep its arguments (the stream, the client's address) in
/// the future for its whole life, and every idle connection pays for the task's size.
fn drive<'a, C: Peer + 'a>(
    client: C,
    info: ClientInfo,
    ctx: &'a Context,
) -> impl Future<Output = Summary> + 'a {
    let mut driver = Driver::new(ctx, client, info, Instant::now());
    async move {
        let mut stop = pin!(ctx.stop_signal());
        stop.as_mut().enable();
        if ctx.is_shutting_down() {
            return driver.abandon();
        }
        // Not registered with the timer until the first deadline arms it.
        let mut sleep = pin!(tokio::time::sleep_until(tokio::time::Instant::now()));
        poll_fn(|cx| driver.poll(cx, sleep.as_mut(), stop.as_mut())).await
    }
}

/// A boxed upstream connect in flight.
type Dial<'a> = Pin<Box<dyn Future<Output = io::Result<TcpStream>> + Send + 'a>>;

/// The upstream connection of a session.
enum Upstream<'a> {
    /// None (between requests, or after a release).
    Idle,
    /// A connect to `server` is in flight.
    Connecting { server: &'a str, dial: Dial<'a> },
    /// Established (or taken from the pool).
    Connected {
        server: &'a str,
        conn: Pooled<TcpStream>,
    },
}

/// One client connection being driven.
struct Driver<'a, C> {
    ctx: &'a Context,
    session: Session,
    addr: Option<SocketAddr>,
    client: C,
    upstream: Upstream<'a>,
    failover: Failover,
    /// A `Shutdown` event for this side waits for its write half to be shut (index: `slot`).
    shutting: [bool; 2],
    /// The deadline the timer is armed at.
    armed: Option<Instant>,
    /// Counts the session as open; the last field, so that the sockets are closed first.
    _open: OpenSession<'a>,
}

impl<'a, C: Peer> Driver<'a, C> {
    fn new(ctx: &'a Context, client: C, info: ClientInfo, now: Instant) -> Self {
        let addr = info.addr;
        Self {
            ctx,
            session: Session::new(ctx.config().core.clone(), info, now),
            addr,
            client,
            upstream: Upstream::Idle,
            failover: Failover::default(),
            shutting: [false; 2],
            armed: None,
            _open: ctx.enter(),
        }
    }

    fn poll(
        &mut self,
        cx: &mut TaskContext<'_>,
        mut sleep: Pin<&mut Sleep>,
        mut stop: Pin<&mut Notified<'_>>,
    ) -> Poll<Summary> {
        for _ in 0..MAX_ROUNDS {
            let now = Instant::now();
            if let Some(summary) = self.handle_events(now) {
                return Poll::Ready(summary);
            }
            if self.ctx.is_shutting_down() {
                return Poll::Ready(self.abandon());
            }
            let mut moved = self.poll_connect(cx, now);
            self.poll_shutdowns(cx);
            for side in [Side::Client, Side::Upstream] {
                moved |= self.poll_write(cx, side, now);
            }
            for side in [Side::Client, Side::Upstream] {
                moved |= self.poll_read(cx, side, now);
            }
            moved |= self.poll_timer(cx, sleep.as_mut());
            if !moved {
                if stop.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(self.abandon());
                }
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Acts on every queued event; returns the summary once the session closed.
    fn handle_events(&mut self, now: Instant) -> Option<Summary> {
        while let Some(event) = self.session.poll_event() {
            match event {
                Event::Connect => self.connect(now),
                Event::TunnelEstablished {
                    protocol,
                    held_client_bytes,
                    early_upstream_bytes,
                } => {
                    // TCP_NODELAY is already on for both TCP sockets (set when each was opened).
                    log::debug!(
                        "{}: tunnel established ({}), {held_client_bytes} held client bytes, \
                         {early_upstream_bytes} early upstream bytes",
                        ClientAddr(self.addr),
                        String::from_utf8_lossy(&protocol)
                    );
                }
                Event::Shutdown(side) => self.shutting[slot(side)] = true,
                Event::ReleaseUpstream { reusable } => self.release(reusable, now),
                Event::Close(summary) => {
                    self.upstream = Upstream::Idle;
                    log_summary(self.addr, &summary);
                    return Some(summary);
                }
                other => log::debug!("{}: ignoring {other:?}", ClientAddr(self.addr)),
            }
        }
        None
    }

    /// `Connect`: an idle pooled connection to the chosen server, else a new connection.
    fn connect(&mut self, now: Instant) {
        self.upstream = Upstream::Idle;
        self.shutting[slot(Side::Upstream)] = false;
        let ctx = self.ctx;
        let group = &ctx.config().upstreams;
        let reason = self.session.connect_reason();
        let Some(server) = self
            .failover
            .server_for(group, reason)
            .and_then(|i| group.servers().get(i))
            .map(String::as_str)
        else {
            log::warn!("no upstream server configured");
            self.session.handle_connect_failed(now);
            return;
        };
        if let Some(conn) = ctx.checkout(server, now) {
            log::debug!(
                "{}: reusing a connection to {server}",
                ClientAddr(self.addr)
            );
            self.upstream = Upstream::Connected { server, conn };
            self.session.handle_connected_reused(now);
        } else {
            log::debug!("{}: connecting to {server}", ClientAddr(self.addr));
            self.upstream = Upstream::Connecting {
                server,
                dial: Box::pin(TcpStream::connect(server)),
            };
        }
    }

    /// Polls the connect in flight; returns whether the session was told its outcome.
    fn poll_connect(&mut self, cx: &mut TaskContext<'_>, now: Instant) -> bool {
        let Upstream::Connecting { server, dial } = &mut self.upstream else {
            return false;
        };
        let server = *server;
        let Poll::Ready(result) = dial.as_mut().poll(cx) else {
            return false;
        };
        match result {
            Ok(stream) => {
                if let Err(e) = stream.set_nodelay(true) {
                    log::debug!("TCP_NODELAY on the upstream socket: {e}");
                }
                self.upstream = Upstream::Connected {
                    server,
                    conn: Pooled::new(stream, now),
                };
                self.session.handle_connected(now);
            }
            Err(e) => {
                log::warn!("connecting to upstream {server} failed: {e}");
                self.upstream = Upstream::Idle;
                if !(self.failover.has_next() && self.session.retry(now)) {
                    self.session.handle_connect_failed(now);
                }
            }
        }
        true
    }

    /// `ReleaseUpstream`: back to the pool, or closed (a connect in flight is abandoned).
    fn release(&mut self, reusable: bool, now: Instant) {
        self.shutting[slot(Side::Upstream)] = false;
        match std::mem::replace(&mut self.upstream, Upstream::Idle) {
            Upstream::Connected { server, conn } => {
                if reusable {
                    self.ctx.checkin(server, conn, now);
                }
            }
            Upstream::Connecting { server, .. } => {
                log::debug!(
                    "{}: abandoning the connect to {server}",
                    ClientAddr(self.addr)
                );
            }
            Upstream::Idle => {}
        }
    }

    /// Shuts down the write halves the session asked for.
    fn poll_shutdowns(&mut self, cx: &mut TaskContext<'_>) {
        for side in [Side::Client, Side::Upstream] {
            if !self.shutting[slot(side)] {
                continue;
            }
            let polled = match (side, &mut self.upstream) {
                (Side::Client, _) => self.client.poll_shutdown(cx),
                (Side::Upstream, Upstream::Connected { conn, .. }) => conn.conn.poll_shutdown(cx),
                (Side::Upstream, _) => Poll::Ready(Ok(())),
            };
            if let Poll::Ready(result) = polled {
                self.shutting[slot(side)] = false;
                if let Err(e) = result {
                    // The peer is gone; the next read or write reports it to the session.
                    log::debug!("{}: shutdown({side:?}): {e}", ClientAddr(self.addr));
                }
            }
        }
    }

    /// Writes what the session offers for `side`; returns whether the session was told
    /// anything.
    fn poll_write(&mut self, cx: &mut TaskContext<'_>, side: Side, now: Instant) -> bool {
        let Self {
            session,
            client,
            upstream,
            ..
        } = self;
        match (side, upstream) {
            (Side::Client, _) => write_offered(cx, session, client, side, now),
            (Side::Upstream, Upstream::Connected { conn, .. }) => {
                write_offered(cx, session, &mut conn.conn, side, now)
            }
            (Side::Upstream, _) => false,
        }
    }

    /// Reads `side` if its window is open; returns whether the session was told anything.
    fn poll_read(&mut self, cx: &mut TaskContext<'_>, side: Side, now: Instant) -> bool {
        if self.session.read_window(side) == 0 {
            return false;
        }
        let Self {
            session,
            client,
            upstream,
            addr,
            ..
        } = self;
        let polled = match (side, upstream) {
            (Side::Client, _) => client.poll_read_into(cx, session, side, now),
            (Side::Upstream, Upstream::Connected { conn, .. }) => {
                conn.conn.poll_read_into(cx, session, side, now)
            }
            (Side::Upstream, _) => return false,
        };
        match polled {
            Poll::Pending => return false,
            Poll::Ready(Ok(0)) => session.handle_eof(side, now),
            // The peer reported the bytes to the session.
            Poll::Ready(Ok(_)) => {}
            Poll::Ready(Err(e)) => {
                log::debug!("{}: reading {side:?}: {e}", ClientAddr(*addr));
                session.handle_error(side, now);
            }
        }
        true
    }

    /// The one timer, armed at the session's next deadline.
    fn poll_timer(&mut self, cx: &mut TaskContext<'_>, mut sleep: Pin<&mut Sleep>) -> bool {
        let wanted = self.session.poll_timeout();
        if wanted != self.armed {
            self.armed = wanted;
            if let Some(at) = wanted {
                sleep.as_mut().reset(tokio::time::Instant::from_std(at));
            }
        }
        if self.armed.is_none() || sleep.poll(cx).is_pending() {
            return false;
        }
        self.armed = None;
        self.session.handle_timeout(Instant::now());
        true
    }

    /// Ends the session early (shutdown): the sockets close when the driver is dropped.
    fn abandon(&mut self) -> Summary {
        self.upstream = Upstream::Idle;
        log::debug!("{}: session ended by shutdown", ClientAddr(self.addr));
        self.session.handle_shutdown()
    }
}

/// Writes what the session offers for `side` while `peer` accepts it.
fn write_offered<P: Peer>(
    cx: &mut TaskContext<'_>,
    session: &mut Session,
    peer: &mut P,
    side: Side,
    now: Instant,
) -> bool {
    let mut moved = false;
    loop {
        let polled = {
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let n = session.transmit_vectored(side, &mut slices);
            if n == 0 {
                return moved;
            }
            peer.poll_write_vectored(cx, &slices[..n])
        };
        match polled {
            Poll::Pending => return moved,
            Poll::Ready(Ok(0)) => {
                session.handle_error(side, now);
                return true;
            }
            Poll::Ready(Ok(n)) => {
                session.handle_written(side, n, now);
                moved = true;
            }
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
            Poll::Ready(Err(e)) if is_transient(&e) => {
                cx.waker().wake_by_ref();
                return moved;
            }
            Poll::Ready(Err(e)) => {
                log::debug!("writing {side:?}: {e}");
                session.handle_error(side, now);
                return true;
            }
        }
    }
}

/// Index of `side` in per-side arrays.
fn slot(side: Side) -> usize {
    match side {
        Side::Client => 0,
        Side::Upstream => 1,
    }
}

/// Logs how a session ended (info), in one line.
fn log_summary(addr: Option<SocketAddr>, summary: &Summary) {
    log::info!("{}: closed {summary}", ClientAddr(addr));
}

/// A client address for logs (`-` when unknown).
struct ClientAddr(Option<SocketAddr>);

impl std::fmt::Display for ClientAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(addr) => write!(f, "{addr}"),
            None => f.write_str("-"),
        }
    }
}
