//! One client connection, driven by one hand-written future.
//!
//! [`Drive`] is the drive loop of the adapter contract as a `Future`: each time it is polled it
//! drains the session's events, then tries, in order, the upstream connect, the writes, the reads
//! and the deadline. The first step that tells the session something sends it back to draining
//! events (the contract's "after any input, drain `poll_event`"); when no step can progress, every
//! step has registered its wake-up (socket readiness, the connect, the deadline, the shutdown
//! signal) and the future returns `Pending`. One task, no channels, no split streams. The
//! deadline is an entry in the context's shared deadline table (see `deadlines`), replaced only
//! when the session's deadline moves *earlier* (a busy tunnel pushes its deadlines later on
//! every read; the entry then fires once, early, and is replaced).

use std::future::Future;
use std::net::{SocketAddr, TcpStream};
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Instant;

use async_io::Async;
use event_listener::EventListener;
use futures_io::{AsyncRead, AsyncWrite};
use switchyard_proto::{ClientInfo, Event, Failover, Pooled, Session, Side, Summary};

use crate::context::{Conn, Context, OpenSession};
use crate::deadlines::Registration;
use crate::io::{read_tcp, shutdown_tcp, write_tcp, Outcome, Peer, Readiness, StreamPeer, TcpPeer};
use crate::upstream::{dial, Dial};

/// Loop turns with progress before the task yields to others (fairness on busy sockets).
const BUDGET: usize = 128;

/// Proxies one client connection over any futures-io stream (TLS, smol, async-std) until its
/// session ends, and returns how it ended. Set `TCP_NODELAY` on a TCP stream before.
///
/// The session's receive buffer is lent to `poll_read` directly, so an idle connection keeps one
/// buffer; for plain TCP prefer [`proxy_tcp_connection`], which holds none while idle.
pub async fn proxy_connection<S>(client: S, info: ClientInfo, ctx: &Context) -> Summary
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    Drive::new(StreamPeer::new(client), info, ctx).await
}

/// Proxies one TCP client connection until its session ends: the fast path used by
/// [`serve`](crate::serve) and [`spawn`](crate::spawn). The session lends a receive buffer only
/// once the socket is readable. Sets `TCP_NODELAY`.
pub async fn proxy_tcp_connection(
    client: Async<TcpStream>,
    info: ClientInfo,
    ctx: &Context,
) -> Summary {
    if let Err(e) = client.get_ref().set_nodelay(true) {
        log::debug!("TCP_NODELAY on the client socket: {e}");
    }
    Drive::new(TcpPeer::accepted(client), info, ctx).await
}

/// The upstream connection of a session.
enum Upstream {
    /// None held.
    None,
    /// Being established to server `server` of the group.
    Connecting { dial: Dial, server: usize },
    /// Established (or taken from the pool).
    Connected(Box<Connected>),
}

/// An established upstream connection.
struct Connected {
    pooled: Pooled<Conn>,
    ready: Readiness,
    server: usize,
    /// It came from the pool.
    reused: bool,
}

/// The future driving one session. See the [module documentation](self).
struct Drive<'a, C> {
    ctx: &'a Context,
    session: Session,
    peer: Option<SocketAddr>,
    /// `None` once closed.
    client: Option<C>,
    upstream: Upstream,
    /// Where the current request is in its failover order.
    failover: Failover,
    /// The session's entry in the context's deadline table.
    deadline: Registration,
    /// `None` when shutdown was already under way at the start.
    shutdown: Option<EventListener>,
    _open: OpenSession<'a>,
}

impl<'a, C: Peer + Unpin> Drive<'a, C> {
    fn new(client: C, info: ClientInfo, ctx: &'a Context) -> Self {
        let now = Instant::now();
        let peer = info.addr;
        Self {
            _open: ctx.open_session(),
            shutdown: ctx.shutdown_listener(),
            session: Session::new(ctx.config().core.clone(), info, now),
            ctx,
            peer,
            client: Some(client),
            upstream: Upstream::None,
            failover: Failover::default(),
            deadline: Registration::default(),
        }
    }

