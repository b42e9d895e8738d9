//! One proxied client connection, as a sans-IO state machine.
//!
//! A [`Session`] owns no socket and reads no clock. Its driver (an adapter) feeds it what happened
//! — bytes read, bytes written, EOFs, the upstream connection's outcome, the time — through the
//! `handle_*` methods, and after each input drains the `poll_*` methods for what to do next:
//! events ([`Session::poll_event`]), bytes to write ([`Session::transmit`]) and the next deadline
//! ([`Session::poll_timeout`]). How much it may read from each peer is [`Session::read_window`]:
//! zero means "do not read this peer now" (backpressure).
//!
//! # States
//!
//! All transitions are in this module, `exchange.rs`, `tunnel.rs` and `ending.rs`; the phase is one private
//! enum, `Phase`, whose variants carry only the data valid in them.
//!
//! ```text
//!        ┌──────────────── keep-alive: response done, next request (maybe already held) ───┐
//!        ▼                                                                                 │
//!   ReadRequestHead ── head invalid / 408 ──────────────────────────► Drain ──► Closed      │
//!        │ head valid                                                  ▲  flushed, then     │
//!        ▼                                                             │  client FIN or     │
//!   Exchange: Connecting ─► AwaitingHead ─► RelayingBody ──────────────┤  linger timeout    │
//!                 ▲  │   │    ▲  │ 1xx     │ response done, ───────────┼────────────────────┘
//!       retry /   └──┘   │    └──┘ relayed │ client keeps alive        │ Connection: close,
//!       stale pooled     │                 │                           │ 4xx/5xx from us
//!       connection       │ valid 101 (UpgradeAccepted) and request body complete
//!                        ▼
//!                      Tunnel ── both directions ended, idle / send timeout ──► Closed
//! ```
//!
//! * **ReadRequestHead** — the client head is scanned (O(n), bounded) and validated. Nothing
//!   reaches the upstream before it validates; a refusal is a complete error response. Between
//!   requests of a kept-alive connection the keep-alive idle timeout applies; once a request
//!   starts, the header timeout (armed once).
//! * **Exchange / Connecting** — [`Event::Connect`] was emitted; the rewritten request head (and
//!   body bytes, up to the buffer size) wait in the upstream queue until the connection is up.
//!   [`Session::retry`] (driver failover) and a stale pooled connection come back here.
//! * **Exchange / AwaitingHead** — the request (head, then body) is being sent and the response
//!   head awaited. 1xx interim responses are relayed and the wait goes on. Client bytes after the
//!   request are *held*: never sent upstream before a 101 (they are the next pipelined request
//!   or, after a 101, the first tunnel bytes).
//! * **Switching** — a 101 that passed [`accept_switch`](crate::upgrade::accept_switch) makes the
//!   switch in one step: the 101 head is queued to the client, followed by the upstream bytes that
//!   came with it; the held client bytes are queued to the upstream first. Then **Tunnel**.
//! * **Exchange / RelayingBody** — a final response is relayed with its framing regenerated. At
//!   its end the upstream connection is released ([`Event::ReleaseUpstream`], reusable only after a
//!   clean end) and the client connection goes back to ReadRequestHead or to Drain.
//! * **Tunnel** — bytes in order, unmodified, one bounded queue per direction, half-close
//!   propagated (or both closed on the first EOF, nginx-style).
//! * **Drain** — the last response is flushed, the client's write side shut down, and its input
//!   discarded until it closes or the linger timeout expires (nginx's lingering close).

mod ending;
mod exchange;
mod tunnel;

use std::collections::VecDeque;
use std::io::IoSlice;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::buffer::{Inbox, Outbox};
use crate::config::Config;
use crate::error::{Error, RequestError, UpstreamError};
use crate::head::request::RequestHead;
use crate::head::scan::{HeadLimits, HeadScanner, ScanError};
use crate::rewrite::ClientInfo;
use crate::timer::{Timer, TimerTable};
use crate::upstream::ConnectReason;
use exchange::Exchange;
use tunnel::Tunnel;

