//! The `session` target: a `Session` driven by a decoded list of driver operations, with a
//! simulated client and simulated upstream connections (several, with a one-connection pool).
//!
//! The driver obeys the sans-IO contract (it reads at most `read_window`, writes only what
//! `transmit` offers, answers `Connect` once, stops using a released connection) and checks
//! after every operation what must hold at any time; [`super::streams`] checks at the end what
//! the peers received. Per-operation invariants:
//!
//! * `handle_data` takes at most `read_window`; `read_buf` is exactly `read_window` long;
//! * `pending(side)` stays within the bound derived in [`Bounds`];
//! * nothing is transmitted to a peer after `Shutdown` of it, nothing to an upstream that is
//!   not connected or was released; `Shutdown(side)` comes only with nothing pending for it;
//! * `Connect` only when no connection is held; `ReleaseUpstream` only when one is;
//!   `TunnelEstablished` and `Close` at most once; after `Close` no event, no byte, no window,
//!   no deadline;
//! * an open session always has a deadline (it cannot hang), and it is in the future;
//! * the counters equal what the driver counted; `retry()` returns what `can_retry()` said.

use std::io::IoSlice;
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchyard_proto::{ClientInfo, Config, Event, Session, Side, Summary};

use super::scenario::{decode, Op};
use super::streams;
use super::wire::show;
use super::{Checked, Violation};

/// Bounds on the queued output, derived from the session's code.
///
/// Reads are capped per phase (`read_window`): while a head is awaited, by
/// `max(max_*_head_bytes, buffer_size) + 1` bytes of buffered input (`head_cap` below); otherwise
/// by `buffer_size` minus what is buffered and queued in that direction. So a queue holds at most
/// what one head-phase read let in, converted (a rewritten head is at most about twice the
/// received one — CRLF for LF, `": "` for `":"` — plus the fields the proxy and the rules add,
/// bounded by the head again), plus one buffer of body or tunnel bytes, plus a small constant
/// (chunk framing, the proxy's own 100 / error responses). To the client the bound counts a
/// previous response still queued when a pipelined request starts. Interim responses are counted
/// once: each is bounded by the head cap, and the queue must not keep growing with them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    pub(crate) to_upstream: usize,
    pub(crate) to_client: usize,
}

impl Bounds {
    pub(crate) fn new(config: &Config) -> Self {
        let l = &config.limits;
        let request_cap = l.max_head_bytes.max(l.buffer_size) + 1;
        let response_cap = l.max_response_head_bytes.max(l.buffer_size) + 1;
        Self {
            to_upstream: 4 * request_cap + l.buffer_size + 1024,
            to_client: 3 * response_cap + 2 * l.buffer_size + 1024,
        }
    }
}

/// One upstream connection as the driver sees it.
#[derive(Debug, Default)]
pub(crate) struct Conn {
    /// Everything the proxy wrote to it.
    pub(crate) to: Vec<u8>,
    /// Everything the proxy read from it.
    pub(crate) from: Vec<u8>,
    /// Bytes the upstream sent that were not read yet.
    pending: Vec<u8>,
    /// EOF or error was reported on it: it sends nothing more.
    dead: bool,
}

/// One use of a connection: the answer to one `Connect`.
#[derive(Debug, Clone)]
pub(crate) struct Use {
    pub(crate) conn: usize,
    pub(crate) to_start: usize,
    pub(crate) from_start: usize,
    /// Released with `reusable: true`.
    pub(crate) reusable: bool,
    /// Released (or the session closed) already.
    pub(crate) released: bool,
    /// The index of the request (in the client's order) this use serves.
    pub(crate) exchange: usize,
}

/// What the driver noted when `TunnelEstablished` was polled.
#[derive(Debug, Clone)]
pub(crate) struct TunnelMark {
    pub(crate) use_index: usize,
    /// Bytes written on that connection before the switch.
    pub(crate) to_len: usize,
    /// Client bytes the session had taken at the switch.
    pub(crate) client_taken: usize,
    /// Upstream bytes the session had taken at the switch on that connection.
    pub(crate) from_len: usize,
    pub(crate) held: usize,
    pub(crate) early: usize,
}

