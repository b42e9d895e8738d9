//! A minimal deterministic driver for a [`Session`]: what an adapter does, minus the sockets.
//!
//! It follows the core's rule (after any input, drain `poll_event`, write what `transmit` offers,
//! read at most `read_window`) with peers that accept every write at once and a clock that never
//! moves, so a bench measures the core and nothing else: no syscalls, no allocation of its own
//! on the hot path, and a `now` read once. Like a real driver it keeps a one-connection upstream
//! pool: an upstream released as reusable answers the next `Connect`
//! ([`Session::handle_connected_reused`]). "Writing" is reporting the whole offered slice as
//! written; a driver in [`capture`](Driver::capture) mode also keeps a copy, for the tests that
//! check each bench scenario does what its name says.

use std::sync::Arc;
use std::time::Instant;

use switchyard_proto::{ClientInfo, Config, Event, Session, Side, Summary};

/// How received bytes are handed to the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadPath {
    /// [`Session::read_buf`] + [`Session::handle_read`]: the zero-copy path real drivers use.
    ZeroCopy,
    /// [`Session::handle_data`]: the session copies from the caller's buffer.
    Copying,
}

/// A session with two simulated peers that accept every write.
#[derive(Debug)]
pub struct Driver {
    /// The session being driven.
    pub session: Session,
    /// The one instant every input is stamped with.
    pub now: Instant,
    /// How reads are handed over.
    pub read_path: ReadPath,
    /// Copy everything written to the peers into `to_client` / `to_upstream`.
    pub capture: bool,
    /// Bytes written to the client (in capture mode).
    pub to_client: Vec<u8>,
    /// Bytes written to the upstream (in capture mode).
    pub to_upstream: Vec<u8>,
    /// Bytes written to the client and to the upstream, counted in every mode.
    pub written: [u64; 2],
    /// [`Event::TunnelEstablished`] was seen.
    pub tunnelled: bool,
    /// The [`Event::Close`] summary, once seen.
    pub closed: Option<Summary>,
    /// An upstream connection was released as reusable and not handed out again yet.
    pub pooled_upstream: bool,
    /// `Connect` answered with a new connection / with the pooled one.
    pub connects: [u32; 2],
}

/// The address the simulated client connects from.
pub fn client_info() -> ClientInfo {
    ClientInfo {
        addr: Some(std::net::SocketAddr::from(([192, 0, 2, 7], 50_000))),
        secure: false,
    }
}

fn index(side: Side) -> usize {
    match side {
        Side::Client => 0,
        Side::Upstream => 1,
    }
}

impl Driver {
    /// A fresh session under `config`, accepted at `now`, fed through the zero-copy path.
    pub fn new(config: &Arc<Config>, now: Instant) -> Self {
        Self {
            session: Session::new(Arc::clone(config), client_info(), now),
            now,
            read_path: ReadPath::ZeroCopy,
            capture: false,
            to_client: Vec::new(),
            to_upstream: Vec::new(),
            written: [0; 2],
            tunnelled: false,
            closed: None,
            pooled_upstream: false,
            connects: [0; 2],
        }
    }

    /// The same driver, copying what it writes (for tests).
    pub fn capture(mut self) -> Self {
        self.capture = true;
        self
    }

    /// The same driver, handing reads over through `path`.
    pub fn read_path(mut self, path: ReadPath) -> Self {
        self.read_path = path;
        self
    }

    /// `side` sends `bytes`: they are read in as many pieces as the read window allows, with
    /// the session drained after each piece. Returns how many bytes the session took (fewer
    /// only if it stopped reading, e.g. because it closed).
    pub fn feed(&mut self, side: Side, bytes: &[u8]) -> usize {
        let mut taken = 0;
        while taken < bytes.len() {
            let rest = &bytes[taken..];
            let n = match self.read_path {
                ReadPath::ZeroCopy => {
                    if self.session.read_window(side) == 0 {
                        break;
                    }
                    let buf = self.session.read_buf(side);
                    let n = buf.len().min(rest.len());
                    buf[..n].copy_from_slice(&rest[..n]);
                    self.session.handle_read(side, n, self.now);
                    n
                }
                ReadPath::Copying => self.session.handle_data(side, rest, self.now),
            };
            if n == 0 {
                break;
            }
            taken += n;
            self.pump();
        }
        taken
    }

    /// `side` closes its write half.
    pub fn eof(&mut self, side: Side) {
        self.session.handle_eof(side, self.now);
        self.pump();
    }