/// How long after its last read a session keeps its empty receive buffers for reuse.
const IDLE_BUFFER_GRACE: Duration = Duration::from_secs(1);

/// The first read window while a head is awaited (nginx's `client_header_buffer_size`): most heads
/// fit, so a session does not allocate (and zero) a maximal head buffer for them.
const INITIAL_HEAD_WINDOW: usize = 1024;

/// The first read window while bytes are relayed (bodies, the tunnel); see `Session::read_cap`.
const INITIAL_RELAY_WINDOW: usize = 2048;

/// How much to read while a head of at most `max` bytes is awaited and `held` bytes are
/// buffered: the window doubles with what is held, up to one byte past the limit (so that an
/// oversized head is detected).
fn head_window(max: usize, held: usize) -> usize {
    (max + 1)
        .saturating_sub(held)
        .min(INITIAL_HEAD_WINDOW.max(held))
}

/// One of the two peers of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The client that connected to the proxy.
    Client,
    /// The upstream server the proxy connected to.
    Upstream,
}

/// Something the driver must do, polled with [`Session::poll_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
#[non_exhaustive]
pub enum Event {
    /// Open a connection to the upstream, then call [`Session::handle_connected`] or
    /// [`Session::handle_connect_failed`].
    Connect,
    /// A 101 was accepted: from now on the session is a byte tunnel. Drivers typically set
    /// `TCP_NODELAY` on both sockets here.
    TunnelEstablished {
        /// The protocol switched to (e.g. `websocket`).
        protocol: Bytes,
        /// Client bytes held before the 101, queued to the upstream ahead of anything else.
        held_client_bytes: usize,
        /// Upstream bytes that arrived with the 101, queued to the client right after its head.
        early_upstream_bytes: usize,
    },
    /// Shut down the write half of this peer's connection (everything queued was written).
    Shutdown(Side),
    /// The session is done with the upstream connection: close it, or (if `reusable`) return
    /// it to the pool. This can arrive while the connection is still being established (the
    /// request failed meanwhile): abandon the attempt then.
    ReleaseUpstream {
        /// The connection ended cleanly between messages and may be reused.
        reusable: bool,
    },
    /// The session is over: close both connections. Nothing else will be asked.
    Close(Summary),
}

/// Byte counters of a session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Bytes read from the client.
    pub client_received: u64,
    /// Bytes written to the client.
    pub client_sent: u64,
    /// Bytes read from the upstream.
    pub upstream_received: u64,
    /// Bytes written to the upstream.
    pub upstream_sent: u64,
    /// Bytes relayed through the tunnel from the client to the upstream.
    pub tunnel_to_upstream: u64,
    /// Bytes relayed through the tunnel from the upstream to the client.
    pub tunnel_to_client: u64,
}

/// How a session ended, for logging.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The error that ended it, if any.
    pub error: Option<Error>,
    /// The status of the last response sent to the client (101 for a tunnel), if any.
    pub status: Option<u16>,
    /// Whether a tunnel was established.
    pub tunnelled: bool,
    /// The byte counters.
    pub counters: Counters,
}

impl std::fmt::Display for Summary {
    /// One log line: `status=101 tunnel=true error=- client_in=.. client_out=.. upstream_in=..
    /// upstream_out=..` (`-` for what is absent).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Some(status) => write!(f, "status={status}")?,
            None => f.write_str("status=-")?,
        }
        write!(f, " tunnel={}", self.tunnelled)?;
        match &self.error {
            Some(error) => write!(f, " error=\"{error}\"")?,
            None => f.write_str(" error=-")?,
        }
        let c = &self.counters;
        write!(
            f,
            " client_in={} client_out={} upstream_in={} upstream_out={}",
            c.client_received, c.client_sent, c.upstream_received, c.upstream_sent
        )
    }
}