/// The simulated world around one session.
pub(crate) struct Driver {
    pub(crate) session: Session,
    pub(crate) config: Arc<Config>,
    pub(crate) client: ClientInfo,
    pub(crate) bounds: Bounds,
    now: Instant,
    /// Bytes the client sent that the session did not take yet.
    client_pending: Vec<u8>,
    /// Every byte the session took from the client.
    pub(crate) client_taken: Vec<u8>,
    /// Every byte written to the client.
    pub(crate) client_got: Vec<u8>,
    /// The client sent EOF or failed: it sends nothing more.
    client_done: bool,
    /// A read or write on the client failed: nothing can be written to it.
    client_failed: bool,
    pub(crate) conns: Vec<Conn>,
    pub(crate) uses: Vec<Use>,
    /// A `Connect` is waiting for an answer.
    connecting: bool,
    /// The exchange the pending `Connect` is for.
    connect_exchange: usize,
    /// The current use is connected.
    connected: bool,
    /// An idle connection released as reusable.
    pool: Option<usize>,
    pub(crate) tunnel: Option<TunnelMark>,
    shut: [bool; 2],
    pub(crate) closed: bool,
}

fn index(side: Side) -> usize {
    match side {
        Side::Client => 0,
        Side::Upstream => 1,
    }
}

impl Driver {
    pub(crate) fn new(config: Config, client: ClientInfo) -> Self {
        let now = Instant::now();
        let bounds = Bounds::new(&config);
        let config = Arc::new(config);
        Self {
            session: Session::new(Arc::clone(&config), client.clone(), now),
            config,
            client,
            bounds,
            now,
            client_pending: Vec::new(),
            client_taken: Vec::new(),
            client_got: Vec::new(),
            client_done: false,
            client_failed: false,
            conns: Vec::new(),
            uses: Vec::new(),
            connecting: false,
            connect_exchange: 0,
            connected: false,
            pool: None,
            tunnel: None,
            shut: [false; 2],
            closed: false,
        }
    }

    fn current(&self) -> Option<usize> {
        self.uses.last().filter(|u| !u.released).map(|u| u.conn)
    }

    /// The connection the upstream side reads and writes now, if any.
    fn live_conn(&self) -> Option<usize> {
        self.current().filter(|_| self.connected)
    }

    /// Hands `side`'s pending bytes to the session with `handle_data`.
    fn deliver(&mut self, side: Side) -> Checked {
        let window = self.session.read_window(side);
        let pending = match side {
            Side::Client => std::mem::take(&mut self.client_pending),
            Side::Upstream => match self.live_conn() {
                Some(c) => std::mem::take(&mut self.conns[c].pending),
                None => return Ok(()),
            },
        };
        if pending.is_empty() {
            return Ok(());
        }
        let n = self.session.handle_data(side, &pending, self.now);
        ensure!(
            n <= window,
            "session.read-window",
            "handle_data took {n} > window {window}"
        );
        self.took(side, &pending[..n]);
        let rest = pending[n..].to_vec();
        match side {
            Side::Client => self.client_pending = rest,
            Side::Upstream => {
                if let Some(c) = self.live_conn() {
                    self.conns[c].pending = rest;
                }
            }
        }
        self.after_input()
    }

    fn took(&mut self, side: Side, bytes: &[u8]) {
        match side {
            Side::Client => self.client_taken.extend_from_slice(bytes),
            Side::Upstream => {
                if let Some(c) = self.live_conn() {
                    self.conns[c].from.extend_from_slice(bytes);
                }
            }
        }
    }

    /// The zero-copy read path: `read_buf` then `handle_read` of up to `max` pending bytes.
    fn read(&mut self, side: Side, max: usize) -> Checked {
        if side == Side::Upstream && self.live_conn().is_none() {
            return Ok(());
        }
        let window = self.session.read_window(side);
        let source = match side {
            Side::Client => self.client_pending.clone(),
            Side::Upstream => self
                .live_conn()
                .map(|c| self.conns[c].pending.clone())
                .unwrap_or_default(),
        };
        let buf = self.session.read_buf(side);
        ensure!(
            buf.len() == window,
            "session.read-window",
            "read_buf gave {} bytes for window {window}",
            buf.len()
        );
        let n = max.min(source.len()).min(buf.len());
        buf[..n].copy_from_slice(&source[..n]);
        self.session.handle_read(side, n, self.now);
        self.took(side, &source[..n]);
        match side {
            Side::Client => {
                self.client_pending.drain(..n);
            }
            Side::Upstream => {
                if let Some(c) = self.live_conn() {
                    self.conns[c].pending.drain(..n);
                }
            }
        }
        self.after_input()
    }