    /// Drains events and writes until nothing moves. `Connect` is answered with success at
    /// once, with the pooled upstream connection when there is one.
    pub fn pump(&mut self) {
        loop {
            let mut moved = false;
            while let Some(event) = self.session.poll_event() {
                moved = true;
                match event {
                    Event::Connect if self.pooled_upstream => {
                        self.pooled_upstream = false;
                        self.connects[1] += 1;
                        self.session.handle_connected_reused(self.now);
                    }
                    Event::Connect => {
                        self.connects[0] += 1;
                        self.session.handle_connected(self.now);
                    }
                    Event::ReleaseUpstream { reusable } => self.pooled_upstream = reusable,
                    Event::TunnelEstablished { .. } => self.tunnelled = true,
                    Event::Close(summary) => self.closed = Some(summary),
                    _ => {}
                }
            }
            for side in [Side::Client, Side::Upstream] {
                moved |= self.write(side) > 0;
            }
            if !moved {
                return;
            }
        }
    }

    /// Writes everything `side` is offered; returns how many bytes.
    pub fn write(&mut self, side: Side) -> usize {
        let mut total = 0;
        while let Some(bytes) = self.session.transmit(side) {
            let n = bytes.len();
            if n == 0 {
                break;
            }
            if self.capture {
                match side {
                    Side::Client => self.to_client.extend_from_slice(bytes),
                    Side::Upstream => self.to_upstream.extend_from_slice(bytes),
                }
            }
            self.session.handle_written(side, n, self.now);
            self.written[index(side)] += n as u64;
            total += n;
        }
        total
    }

    /// One read of `n` bytes from `from` in an established tunnel, then the write of what it
    /// queued for the other peer; returns the bytes written. The bytes are copied from `fill`
    /// when given (standing in for the kernel's copy in `read(2)`), else left as `read_buf`
    /// handed them out. Events are not polled: a tunnel in steady state emits none (the tests
    /// check that).
    pub fn relay(&mut self, from: Side, n: usize, fill: Option<&[u8]>) -> usize {
        let buf = self.session.read_buf(from);
        let n = n.min(buf.len());
        if let Some(fill) = fill {
            let m = n.min(fill.len());
            buf[..m].copy_from_slice(&fill[..m]);
        }
        self.session.handle_read(from, n, self.now);
        let to = match from {
            Side::Client => Side::Upstream,
            Side::Upstream => Side::Client,
        };
        self.write(to)
    }

    /// Relays full reads both ways until the session offers its largest read window (it starts
    /// small and doubles with every full read), so that a bench measures the steady state.
    /// Captured bytes are discarded.
    pub fn warm_up(&mut self) {
        for side in [Side::Client, Side::Upstream] {
            let mut last = 0;
            while self.session.read_window(side) > last {
                last = self.session.read_window(side);
                self.relay(side, last, None);
            }
        }
        self.to_client.clear();
        self.to_upstream.clear();
    }
}

/// A session driven through the upgrade handshake with [`fixtures`](crate::fixtures): the
/// Chrome request in, the upstream request out, the 101 in, the client's 101 out.
pub fn handshake(config: &Arc<Config>, now: Instant, path: ReadPath) -> Driver {
    let mut driver = Driver::new(config, now).read_path(path);
    driver.feed(Side::Client, crate::fixtures::CHROME_WS_REQUEST);
    driver.feed(Side::Upstream, crate::fixtures::WS_101);
    driver
}

/// One request on a kept-alive session: `request` in, `response` in. Returns the bytes written
/// to the client meanwhile (the response, as the proxy framed it).
pub fn request(driver: &mut Driver, request: &[u8], response: &[u8]) -> u64 {
    let before = driver.written[0];
    driver.feed(Side::Client, request);
    driver.feed(Side::Upstream, response);
    driver.written[0] - before
}