/// The phase of a session. See the module documentation for the diagram.
#[derive(Debug)]
enum Phase {
    /// Scanning and validating the client's request head.
    ReadRequestHead(HeadScanner),
    /// A request is being proxied.
    Exchange(Box<Exchange>),
    /// A 101 was accepted: a byte tunnel.
    Tunnel(Tunnel),
    /// The last response is being flushed, then the client's input discarded until it closes.
    Drain {
        /// The client's write side was shut down and its input is being discarded.
        lingering: bool,
    },
    /// Nothing more will happen.
    Closed,
}

/// One proxied client connection. See the [module documentation](self).
#[derive(Debug)]
pub struct Session {
    config: Arc<Config>,
    client: ClientInfo,
    phase: Phase,
    timers: TimerTable,
    from_client: Inbox,
    from_upstream: Inbox,
    to_client: Outbox,
    to_upstream: Outbox,
    events: VecDeque<Event>,
    /// The client sent EOF.
    client_eof: bool,
    /// The upstream sent EOF.
    upstream_eof: bool,
    /// [`Event::Connect`] was emitted and the connection not released yet.
    upstream_open: bool,
    /// The upstream connection is established.
    upstream_connected: bool,
    /// Status of the last response head queued to the client.
    status: Option<u16>,
    tunnelled: bool,
    counters: Counters,
    /// The error that ended the last exchange, reported with [`Event::Close`].
    failure: Option<Error>,
    /// The current upstream connection came from a pool (see `handle_connected_reused`).
    upstream_reused: bool,
    /// Stale pooled connections replaced for the current request.
    stale_retries: u32,
    /// Requests completed on this client connection.
    requests: u32,
    /// Why the last [`Event::Connect`] was emitted.
    connect_reason: ConnectReason,
    /// Largest read offered per peer (client, upstream) while relaying: starts small and
    /// doubles with every read that fills it, up to the buffer size, so that small messages
    /// never make a session allocate full-size buffers while bulk transfers quickly get them.
    read_cap: [usize; 2],
}

impl Session {
    /// A session for a client connection accepted at `now`.
    pub fn new(config: Arc<Config>, client: ClientInfo, now: Instant) -> Self {
        let mut timers = TimerTable::default();
        timers.set(Timer::ClientHeader, now + config.timeouts.client_header);
        Self {
            config,
            client,
            phase: Phase::ReadRequestHead(HeadScanner::default()),
            timers,
            from_client: Inbox::default(),
            from_upstream: Inbox::default(),
            to_client: Outbox::default(),
            to_upstream: Outbox::default(),
            events: VecDeque::new(),
            client_eof: false,
            upstream_eof: false,
            upstream_open: false,
            upstream_connected: false,
            status: None,
            tunnelled: false,
            counters: Counters::default(),
            failure: None,
            upstream_reused: false,
            stale_retries: 0,
            requests: 0,
            connect_reason: ConnectReason::NewRequest,
            read_cap: [INITIAL_RELAY_WINDOW; 2],
        }
    }

    // ----- getters -----

    /// The byte counters so far.
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Bytes of buffer memory the session holds now (receive buffers' capacity plus queued
    /// output). An idle tunnel holds none once [`Timer::IdleBuffers`] fired.
    pub fn buffer_memory(&self) -> usize {
        self.from_client.capacity()
            + self.from_upstream.capacity()
            + self.to_client.len()
            + self.to_upstream.len()
    }

    /// Why the last [`Event::Connect`] was emitted; drivers pass it to
    /// [`Failover::server_for`](crate::Failover::server_for) to pick the server.
    pub fn connect_reason(&self) -> ConnectReason {
        self.connect_reason
    }

    /// Whether the session is over.
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// Whether the session is a tunnel.
    pub fn is_tunnel(&self) -> bool {
        matches!(self.phase, Phase::Tunnel(_))
    }

    /// The name of the current phase, for logs and tests.
    pub fn phase_name(&self) -> &'static str {
        match &self.phase {
            Phase::ReadRequestHead(_) => "read-request-head",
            Phase::Exchange(x) => x.stage_name(),
            Phase::Tunnel(_) => "tunnel",
            Phase::Drain { .. } => "drain",
            Phase::Closed => "closed",
        }
    }

