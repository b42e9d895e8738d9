//! One client connection driven over non-blocking sockets, whoever runs the loop (an event
//! loop thread with many connections, or [`proxy_connection`](crate::proxy_connection) with one).
//!
//! Sockets are registered edge-triggered for both directions, once. A [`Ready`] per socket
//! remembers what the last events said; an operation that returns `WouldBlock` clears it, and so
//! does a short read (the socket is drained; new bytes bring a new edge), unless the peer's FIN
//! was reported, which a read must still see. So a read happens only on a socket known to be
//! readable (and only then is the session's buffer
//! lent), and the loop around [`Conn::drive`] only has to deliver events and deadlines.
//!
//! The driver decides nothing about HTTP: the only choices it makes are which upstream server
//! to dial (proto's `Failover`) and whether a pooled connection is still open.

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::time::Instant;

use mio::event::Event as Readiness;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use switchyard_proto::{ClientInfo, Event, Failover, Pooled, Session, Side, Summary};

use crate::context::{Context, OpenSession};

/// Most chunks handed to one vectored write.
const MAX_SLICES: usize = 16;
/// Busy rounds of one `drive` before it returns, so that one busy tunnel cannot starve the other
/// connections of its loop.
const MAX_ROUNDS: usize = 64;

/// The token of a loop's waker; never a connection's.
pub(crate) const WAKER: Token = Token(usize::MAX);

/// The token of the client socket of connection `key`. A token is `key << 2 | kind`: kind 0 is
/// the client, 1 and 2 the upstream (alternating with each new upstream socket, so that a late
/// event of a replaced socket is not taken for one of its successor).
pub(crate) fn client_token(key: usize) -> Token {
    Token(key << 2)
}

/// The connection a token belongs to.
pub(crate) fn key_of(token: Token) -> usize {
    token.0 >> 2
}

/// What the driver knows about a socket's readiness.
#[derive(Debug, Default, Clone, Copy)]
struct Ready {
    readable: bool,
    writable: bool,
    /// The peer closed its write half (or the socket failed): reading goes on until the read
    /// that reports it, even after a short read.
    read_closed: bool,
}

/// A connect in flight.
#[derive(Debug)]
struct Dialing {
    stream: TcpStream,
    ready: Ready,
    /// Addresses of the same server still to try.
    rest: std::vec::IntoIter<SocketAddr>,
}

/// The upstream connection of a session.
#[derive(Debug)]
enum Upstream {
    /// None (between requests, or after a release).
    Idle,
    /// A connect to `servers()[server]` is in flight.
    Connecting { server: usize, dialing: Dialing },
    /// Established (or taken from the pool).
    Connected {
        server: usize,
        conn: Pooled<TcpStream>,
        ready: Ready,
    },
}

/// What a call to [`Conn::drive`] left.
#[derive(Debug)]
pub(crate) enum Progress {
    /// Waiting for events or the deadline.
    Idle,
    /// Still has work: drive again soon, after the other connections.
    Busy,
    /// The session is over; the connection can be dropped (which closes its sockets).
    Closed(Summary),
}

/// One client connection: its session, its sockets and their readiness.
#[derive(Debug)]
pub(crate) struct Conn {
    key: usize,
    session: Session,
    addr: Option<SocketAddr>,
    client: TcpStream,
    client_ready: Ready,
    upstream: Upstream,
    /// Which of the two upstream token kinds the current upstream socket uses.
    upstream_kind: usize,
    failover: Failover,
    _open: OpenSession,
    /// The earliest deadline the owning loop has scheduled a wake-up for.
    pub(crate) scheduled: Option<Instant>,
}