    /// Writes up to `max` bytes offered for `side`.
    fn write(&mut self, side: Side, max: usize, vectored: bool) -> Checked {
        let offered: Vec<u8> = if vectored {
            let mut slices = [IoSlice::new(&[]); 4];
            let n = self.session.transmit_vectored(side, &mut slices);
            let first = self.session.transmit(side).map(<[u8]>::to_vec);
            ensure!(
                first.as_deref() == slices[..n].first().map(|s| &s[..]),
                "session.transmit",
                "transmit_vectored's first slice differs from transmit"
            );
            slices[..n].iter().flat_map(|s| s.iter().copied()).collect()
        } else {
            match self.session.transmit(side) {
                Some(bytes) => bytes.to_vec(),
                None => return Ok(()),
            }
        };
        if offered.is_empty() {
            return Ok(());
        }
        ensure!(
            !self.shut[index(side)],
            "session.after-shutdown",
            "{side:?} was shut down, yet {} bytes are offered: {:?}",
            offered.len(),
            show(&offered)
        );
        ensure!(
            offered.len() <= self.session.pending(side),
            "session.transmit",
            "offers {} bytes with {} pending",
            offered.len(),
            self.session.pending(side)
        );
        let n = max.min(offered.len());
        match side {
            Side::Client => {
                ensure!(
                    !self.client_failed,
                    "session.transmit",
                    "offers bytes to a failed client"
                );
                self.client_got.extend_from_slice(&offered[..n]);
            }
            Side::Upstream => {
                let Some(c) = self.live_conn() else {
                    return Err(Violation::new(
                        "session.transmit",
                        format!(
                            "offers upstream bytes with no connected upstream: {:?}",
                            show(&offered)
                        ),
                    ));
                };
                self.conns[c].to.extend_from_slice(&offered[..n]);
            }
        }
        self.session.handle_written(side, n, self.now);
        self.after_input()
    }

    fn apply(&mut self, op: &Op) -> Checked {
        let now = self.now;
        match op {
            Op::ClientBytes(bytes) => {
                if !self.client_done {
                    self.client_pending.extend_from_slice(bytes);
                    self.deliver(Side::Client)?;
                }
            }
            Op::UpstreamBytes(bytes) => {
                if let Some(c) = self.live_conn().filter(|&c| !self.conns[c].dead) {
                    self.conns[c].pending.extend_from_slice(bytes);
                    self.deliver(Side::Upstream)?;
                }
            }
            Op::Read(side, max) => self.read(*side, usize::from(*max))?,
            Op::Eof(Side::Client) => {
                if !self.client_done {
                    self.client_done = true;
                    self.client_pending.clear();
                    self.session.handle_eof(Side::Client, now);
                    self.after_input()?;
                }
            }
            Op::Eof(Side::Upstream) | Op::Error(Side::Upstream) => {
                if let Some(c) = self.live_conn().filter(|&c| !self.conns[c].dead) {
                    self.conns[c].dead = true;
                    self.conns[c].pending.clear();
                    if matches!(op, Op::Eof(_)) {
                        self.session.handle_eof(Side::Upstream, now);
                    } else {
                        self.session.handle_error(Side::Upstream, now);
                    }
                    self.after_input()?;
                }
            }
            Op::Error(Side::Client) => {
                if !self.client_failed {
                    self.client_done = true;
                    self.client_failed = true;
                    self.client_pending.clear();
                    self.session.handle_error(Side::Client, now);
                    self.after_input()?;
                }
            }
            Op::Connected { reused } => {
                if self.connecting {
                    self.connecting = false;
                    self.connected = true;
                    let pooled = self.pool.take().filter(|_| *reused);
                    let conn = pooled.unwrap_or_else(|| {
                        self.conns.push(Conn::default());
                        self.conns.len() - 1
                    });
                    self.uses.push(Use {
                        conn,
                        to_start: self.conns[conn].to.len(),
                        from_start: self.conns[conn].from.len(),
                        reusable: false,
                        released: false,
                        exchange: self.connect_exchange,
                    });
                    if pooled.is_some() {
                        self.session.handle_connected_reused(now);
                    } else {
                        self.session.handle_connected(now);
                    }
                    self.after_input()?;
                }
            }
            Op::ConnectFailed => {
                if self.connecting {
                    self.session.handle_connect_failed(now);
                    self.after_input()?;
                    self.connecting = false;
                }
            }
            Op::Write(side, max) => self.write(*side, usize::from(*max), false)?,
            Op::WriteVectored(side, max) => self.write(*side, usize::from(*max), true)?,
            Op::Advance(ms) => {
                self.now += Duration::from_millis(u64::from(*ms));
                self.session.handle_timeout(self.now);
                self.after_input()?;
            }
            Op::AdvanceToDeadline => {
                if let Some(at) = self.session.poll_timeout() {
                    self.now = self.now.max(at);
                }
                self.session.handle_timeout(self.now);
                self.after_input()?;
            }
            Op::Retry => {
                let could = self.session.can_retry();
                let did = self.session.retry(now);
                ensure!(
                    could == did,
                    "session.retry",
                    "can_retry() {could} but retry() {did}"
                );
                self.after_input()?;
            }
            Op::ReleaseIdleBuffers => self.session.release_idle_buffers(),
            Op::Shutdown => self.shut_down()?,
        }
        self.check_state()
    }