    /// How many bytes the session accepts from `side` now. Zero: do not read that peer (its
    /// EOF was seen, it is not connected yet, or the buffer for that direction is full).
    pub fn read_window(&self, side: Side) -> usize {
        let size = self.config.limits.buffer_size;
        match side {
            Side::Client if self.client_eof => 0,
            Side::Client => match &self.phase {
                Phase::ReadRequestHead(_) => head_window(
                    self.config.limits.max_head_bytes.max(size),
                    self.from_client.len(),
                ),
                Phase::Exchange(_) | Phase::Tunnel(_) => size
                    .saturating_sub(self.from_client.len() + self.to_upstream.len())
                    .min(self.read_cap[0]),
                Phase::Drain { .. } => size,
                Phase::Closed => 0,
            },
            Side::Upstream if self.upstream_eof || !self.upstream_connected => 0,
            Side::Upstream => match &self.phase {
                // Relayed 1xx heads wait in the client queue: stop reading once it is full.
                Phase::Exchange(x) if x.awaiting_head() && self.to_client.len() >= size => 0,
                Phase::Exchange(x) if x.awaiting_head() => head_window(
                    self.config.limits.max_response_head_bytes.max(size),
                    self.from_upstream.len(),
                ),
                Phase::Exchange(_) | Phase::Tunnel(_) => size
                    .saturating_sub(self.from_upstream.len() + self.to_client.len())
                    .min(self.read_cap[1]),
                Phase::ReadRequestHead(_) | Phase::Drain { .. } | Phase::Closed => 0,
            },
        }
    }

    // ----- inputs -----

    /// A buffer of [`read_window`](Self::read_window) bytes to read `side`'s bytes into; report
    /// how many were read with [`handle_read`](Self::handle_read). This is the zero-copy path:
    /// the bytes are never copied again in user space.
    pub fn read_buf(&mut self, side: Side) -> &mut [u8] {
        let window = self.read_window(side);
        self.inbox(side).spare(window)
    }

    /// `n` bytes were read from `side` into the buffer given by [`read_buf`](Self::read_buf).
    /// `n == 0` is **not** EOF: report EOF with [`handle_eof`](Self::handle_eof).
    ///
    /// A short read (fewer bytes than lent, `0` included) means the peer has paused: once its
    /// bytes are processed, the receive buffer is freed if nothing of it waits (the bytes
    /// queued for the other peer keep their part of it alive until written). Memory then
    /// follows the traffic: an idle tunnel holds no buffer, and buffers go back to the
    /// allocator in the order they were taken, so a burst of new connections does not leave
    /// freed buffers scattered between long-lived ones (which the allocator cannot return).
    pub fn handle_read(&mut self, side: Side, n: usize, now: Instant) {
        let paused = self.inbox(side).is_short_read(n);
        let n = self.inbox(side).commit(n);
        self.received(side, n, now);
        if paused {
            self.inbox(side).release_if_empty();
        }
    }

    /// Bytes were read from `side` (a copying alternative to [`read_buf`](Self::read_buf));
    /// returns how many were taken, at most [`read_window`](Self::read_window).
    pub fn handle_data(&mut self, side: Side, data: &[u8], now: Instant) -> usize {
        let n = data.len().min(self.read_window(side));
        self.inbox(side).extend(&data[..n]);
        self.received(side, n, now);
        n
    }

    /// `side` closed its write half (a read returned 0).
    pub fn handle_eof(&mut self, side: Side, now: Instant) {
        match side {
            Side::Client => self.client_eof = true,
            Side::Upstream => self.upstream_eof = true,
        }
        self.process(now);
    }