impl Conn {
    /// Registers `client` (non-blocking) under `key` and starts its session.
    pub(crate) fn new(
        ctx: &Context,
        key: usize,
        mut client: TcpStream,
        info: ClientInfo,
        registry: &Registry,
    ) -> io::Result<Self> {
        if let Err(e) = client.set_nodelay(true) {
            log::debug!("TCP_NODELAY on the client socket: {e}");
        }
        registry.register(
            &mut client,
            client_token(key),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        let addr = info.addr;
        Ok(Self {
            key,
            session: Session::new(ctx.config().core.clone(), info, Instant::now()),
            addr,
            client,
            client_ready: Ready::default(),
            upstream: Upstream::Idle,
            upstream_kind: 2,
            failover: Failover::default(),
            _open: ctx.enter(),
            scheduled: None,
        })
    }

    /// The session's next deadline.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.session.poll_timeout()
    }

    /// Records what an event says about one of this connection's sockets.
    pub(crate) fn on_event(&mut self, event: &Readiness) {
        let kind = event.token().0 & 3;
        let ready = if kind == 0 {
            &mut self.client_ready
        } else if kind == self.upstream_kind {
            match &mut self.upstream {
                Upstream::Connecting { dialing, .. } => &mut dialing.ready,
                Upstream::Connected { ready, .. } => ready,
                Upstream::Idle => return,
            }
        } else {
            return; // a socket that was replaced meanwhile
        };
        let failed = event.is_error();
        ready.read_closed |= failed || event.is_read_closed();
        ready.readable |= ready.read_closed || event.is_readable();
        ready.writable |= failed || event.is_writable() || event.is_write_closed();
    }

    /// Runs the session until it waits for the network or a deadline (or has run long enough).
    pub(crate) fn drive(&mut self, ctx: &Context, registry: &Registry) -> Progress {
        for _ in 0..MAX_ROUNDS {
            let now = Instant::now();
            if let Some(summary) = self.handle_events(ctx, registry, now) {
                return Progress::Closed(summary);
            }
            let mut moved = self.poll_connect(ctx, registry, now);
            for side in [Side::Client, Side::Upstream] {
                moved |= self.write(side, now);
            }
            for side in [Side::Client, Side::Upstream] {
                moved |= self.read(side, now);
            }
            if self.session.poll_timeout().is_some_and(|at| at <= now) {
                self.session.handle_timeout(now);
                moved = true;
            }
            if !moved {
                return Progress::Idle;
            }
        }
        Progress::Busy
    }

    /// Ends the session early (shutdown); the sockets close when the connection is dropped.
    pub(crate) fn abandon(&mut self) -> Summary {
        self.upstream = Upstream::Idle;
        log::debug!("{}: session ended by shutdown", ClientAddr(self.addr));
        self.session.handle_shutdown()
    }

