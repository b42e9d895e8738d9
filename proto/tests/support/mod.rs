//! A deterministic driver for sessions: a virtual clock, two simulated peers and knobs for how
//! bytes are split, so scenario tests read as stories and hangs become failures.

#![allow(dead_code, unreachable_pub)]

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchyard_proto::{ClientInfo, Config, Event, Session, Side, Summary};

/// A session between a simulated client and upstream.
pub struct Harness {
    pub session: Session,
    pub now: Instant,
    /// Bytes the client has sent that the session has not taken yet.
    client_pending: VecDeque<u8>,
    upstream_pending: VecDeque<u8>,
    client_eof_pending: bool,
    upstream_eof_pending: bool,
    /// Everything written to the client / upstream so far.
    pub client_received: Vec<u8>,
    pub upstream_received: Vec<u8>,
    /// Every event, in order.
    pub events: Vec<Event>,
    /// Answer `Connect` with success at once.
    pub auto_connect: bool,
    /// Largest read handed to the session at once.
    pub read_chunk: usize,
    /// Largest write accepted by each peer at once (None: unlimited).
    pub write_chunk: Option<usize>,
    /// Peers stop accepting writes (slow readers).
    pub client_stalled: bool,
    pub upstream_stalled: bool,
    pub connects: usize,
}

impl Harness {
    pub fn new(config: Config) -> Self {
        let now = Instant::now();
        let client = ClientInfo {
            addr: Some("192.0.2.7:50000".parse().unwrap()),
            secure: false,
        };
        Self {
            session: Session::new(Arc::new(config), client, now),
            now,
            client_pending: VecDeque::new(),
            upstream_pending: VecDeque::new(),
            client_eof_pending: false,
            upstream_eof_pending: false,
            client_received: Vec::new(),
            upstream_received: Vec::new(),
            events: Vec::new(),
            auto_connect: true,
            read_chunk: usize::MAX,
            write_chunk: None,
            client_stalled: false,
            upstream_stalled: false,
            connects: 0,
        }
    }

    pub fn default_config() -> Self {
        Self::new(Config::default())
    }

    /// The client sends `bytes`.
    pub fn client_sends(&mut self, bytes: &[u8]) -> &mut Self {
        self.client_pending.extend(bytes);
        self.pump();
        self
    }

    /// The upstream sends `bytes`.
    pub fn upstream_sends(&mut self, bytes: &[u8]) -> &mut Self {
        self.upstream_pending.extend(bytes);
        self.pump();
        self
    }

    /// The client closes its write half (after its pending bytes).
    pub fn client_fin(&mut self) -> &mut Self {
        self.client_eof_pending = true;
        self.pump();
        self
    }

    /// The upstream closes its write half (after its pending bytes).
    pub fn upstream_fin(&mut self) -> &mut Self {
        self.upstream_eof_pending = true;
        self.pump();
        self
    }

    /// Moves the clock and lets deadlines fire.
    pub fn advance(&mut self, by: Duration) -> &mut Self {
        self.now += by;
        self.session.handle_timeout(self.now);
        self.pump();
        self
    }

    /// Takes what the client received so far.
    pub fn take_client(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.client_received)
    }

    /// Takes what the upstream received so far.
    pub fn take_upstream(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.upstream_received)
    }

    pub fn closed(&self) -> Option<&Summary> {
        self.events.iter().find_map(|e| match e {
            Event::Close(s) => Some(s),
            _ => None,
        })
    }

    pub fn shutdowns(&self) -> Vec<Side> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Shutdown(s) => Some(*s),
                _ => None,
            })
            .collect()
    }

    pub fn tunnel_established(&self) -> bool {
        self.events
            .iter()
            .any(|e| matches!(e, Event::TunnelEstablished { .. }))
    }

    /// Runs until nothing moves; panics on a livelock.
    pub fn pump(&mut self) {
        for _ in 0..100_000 {
            if !self.step() {
                return;
            }
        }
        panic!("session never went idle");
    }

    fn step(&mut self) -> bool {
        let mut moved = false;
        while let Some(event) = self.session.poll_event() {
            if event == Event::Connect {
                self.connects += 1;
                if self.auto_connect {
                    self.session.handle_connected(self.now);
                }
            }
            self.events.push(event);
            moved = true;
        }
        if self.session.is_closed() {
            return moved;
        }
        for side in [Side::Client, Side::Upstream] {
            let stalled = match side {
                Side::Client => self.client_stalled,
                Side::Upstream => self.upstream_stalled,
            };
            if stalled {
                continue;
            }
            if let Some(bytes) = self.session.transmit(side) {
                let n = self.write_chunk.map_or(bytes.len(), |c| c.min(bytes.len()));
                let sink = match side {
                    Side::Client => &mut self.client_received,
                    Side::Upstream => &mut self.upstream_received,
                };
                sink.extend_from_slice(&bytes[..n]);
                self.session.handle_written(side, n, self.now);
                moved = true;
            }
        }
        for side in [Side::Client, Side::Upstream] {
            let window = self.session.read_window(side);
            let pending = match side {
                Side::Client => &mut self.client_pending,
                Side::Upstream => &mut self.upstream_pending,
            };
            if !pending.is_empty() && window > 0 {
                let n = window.min(self.read_chunk).min(pending.len());
                let chunk: Vec<u8> = pending.drain(..n).collect();
                let buf = self.session.read_buf(side);
                buf[..n].copy_from_slice(&chunk);
                self.session.handle_read(side, n, self.now);
                moved = true;
            } else if pending.is_empty() {
                let eof = match side {
                    Side::Client => &mut self.client_eof_pending,
                    Side::Upstream => &mut self.upstream_eof_pending,
                };
                if *eof && (window > 0 || !self.session.is_closed()) {
                    *eof = false;
                    self.session.handle_eof(side, self.now);
                    moved = true;
                }
            }
        }
        moved
    }
}

/// The bytes of a head (up to and including the blank line) and the rest.
pub fn split_head(bytes: &[u8]) -> (&[u8], &[u8]) {
    match bytes.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => bytes.split_at(i + 4),
        None => (bytes, &[]),
    }
}

/// The status code of the first response in `bytes`.
pub fn status_of(bytes: &[u8]) -> Option<u16> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    response.parse(bytes).ok()?;
    response.code
}

/// The fields of the first head in `bytes` (request or response), lower-cased names.
pub fn fields_of(bytes: &[u8]) -> Vec<(String, String)> {
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let is_response = bytes.starts_with(b"HTTP/");
    let parsed: Vec<(String, String)> = if is_response {
        let mut r = httparse::Response::new(&mut headers);
        assert!(r.parse(bytes).expect("response head parses").is_complete());
        r.headers
            .iter()
            .map(|h| {
                (
                    h.name.to_ascii_lowercase(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect()
    } else {
        let mut r = httparse::Request::new(&mut headers);
        assert!(r.parse(bytes).expect("request head parses").is_complete());
        r.headers
            .iter()
            .map(|h| {
                (
                    h.name.to_ascii_lowercase(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect()
    };
    parsed
}

/// The value of field `name` in the first head of `bytes`.
pub fn field(bytes: &[u8], name: &str) -> Option<String> {
    fields_of(bytes)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
}

pub const WS_REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\nOrigin: http://example.com\r\n\r\n";

pub const WS_101: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n";

/// Masked text frame "Hello" (RFC 6455 §5.7).
pub const MASKED_FRAME: &[u8] = b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";