    /// A read or write on `side` failed (reset, broken pipe...). The session closes.
    pub fn handle_error(&mut self, side: Side, now: Instant) {
        let error = match side {
            Side::Client => None,
            Side::Upstream => Some(Error::Upstream(UpstreamError::Io)),
        };
        match (side, &self.phase) {
            // An upstream failure before any response byte was sent still gets a 502 (or, on a
            // stale pooled connection, a new connection).
            (Side::Upstream, Phase::Exchange(x)) if !x.response_started() => {
                self.upstream_failed_early(Error::Upstream(UpstreamError::Io), now);
            }
            _ => self.close(error),
        }
    }

    /// A new upstream connection asked for by [`Event::Connect`] is established.
    pub fn handle_connected(&mut self, now: Instant) {
        self.connected(false, now);
    }

    /// The driver answered [`Event::Connect`] with an idle connection from its pool. If that
    /// connection turns out to be closed before it answers, the session asks for another one
    /// by itself when that is safe (see [`can_retry`](Self::can_retry)).
    pub fn handle_connected_reused(&mut self, now: Instant) {
        self.connected(true, now);
    }

    fn connected(&mut self, reused: bool, now: Instant) {
        if !self.upstream_open || self.upstream_connected {
            return;
        }
        self.upstream_connected = true;
        self.upstream_reused = reused;
        self.timers.stop(Timer::Connect);
        self.timers.set(
            Timer::UpstreamRead,
            now + self.config.timeouts.upstream_response,
        );
        self.arm_send_timer(Side::Upstream, now);
        self.process(now);
    }

    /// The upstream connection asked for by [`Event::Connect`] could not be established.
    pub fn handle_connect_failed(&mut self, now: Instant) {
        if !self.upstream_open || self.upstream_connected {
            return;
        }
        self.fail(Error::Upstream(UpstreamError::ConnectFailed), now);
    }

    /// `n` bytes of what [`transmit`](Self::transmit) offered for `side` were written.
    pub fn handle_written(&mut self, side: Side, n: usize, now: Instant) {
        let n = self.outbox(side).consume(n) as u64;
        match side {
            Side::Client => self.counters.client_sent += n,
            Side::Upstream => self.counters.upstream_sent += n,
        }
        if n > 0 {
            self.arm_send_timer(side, now);
            self.process(now);
        }
    }

    /// The driver is shutting down: the session ends now and returns its summary (the same one
    /// an [`Event::Close`] would carry; no event follows). Both connections are to be closed.
    pub fn handle_shutdown(&mut self) -> Summary {
        self.close(None);
        let mut summary = None;
        while let Some(event) = self.events.pop_front() {
            if let Event::Close(s) = event {
                summary = Some(s);
            }
        }
        summary.unwrap_or(Summary {
            error: None,
            status: self.status,
            tunnelled: self.tunnelled,
            counters: self.counters,
        })
    }