    /// Drains the session's events; returns the summary once it closed.
    fn drain_events(&mut self, now: Instant) -> Option<Summary> {
        while let Some(event) = self.session.poll_event() {
            match event {
                Event::Connect => self.on_connect(now),
                Event::TunnelEstablished {
                    protocol,
                    held_client_bytes,
                    early_upstream_bytes,
                } => log::debug!(
                    "{}: tunnel ({}) established, {held_client_bytes} held and \
                     {early_upstream_bytes} early bytes",
                    PeerName(self.peer),
                    String::from_utf8_lossy(&protocol),
                ),
                Event::Shutdown(Side::Client) => {
                    if let Some(client) = &mut self.client {
                        client.shutdown_write();
                    }
                }
                Event::Shutdown(Side::Upstream) => {
                    if let Upstream::Connected(up) = &self.upstream {
                        shutdown_tcp(&up.pooled.conn);
                    }
                }
                Event::ReleaseUpstream { reusable } => self.release_upstream(reusable, now),
                Event::Close(summary) => return Some(summary),
                _ => {}
            }
        }
        None
    }

    /// `Event::Connect`: the pool first, then a dial, along the exchange's failover order.
    fn on_connect(&mut self, now: Instant) {
        self.upstream = Upstream::None;
        let group = &self.ctx.config().upstreams;
        let Some(server) = self
            .failover
            .server_for(group, self.session.connect_reason())
        else {
            self.session.handle_connect_failed(now);
            return;
        };
        if let Some(pooled) = self.ctx.checkout(&group.servers()[server], now) {
            self.upstream = Upstream::Connected(Box::new(Connected {
                pooled,
                ready: Readiness::fresh(),
                server,
                reused: true,
            }));
            self.session.handle_connected_reused(now);
            return;
        }
        self.upstream = Upstream::Connecting {
            dial: dial(group.clone(), server),
            server,
        };
    }

    /// `Event::ReleaseUpstream`: back to the pool, or closed (a dial in flight is abandoned).
    fn release_upstream(&mut self, reusable: bool, now: Instant) {
        if let Upstream::Connected(up) = std::mem::replace(&mut self.upstream, Upstream::None) {
            if reusable {
                let server = &self.ctx.config().upstreams.servers()[up.server];
                self.ctx.checkin(server, up.pooled, now);
            }
        }
    }

    /// Polls a dial in flight.
    fn poll_dial(&mut self, cx: &mut TaskContext<'_>, now: Instant) -> bool {
        let Upstream::Connecting { dial, server } = &mut self.upstream else {
            return false;
        };
        let server = *server;
        let result = match dial.as_mut().poll(cx) {
            Poll::Pending => return false,
            Poll::Ready(result) => result,
        };
        match result {
            Ok(socket) => {
                self.upstream = Upstream::Connected(Box::new(Connected {
                    pooled: Pooled::new(socket, now),
                    ready: Readiness::fresh(),
                    server,
                    reused: false,
                }));
                self.session.handle_connected(now);
            }
            Err(e) => {
                log::debug!(
                    "{}: connecting to {} failed: {e}",
                    PeerName(self.peer),
                    self.ctx.config().upstreams.servers()[server]
                );
                self.upstream = Upstream::None;
                self.fail_over(now, |session| session.handle_connect_failed(now));
            }
        }
        true
    }

    /// The upstream connection failed: the next candidate if one remains and the session says
    /// the request may be sent again ([`Session::retry`]), else `otherwise`. A reused connection
    /// is left to the session, which replaces stale pooled connections by itself.
    fn fail_over(&mut self, now: Instant, otherwise: impl FnOnce(&mut Session)) {
        let reused = matches!(&self.upstream, Upstream::Connected(up) if up.reused);
        if reused || !(self.failover.has_next() && self.session.retry(now)) {
            otherwise(&mut self.session);
        }
    }