/// A whole one-request session: `request` in, `response` in, then the client's EOF (the client
/// leaves after one response), which closes the session.
pub fn exchange(config: &Arc<Config>, now: Instant, request: &[u8], response: &[u8]) -> Driver {
    let mut driver = Driver::new(config, now);
    driver.feed(Side::Client, request);
    driver.feed(Side::Upstream, response);
    driver.eof(Side::Client);
    driver
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::*;

    fn config() -> Arc<Config> {
        Arc::new(Config::default())
    }

    fn head_of(bytes: &[u8]) -> &[u8] {
        let end = bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a complete head");
        &bytes[..end + 4]
    }

    fn has_line(head: &[u8], line: &str) -> bool {
        head.split(|&b| b == b'\n').any(|l| {
            l.strip_suffix(b"\r")
                .unwrap_or(l)
                .eq_ignore_ascii_case(line.as_bytes())
        })
    }

    #[test]
    fn handshake_opens_a_tunnel_on_both_read_paths() {
        for path in [ReadPath::ZeroCopy, ReadPath::Copying] {
            let mut driver = Driver::new(&config(), Instant::now())
                .read_path(path)
                .capture();
            assert_eq!(
                driver.feed(Side::Client, CHROME_WS_REQUEST),
                CHROME_WS_REQUEST.len()
            );
            let upstream = head_of(&driver.to_upstream).to_vec();
            assert!(upstream.starts_with(b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"));
            assert!(has_line(&upstream, "upgrade: websocket"), "{path:?}");
            assert!(has_line(&upstream, "connection: upgrade"), "{path:?}");
            assert_eq!(driver.feed(Side::Upstream, WS_101), WS_101.len());
            assert!(driver.tunnelled, "{path:?}");
            assert!(driver.session.is_tunnel());
            assert!(driver.to_client.starts_with(b"HTTP/1.1 101 "));
            assert_eq!(driver.written[0], driver.to_client.len() as u64);
            assert_eq!(driver.written[1], driver.to_upstream.len() as u64);
        }
    }

    #[test]
    fn handshake_helper_matches_the_step_by_step_one() {
        let driver = handshake(&config(), Instant::now(), ReadPath::ZeroCopy);
        assert!(driver.tunnelled && driver.session.is_tunnel());
        assert!(driver.closed.is_none());
    }

    #[test]
    fn relay_moves_every_byte_in_order_both_ways_without_events() {
        let mut driver = handshake(&config(), Instant::now(), ReadPath::ZeroCopy).capture();
        driver.warm_up();
        let payload: Vec<u8> = (0..16 * 1024).map(|i| (i % 251) as u8).collect();
        for _ in 0..3 {
            assert_eq!(
                driver.relay(Side::Client, payload.len(), Some(&payload)),
                payload.len()
            );
            assert_eq!(
                driver.relay(Side::Upstream, payload.len(), Some(&payload)),
                payload.len()
            );
        }
        assert_eq!(driver.to_upstream, payload.repeat(3));
        assert_eq!(driver.to_client, payload.repeat(3));
        assert!(driver.session.poll_event().is_none());
        assert!(driver.session.is_tunnel());
    }

    #[test]
    fn get_is_answered_with_the_whole_body_then_closed() {
        let response = response_200(SMALL_BODY_LEN);
        let driver = exchange(&config(), Instant::now(), BROWSER_GET, &response);
        let summary = driver.closed.as_ref().expect("the session closed");
        assert_eq!(summary.status, Some(200));
        assert!(summary.error.is_none(), "{summary:?}");
        assert_eq!(summary.counters.client_received, BROWSER_GET.len() as u64);
        assert_eq!(summary.counters.upstream_received, response.len() as u64);

        let mut driver = Driver::new(&config(), Instant::now()).capture();
        driver.feed(Side::Client, BROWSER_GET);
        driver.feed(Side::Upstream, &response);
        let head = head_of(&driver.to_client).len();
        assert_eq!(driver.to_client.len() - head, SMALL_BODY_LEN);
    }

    #[test]
    fn keep_alive_serves_many_requests_on_one_session_and_reuses_the_upstream() {
        let mut config = Config::default();
        config.max_requests_per_connection = u32::MAX;
        let mut driver = Driver::new(&Arc::new(config), Instant::now()).capture();
        let response = response_200(SMALL_BODY_LEN);
        let post = chunked_post(4096, 1024);
        let first = request(&mut driver, BROWSER_GET, &response);
        assert!(first > SMALL_BODY_LEN as u64);
        for _ in 0..5 {
            assert_eq!(request(&mut driver, BROWSER_GET, &response), first);
            assert!(request(&mut driver, &post, &response_200(16)) > 16);
        }
        assert_eq!(driver.connects, [1, 10]);
        assert!(driver.closed.is_none() && !driver.session.is_closed());
        assert_eq!(
            driver
                .to_client
                .windows(9)
                .filter(|w| w == b"HTTP/1.1 ")
                .count(),
            11
        );
    }

    #[test]
    fn chunked_post_reaches_the_upstream_with_all_its_data() {
        let post = chunked_post(4096, 1024);
        let mut driver = Driver::new(&config(), Instant::now()).capture();
        assert_eq!(driver.feed(Side::Client, &post), post.len());
        let head = head_of(&driver.to_upstream).len();
        assert!(has_line(
            &driver.to_upstream[..head],
            "transfer-encoding: chunked"
        ));
        assert_eq!(&driver.to_upstream[head..], &chunked_body(4096, 1024)[..]);
        driver.feed(Side::Upstream, &response_200(2));
        driver.eof(Side::Client);
        let summary = driver.closed.as_ref().expect("the session closed");
        assert_eq!((summary.status, summary.error.clone()), (Some(200), None));
    }
}