    /// Acts on every queued event; returns the summary once the session closed.
    fn handle_events(
        &mut self,
        ctx: &Context,
        registry: &Registry,
        now: Instant,
    ) -> Option<Summary> {
        while let Some(event) = self.session.poll_event() {
            match event {
                Event::Connect => self.connect(ctx, registry, now),
                Event::TunnelEstablished {
                    protocol,
                    held_client_bytes,
                    early_upstream_bytes,
                } => {
                    // TCP_NODELAY is already on for both sockets (set when each was opened).
                    log::debug!(
                        "{}: tunnel established ({}), {held_client_bytes} held client bytes, \
                         {early_upstream_bytes} early upstream bytes",
                        ClientAddr(self.addr),
                        String::from_utf8_lossy(&protocol)
                    );
                }
                Event::Shutdown(side) => self.shutdown_write(side),
                Event::ReleaseUpstream { reusable } => self.release(ctx, registry, reusable, now),
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
    fn connect(&mut self, ctx: &Context, registry: &Registry, now: Instant) {
        self.upstream = Upstream::Idle;
        let group = &ctx.config().upstreams;
        let Some(server) = self
            .failover
            .server_for(group, self.session.connect_reason())
        else {
            log::warn!("no upstream server configured");
            self.session.handle_connect_failed(now);
            return;
        };
        let name = &group.servers()[server];
        if let Some(mut conn) = ctx.checkout(name, now) {
            let token = self.next_upstream_token();
            match registry.register(
                &mut conn.conn,
                token,
                Interest::READABLE | Interest::WRITABLE,
            ) {
                Ok(()) => {
                    log::debug!("{}: reusing a connection to {name}", ClientAddr(self.addr));
                    self.upstream = Upstream::Connected {
                        server,
                        conn,
                        ready: Ready {
                            writable: true,
                            ..Ready::default()
                        },
                    };
                    self.session.handle_connected_reused(now);
                    return;
                }
                Err(e) => log::warn!("registering a pooled connection: {e}"),
            }
        }
        log::debug!("{}: connecting to {name}", ClientAddr(self.addr));
        let addrs = match name.to_socket_addrs() {
            Ok(addrs) => addrs.collect::<Vec<_>>(),
            Err(e) => {
                log::warn!("resolving upstream {name}: {e}");
                Vec::new()
            }
        };
        self.dial(ctx, registry, server, addrs.into_iter(), now);
    }

    /// Starts a connect to the first address of `rest` that accepts one; when none is left,
    /// the server failed.
    fn dial(
        &mut self,
        ctx: &Context,
        registry: &Registry,
        server: usize,
        mut rest: std::vec::IntoIter<SocketAddr>,
        now: Instant,
    ) {
        while let Some(addr) = rest.next() {
            let started = TcpStream::connect(addr).and_then(|mut stream| {
                let token = self.next_upstream_token();
                registry.register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)?;
                Ok(stream)
            });
            match started {
                Ok(stream) => {
                    self.upstream = Upstream::Connecting {
                        server,
                        dialing: Dialing {
                            stream,
                            ready: Ready::default(),
                            rest,
                        },
                    };
                    return;
                }
                Err(e) => log::debug!("connecting to {addr}: {e}"),
            }
        }
        self.server_failed(ctx, server, now);
    }

    /// Every address of the server failed: the next server if the session agrees, else a 502.
    fn server_failed(&mut self, ctx: &Context, server: usize, now: Instant) {
        log::warn!(
            "connecting to upstream {} failed",
            ctx.config().upstreams.servers()[server]
        );
        self.upstream = Upstream::Idle;
        if !(self.failover.has_next() && self.session.retry(now)) {
            self.session.handle_connect_failed(now);
        }
    }

    /// Checks a connect in flight that had an event; returns whether the session was told
    /// its outcome.
    fn poll_connect(&mut self, ctx: &Context, registry: &Registry, now: Instant) -> bool {
        let outcome = match &mut self.upstream {
            Upstream::Connecting { dialing, .. }
                if dialing.ready.readable || dialing.ready.writable =>
            {
                let outcome = connect_outcome(&dialing.stream);
                if matches!(outcome, Ok(false)) {
                    dialing.ready = Ready::default();
                }
                outcome
            }
            _ => return false,
        };
        if matches!(outcome, Ok(false)) {
            return false;
        }
        let Upstream::Connecting { server, dialing } =
            std::mem::replace(&mut self.upstream, Upstream::Idle)
        else {
            return false;
        };
        match outcome {
            Ok(_) => {
                if let Err(e) = dialing.stream.set_nodelay(true) {
                    log::debug!("TCP_NODELAY on the upstream socket: {e}");
                }
                self.upstream = Upstream::Connected {
                    server,
                    conn: Pooled::new(dialing.stream, now),
                    ready: dialing.ready,
                };
                self.session.handle_connected(now);
            }
            Err(e) => {
                log::debug!("{}: connect failed: {e}", ClientAddr(self.addr));
                drop(dialing.stream);
                self.dial(ctx, registry, server, dialing.rest, now);
            }
        }
        true
    }

    /// `ReleaseUpstream`: back to the pool, or closed (a connect in flight is abandoned).
    fn release(&mut self, ctx: &Context, registry: &Registry, reusable: bool, now: Instant) {
        match std::mem::replace(&mut self.upstream, Upstream::Idle) {
            Upstream::Connected {
                server, mut conn, ..
            } => {
                if reusable {
                    match registry.deregister(&mut conn.conn) {
                        Ok(()) => {
                            let name = &ctx.config().upstreams.servers()[server];
                            ctx.checkin(name, conn, now);
                        }
                        Err(e) => log::debug!("deregistering an upstream connection: {e}"),
                    }
                }
            }
            Upstream::Connecting { .. } => {
                log::debug!("{}: abandoning a connect", ClientAddr(self.addr));
            }
            Upstream::Idle => {}
        }
    }

    /// `Shutdown`: shuts the write half of that peer's socket down.
    fn shutdown_write(&mut self, side: Side) {
        let stream = match (side, &self.upstream) {
            (Side::Client, _) => &self.client,
            (Side::Upstream, Upstream::Connected { conn, .. }) => &conn.conn,
            (Side::Upstream, _) => return,
        };
        if let Err(e) = stream.shutdown(Shutdown::Write) {
            // The peer is gone; the next read or write reports it to the session.
            log::debug!("{}: shutdown({side:?}): {e}", ClientAddr(self.addr));
        }
    }

    /// Writes what the session offers for `side` while the socket accepts it.
    fn write(&mut self, side: Side, now: Instant) -> bool {
        let Self {
            session,
            client,
            client_ready,
            upstream,
            ..
        } = self;
        let (stream, ready) = match (side, upstream) {
            (Side::Client, _) => (&*client, client_ready),
            (Side::Upstream, Upstream::Connected { conn, ready, .. }) => (&conn.conn, ready),
            (Side::Upstream, _) => return false,
        };
        let mut moved = false;
        while ready.writable {
            let written = {
                let mut slices = [IoSlice::new(&[]); MAX_SLICES];
                let n = session.transmit_vectored(side, &mut slices);
                if n == 0 {
                    break;
                }
                (&*stream).write_vectored(&slices[..n])
            };
            match written {
                Ok(0) => {
                    session.handle_error(side, now);
                    return true;
                }
                Ok(n) => {
                    session.handle_written(side, n, now);
                    moved = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => ready.writable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    log::debug!("writing {side:?}: {e}");
                    session.handle_error(side, now);
                    return true;
                }
            }
        }
        moved
    }

    /// Reads `side` once if it is readable and its window is open.
    fn read(&mut self, side: Side, now: Instant) -> bool {
        let Self {
            session,
            client,
            client_ready,
            upstream,
            ..
        } = self;
        let (stream, ready) = match (side, upstream) {
            (Side::Client, _) => (&*client, client_ready),
            (Side::Upstream, Upstream::Connected { conn, ready, .. }) => (&conn.conn, ready),
            (Side::Upstream, _) => return false,
        };
        if !ready.readable || session.read_window(side) == 0 {
            return false;
        }
        let buf = session.read_buf(side);
        let lent = buf.len();
        match (&*stream).read(buf) {
            Ok(0) => session.handle_eof(side, now),
            Ok(n) => {
                // A short read drained the socket: the next bytes come with a new edge, so wait
                // for it instead of reading into `WouldBlock` (unless the peer's FIN is known
                // to be there, which reading must report).
                if n < lent {
                    ready.readable = ready.read_closed;
                }
                session.handle_read(side, n, now);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                ready.readable = false;
                session.handle_read(side, 0, now);
                return false;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => session.handle_read(side, 0, now),
            Err(e) => {
                log::debug!("reading {side:?}: {e}");
                session.handle_error(side, now);
            }
        }
        true
    }

    /// The token for a new upstream socket (the other kind than the previous one).
    fn next_upstream_token(&mut self) -> Token {
        self.upstream_kind = 3 - self.upstream_kind;
        Token(self.key << 2 | self.upstream_kind)
    }
}

/// Where a non-blocking connect stands: `Ok(true)` connected, `Ok(false)` still in progress.
fn connect_outcome(stream: &TcpStream) -> io::Result<bool> {
    if let Some(e) = stream.take_error()? {
        return Err(e);
    }
    match stream.peer_addr() {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
        Err(e) => Err(e),
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