    /// The driver shuts down: the session closes at once, with the summary a `Close` would
    /// carry, and no event follows (checked by `after_input` and `check_state`).
    fn shut_down(&mut self) -> Checked {
        let was_closed = self.closed;
        let summary = self.session.handle_shutdown();
        ensure!(
            self.session.is_closed(),
            "session.shutdown-closes",
            "open after handle_shutdown()"
        );
        if !was_closed {
            self.closed_with(&summary)?;
        }
        self.after_input()
    }

    /// The session ended (a `Close` event, or `handle_shutdown`) with `summary`.
    fn closed_with(&mut self, summary: &Summary) -> Checked {
        self.closed = true;
        if let Some(last) = self.uses.last_mut() {
            last.released = true;
        }
        self.connecting = false;
        self.connected = false;
        ensure!(
            summary.tunnelled == self.tunnel.is_some(),
            "session.summary",
            "tunnelled {} but TunnelEstablished seen: {}",
            summary.tunnelled,
            self.tunnel.is_some()
        );
        Ok(())
    }

    /// Drains and checks the events after an input.
    fn after_input(&mut self) -> Checked {
        while let Some(event) = self.session.poll_event() {
            if std::env::var_os("SWITCHYARD_FUZZ_TRACE").is_some() {
                eprintln!("   event {event:?}");
            }
            ensure!(!self.closed, "session.after-close", "{event:?} after Close");
            match event {
                Event::Connect => {
                    ensure!(
                        !self.connected,
                        "session.connect",
                        "Connect while a connection is held"
                    );
                    self.connecting = true;
                    self.connect_exchange = streams::finals_queued(self);
                }
                Event::ReleaseUpstream { reusable } => {
                    ensure!(
                        self.connecting || self.connected,
                        "session.release",
                        "ReleaseUpstream with no connection held"
                    );
                    if self.connected {
                        if let Some(last) = self.uses.last_mut() {
                            last.released = true;
                            last.reusable = reusable;
                            if reusable {
                                self.pool = Some(last.conn);
                            }
                        }
                    } else {
                        ensure!(
                            !reusable,
                            "session.release",
                            "a connection never established is reusable"
                        );
                    }
                    self.connecting = false;
                    self.connected = false;
                    self.shut[1] = false;
                }
                Event::TunnelEstablished {
                    held_client_bytes,
                    early_upstream_bytes,
                    ..
                } => {
                    ensure!(
                        self.tunnel.is_none(),
                        "session.tunnel-once",
                        "a second tunnel"
                    );
                    let Some(c) = self.live_conn() else {
                        return Err(Violation::new(
                            "session.tunnel-once",
                            "TunnelEstablished with no connected upstream".to_owned(),
                        ));
                    };
                    self.tunnel = Some(TunnelMark {
                        use_index: self.uses.len() - 1,
                        to_len: self.conns[c].to.len(),
                        client_taken: self.client_taken.len(),
                        from_len: self.conns[c].from.len(),
                        held: held_client_bytes,
                        early: early_upstream_bytes,
                    });
                }
                Event::Shutdown(side) => {
                    ensure!(
                        self.session.pending(side) == 0,
                        "session.shutdown-flushed",
                        "Shutdown({side:?}) with {} bytes pending",
                        self.session.pending(side)
                    );
                    ensure!(
                        !self.shut[index(side)],
                        "session.shutdown-once",
                        "Shutdown({side:?}) twice"
                    );
                    self.shut[index(side)] = true;
                }
                Event::Close(summary) => self.closed_with(&summary)?,
                _ => {}
            }
        }
        Ok(())
    }