    /// One pass over everything that can progress; returns whether the session was told
    /// something (then its events must be drained before anything else).
    fn step(&mut self, cx: &mut TaskContext<'_>, now: Instant) -> bool {
        self.poll_dial(cx, now)
            || self.client_io(cx, now, Direction::Write)
            || self.upstream_io(cx, now, Direction::Write)
            || self.client_io(cx, now, Direction::Read)
            || self.upstream_io(cx, now, Direction::Read)
            || self.poll_timer(cx, now)
    }

    /// Writes to or reads from the client.
    fn client_io(&mut self, cx: &mut TaskContext<'_>, now: Instant, dir: Direction) -> bool {
        let Some(client) = &mut self.client else {
            return false;
        };
        let outcome = match dir {
            Direction::Write => {
                client.poll_shutdown(cx);
                client.poll_write(cx, &mut self.session, Side::Client, now)
            }
            Direction::Read => client.poll_read(cx, &mut self.session, Side::Client, now),
        };
        match outcome {
            Outcome::Blocked => false,
            Outcome::Progress => true,
            Outcome::Failed => {
                self.session.handle_error(Side::Client, now);
                true
            }
        }
    }

    /// Writes to or reads from the upstream connection, if one is established.
    fn upstream_io(&mut self, cx: &mut TaskContext<'_>, now: Instant, dir: Direction) -> bool {
        let Upstream::Connected(up) = &mut self.upstream else {
            return false;
        };
        let (socket, ready, session) = (&up.pooled.conn, &mut up.ready, &mut self.session);
        let outcome = match dir {
            Direction::Write => write_tcp(socket, ready, cx, session, Side::Upstream, now),
            Direction::Read => read_tcp(socket, ready, cx, session, Side::Upstream, now),
        };
        match outcome {
            Outcome::Blocked => false,
            Outcome::Progress => true,
            Outcome::Failed => {
                self.fail_over(now, |s| s.handle_error(Side::Upstream, now));
                true
            }
        }
    }

    /// Fires the session's deadline, or registers it to be woken then.
    fn poll_timer(&mut self, cx: &mut TaskContext<'_>, now: Instant) -> bool {
        let Some(deadline) = self.session.poll_timeout() else {
            return false;
        };
        if deadline <= now {
            self.session.handle_timeout(now);
            return true;
        }
        self.ctx
            .deadlines()
            .register(&mut self.deadline, deadline, now, cx.waker());
        false
    }

    /// The session ended: close both connections and log how it went.
    fn finish(&mut self, summary: Summary) -> Summary {
        self.client = None;
        self.upstream = Upstream::None;
        log::info!("{}: closed {summary}", PeerName(self.peer));
        summary
    }

    /// Shutdown of the listener: the session is abandoned, both connections closed.
    fn abort(&mut self) -> Summary {
        self.client = None;
        self.upstream = Upstream::None;
        log::info!("{}: closed by shutdown", PeerName(self.peer));
        self.session.handle_shutdown()
    }
}

impl<C> Drop for Drive<'_, C> {
    fn drop(&mut self) {
        self.ctx.deadlines().cancel(&mut self.deadline);
    }
}

impl<C: Peer + Unpin> Future for Drive<'_, C> {
    type Output = Summary;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Summary> {
        let this = self.get_mut();
        let stopping = match &mut this.shutdown {
            Some(listener) => Pin::new(listener).poll(cx).is_ready(),
            None => true,
        };
        if stopping {
            return Poll::Ready(this.abort());
        }
        for _ in 0..BUDGET {
            let now = Instant::now();
            if let Some(summary) = this.drain_events(now) {
                return Poll::Ready(this.finish(summary));
            }
            if !this.step(cx, now) {
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Which way an I/O step moves bytes.
#[derive(Debug, Clone, Copy)]
enum Direction {
    Read,
    Write,
}

/// A client address for logs.
struct PeerName(Option<SocketAddr>);

impl std::fmt::Display for PeerName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(addr) => write!(f, "{addr}"),
            None => f.write_str("client"),
        }
    }
}