    /// Time passed: act on every deadline at or before `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.timers.take_expired(now) {
            self.expire(timer, now);
        }
        self.process(now);
    }

    /// Frees the buffers that hold no bytes and shrinks the read windows back to their first
    /// size. The session does this by itself one second after the last read
    /// ([`Timer::IdleBuffers`]), and frees an empty receive buffer after every short read (see
    /// [`handle_read`](Self::handle_read)); a driver may call it earlier, e.g. before parking a
    /// connection.
    pub fn release_idle_buffers(&mut self) {
        self.read_cap = [INITIAL_RELAY_WINDOW; 2];
        self.from_client.release_if_empty();
        self.from_upstream.release_if_empty();
        self.to_client.release_if_empty();
        self.to_upstream.release_if_empty();
    }

    // ----- outputs -----

    /// The next thing the driver must do, if any. Drain this after every input.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next bytes to write to `side`, if any. Report progress with
    /// [`handle_written`](Self::handle_written).
    pub fn transmit(&self, side: Side) -> Option<&[u8]> {
        if side == Side::Upstream && !self.upstream_connected {
            return None;
        }
        self.outbox_ref(side).front()
    }

    /// Like [`transmit`](Self::transmit), for vectored writes: fills `slices` with the queued
    /// chunks in order and returns how many were filled.
    pub fn transmit_vectored<'a>(&'a self, side: Side, slices: &mut [IoSlice<'a>]) -> usize {
        if side == Side::Upstream && !self.upstream_connected {
            return 0;
        }
        self.outbox_ref(side).gather(slices)
    }

    /// Bytes queued for `side`.
    pub fn pending(&self, side: Side) -> usize {
        self.outbox_ref(side).len()
    }

    /// The earliest deadline; call [`handle_timeout`](Self::handle_timeout) when it is reached.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next().map(|(_, at)| at)
    }

    /// The earliest deadline and which timer it belongs to (for logs and tests).
    pub fn next_timer(&self) -> Option<(Timer, Instant)> {
        self.timers.next()
    }

    // ----- internals -----

    fn inbox(&mut self, side: Side) -> &mut Inbox {
        match side {
            Side::Client => &mut self.from_client,
            Side::Upstream => &mut self.from_upstream,
        }
    }

    fn outbox(&mut self, side: Side) -> &mut Outbox {
        match side {
            Side::Client => &mut self.to_client,
            Side::Upstream => &mut self.to_upstream,
        }
    }

    fn outbox_ref(&self, side: Side) -> &Outbox {
        match side {
            Side::Client => &self.to_client,
            Side::Upstream => &self.to_upstream,
        }
    }

    fn received(&mut self, side: Side, n: usize, now: Instant) {
        if n == 0 {
            // A read that found nothing (a spurious wake-up) may have made `read_buf` allocate:
            // make sure the idle release will come.
            if !self.timers.is_set(Timer::IdleBuffers) && !self.is_closed() {
                self.timers.set(Timer::IdleBuffers, now + IDLE_BUFFER_GRACE);
            }
            return;
        }
        match side {
            Side::Client => self.counters.client_received += n as u64,
            Side::Upstream => self.counters.upstream_received += n as u64,
        }
        self.timers.set(Timer::IdleBuffers, now + IDLE_BUFFER_GRACE);
        let cap = &mut self.read_cap[side as usize];
        if n >= *cap {
            *cap = (*cap * 2).min(self.config.limits.buffer_size.max(INITIAL_RELAY_WINDOW));
        }
        match &self.phase {
            Phase::Tunnel(t) => {
                self.timers
                    .set(Timer::TunnelIdle, now + self.config.timeouts.tunnel_idle);
                if t.half_closed() {
                    self.timers
                        .set(Timer::HalfClosed, now + self.config.timeouts.half_closed);
                }
            }
            Phase::ReadRequestHead(_) if self.timers.is_set(Timer::KeepAliveIdle) => {
                // The next request began: its head has the header timeout, armed once.
                self.timers.stop(Timer::KeepAliveIdle);
                self.timers.set(
                    Timer::ClientHeader,
                    now + self.config.timeouts.client_header,
                );
            }
            Phase::Exchange(_) if side == Side::Upstream => {
                self.timers.set(
                    Timer::UpstreamRead,
                    now + self.config.timeouts.upstream_response,
                );
            }
            Phase::Exchange(_) if self.timers.is_set(Timer::ClientBody) => {
                self.timers
                    .set(Timer::ClientBody, now + self.config.timeouts.client_body);
            }
            _ => {}
        }
        self.process(now);
    }

    /// (Re-)arms the send-stall timer of `side` if bytes wait for it, disarms it otherwise.
    fn arm_send_timer(&mut self, side: Side, now: Instant) {
        let timer = match side {
            Side::Client => Timer::ClientSend,
            Side::Upstream => Timer::UpstreamSend,
        };
        let waiting = match side {
            Side::Client => !self.to_client.is_empty(),
            Side::Upstream => self.upstream_connected && !self.to_upstream.is_empty(),
        };
        if waiting {
            self.timers
                .set(timer, now + self.config.timeouts.send_stall);
        } else {
            self.timers.stop(timer);
        }
    }

    /// Arms the send-stall timers that became due because bytes were queued.
    fn arm_new_send_timers(&mut self, now: Instant) {
        if !self.to_client.is_empty() && !self.timers.is_set(Timer::ClientSend) {
            self.arm_send_timer(Side::Client, now);
        }
        if self.upstream_connected
            && !self.to_upstream.is_empty()
            && !self.timers.is_set(Timer::UpstreamSend)
        {
            self.arm_send_timer(Side::Upstream, now);
        }
    }

    /// Runs the state machine until it makes no more progress.
    fn process(&mut self, now: Instant) {
        // Each step either changes the phase or returns false; bounded to be safe against
        // livelocks (a bug, not an input, could cause one).
        for _ in 0..64 {
            let progressed = match &self.phase {
                Phase::ReadRequestHead(_) => self.step_read_request_head(now),
                Phase::Exchange(_) => self.step_exchange(now),
                Phase::Tunnel(_) => self.step_tunnel(now),
                Phase::Drain { .. } => self.step_drain(now),
                Phase::Closed => false,
            };
            if !progressed {
                break;
            }
        }
        self.arm_new_send_timers(now);
    }

    fn step_read_request_head(&mut self, now: Instant) -> bool {
        if !matches!(self.phase, Phase::ReadRequestHead(_)) {
            return false;
        }
        if let Some(request) = self.take_plain_request_head() {
            self.timers.stop(Timer::ClientHeader);
            self.timers.stop(Timer::KeepAliveIdle);
            self.start_exchange(request, now);
            return true;
        }
        let Phase::ReadRequestHead(scanner) = &mut self.phase else {
            return false;
        };
        let limits = &self.config.limits;
        let head_limits = HeadLimits {
            max_first_line: limits.max_request_line,
            max_bytes: limits.max_head_bytes,
            max_fields: limits.max_headers,
        };
        match scanner.scan(self.from_client.data(), &head_limits) {
            Ok(Some(span)) => {
                let mut head = self.from_client.take(span.end);
                let head = head.split_off(span.start);
                self.timers.stop(Timer::ClientHeader);
                self.timers.stop(Timer::KeepAliveIdle);
                match crate::head::request::parse_request_head(head, &self.config) {
                    Ok(request) => self.start_exchange(request, now),
                    Err(e) => self.fail(Error::Request(e), now),
                }
                true
            }
            Ok(None) if self.client_eof => {
                // The client left before completing a head: nothing to answer, but what is still
                // queued for it (the previous response) is delivered first.
                self.enter_drain(now);
                true
            }
            Ok(None) => false,
            Err(e) => {
                let e = match e {
                    ScanError::FirstLineTooLong => RequestError::RequestLineTooLong,
                    ScanError::TooLarge => RequestError::HeadTooLarge,
                    ScanError::TooManyFields => RequestError::TooManyHeaders,
                };
                self.fail(Error::Request(e), now);
                true
            }
        }
    }

    /// The usual case, taken without the scanner: everything received is one whole, plain,
    /// valid head (it ends with CRLF CRLF, does not start with an empty line, fits
    /// `max_head_bytes`, and `parse_plain_request_head` accepts it). Such a head ends at its
    /// first blank line, and holds no line or field over the limits, so the scanner would have
    /// found exactly this span. Anything else is put back (`None`) for the scanner and the
    /// full parser, so every limit and error stays theirs.
    fn take_plain_request_head(&mut self) -> Option<RequestHead> {
        let config = &self.config;
        self.from_client
            .take_whole_head(config.limits.max_head_bytes, |head| {
                crate::head::request::parse_plain_request_head(head, config)
            })
    }
}