    /// What must hold between any two operations.
    fn check_state(&self) -> Checked {
        let s = &self.session;
        ensure!(
            s.is_closed() == self.closed,
            "session.after-close",
            "is_closed() {} but Close seen {}",
            s.is_closed(),
            self.closed
        );
        if self.closed {
            ensure!(
                s.transmit(Side::Client).is_none()
                    && s.transmit(Side::Upstream).is_none()
                    && s.read_window(Side::Client) == 0
                    && s.read_window(Side::Upstream) == 0
                    && s.poll_timeout().is_none(),
                "session.after-close",
                "a closed session still offers bytes, a window or a deadline"
            );
            return Ok(());
        }
        match s.poll_timeout() {
            None => {
                return Err(Violation::new(
                    "session.deadline",
                    format!(
                        "open session in phase {} with no deadline: it can hang",
                        s.phase_name()
                    ),
                ))
            }
            Some(at) => ensure!(
                at > self.now,
                "session.deadline",
                "deadline {:?} is not after now ({:?})",
                s.next_timer(),
                self.now
            ),
        }
        if self.live_conn().is_none() {
            ensure!(
                s.transmit(Side::Upstream).is_none() && s.read_window(Side::Upstream) == 0,
                "session.transmit",
                "upstream bytes or window with no connected upstream"
            );
        }
        for (side, bound) in [
            (Side::Client, self.bounds.to_client),
            (Side::Upstream, self.bounds.to_upstream),
        ] {
            ensure!(
                s.pending(side) <= bound,
                "session.pending-bound",
                "pending({side:?}) = {} > bound {bound} (buffer {}, phase {})",
                s.pending(side),
                self.config.limits.buffer_size,
                s.phase_name()
            );
        }
        let c = s.counters();
        let from: usize = self.conns.iter().map(|c| c.from.len()).sum();
        let to: usize = self.conns.iter().map(|c| c.to.len()).sum();
        ensure!(
            c.client_received == self.client_taken.len() as u64
                && c.client_sent == self.client_got.len() as u64
                && c.upstream_received == from as u64
                && c.upstream_sent == to as u64,
            "session.counters",
            "{c:?} vs client taken {} got {}, upstream taken {from} got {to}",
            self.client_taken.len(),
            self.client_got.len()
        );
        Ok(())
    }

    /// A cooperative ending: both peers read everything offered, with no new input.
    fn settle(&mut self) -> Checked {
        for _ in 0..100_000 {
            let mut moved = false;
            for side in [Side::Client, Side::Upstream] {
                let blocked = match side {
                    Side::Client => self.client_failed,
                    Side::Upstream => self.live_conn().is_none(),
                };
                if !blocked && !self.shut[index(side)] && self.session.transmit(side).is_some() {
                    self.write(side, usize::MAX, false)?;
                    moved = true;
                }
            }
            self.check_state()?;
            if !moved {
                break;
            }
        }
        Ok(())
    }
}

/// The `session` fuzz target.
pub(crate) fn run(data: &[u8]) -> Checked {
    let scenario = decode(data);
    let trace = std::env::var_os("SWITCHYARD_FUZZ_TRACE").is_some();
    if trace {
        eprintln!(
            "{:?}\n{:?}",
            scenario.config.limits, scenario.config.timeouts
        );
    }
    let mut driver = Driver::new(scenario.config, scenario.client);
    driver.check_state()?;
    for op in &scenario.ops {
        if trace {
            eprintln!("op {op:?}");
        }
        driver.apply(op)?;
        if trace {
            eprintln!(
                "   phase {} pending c{}/u{} windows c{}/u{}",
                driver.session.phase_name(),
                driver.session.pending(Side::Client),
                driver.session.pending(Side::Upstream),
                driver.session.read_window(Side::Client),
                driver.session.read_window(Side::Upstream)
            );
        }
    }
    driver.settle()?;
    if trace {
        eprintln!("client got {:?}", show(&driver.client_got));
        for (i, c) in driver.conns.iter().enumerate() {
            eprintln!(
                "connection {i} got {:?}\n   sent {:?}",
                show(&c.to),
                show(&c.from)
            );
        }
    }
    streams::check(&driver)
}
