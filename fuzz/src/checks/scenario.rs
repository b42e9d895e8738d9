//! The `session` target's input: a configuration and a list of driver operations, decoded
//! from the fuzzer's bytes (the encoding `fuzz/make-seeds` writes).
//!
//! Raw bytes rarely make a valid request or response, so besides raw bytes an operation can send
//! one of the canned messages below (the handshakes and framings of the test vectors), repeated:
//! the fuzzer then spends its time on orderings, splits, limits and timing.

use std::time::Duration;

use switchyard_proto::{ClientInfo, Config, HalfClose, Side};

use super::input::Source;
use super::request::{busy_config, client_info};

/// Requests the client can send in one operation (the seeds of most interesting paths).
pub(crate) const CANNED_REQUESTS: &[&[u8]] = &[
    b"GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58",
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"POST /p HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
    b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
    b"POST /api HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 3\r\n\r\nurl",
    b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: foo/1, websocket\r\n\r\n",
    b"hello",
];

/// Responses the upstream can send in one operation.
pub(crate) const CANNED_RESPONSES: &[&[u8]] = &[
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: foo/1\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\n\r\nuntil the close",
    b"HTTP/1.1 100 Continue\r\n\r\n",
    b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n",
    b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.1 204 No Content\r\n\r\n",
    b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
    b"\x81\x05Hello",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nContent-Length: 2\r\n\r\nok",
];

/// One thing the driver does.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    /// The client sends bytes; the driver reads them with `handle_data`.
    ClientBytes(Vec<u8>),
    /// The upstream sends bytes on the current connection (`handle_data`).
    UpstreamBytes(Vec<u8>),
    /// The driver reads up to this many pending bytes with `read_buf` + `handle_read`.
    Read(Side, u16),
    /// The peer closes its write half (bytes not read yet are lost).
    Eof(Side),
    /// A read or write on the peer fails.
    Error(Side),
    /// The pending `Connect` succeeds, on a pooled connection if `reused` and one is idle.
    Connected { reused: bool },
    /// The pending `Connect` fails.
    ConnectFailed,
    /// The driver writes up to this many bytes of what `transmit` offers.
    Write(Side, u16),
    /// The same with `transmit_vectored`.
    WriteVectored(Side, u16),
    /// Time passes.
    Advance(u32),
    /// Time jumps to the next deadline.
    AdvanceToDeadline,
    /// `retry()`.
    Retry,
    /// `release_idle_buffers()`.
    ReleaseIdleBuffers,
    /// `handle_shutdown()`: the driver stops; the session must end with no event after.
    Shutdown,
}

fn decode_op(src: &mut Source<'_>) -> Op {
    let side = |b: u8| {
        if b & 1 == 0 {
            Side::Client
        } else {
            Side::Upstream
        }
    };
    match src.byte() % 20 {
        0 | 1 => Op::ClientBytes(src.string(600).to_vec()),
        2 | 3 => Op::UpstreamBytes(src.string(600).to_vec()),
        4 => {
            let i = src.below(CANNED_REQUESTS.len());
            let times = usize::from(src.byte() % 4) + 1;
            Op::ClientBytes(CANNED_REQUESTS[i].repeat(times))
        }
        5 => {
            let i = src.below(CANNED_RESPONSES.len());
            let times = usize::from(src.byte() % 8) + 1;
            Op::UpstreamBytes(CANNED_RESPONSES[i].repeat(times))
        }
        6 => Op::Read(side(src.byte()), src.u16()),
        7 => Op::Eof(side(src.byte())),
        8 => Op::Error(side(src.byte())),
        9 | 10 => Op::Connected { reused: src.flag() },
        11 => Op::ConnectFailed,
        12..=14 => Op::Write(side(src.byte()), src.u16()),
        15 => Op::WriteVectored(side(src.byte()), src.u16()),
        16 => Op::Advance(src.u32() % 200_000),
        17 => Op::AdvanceToDeadline,
        18 => Op::Retry,
        // One code shared by two rare operations (added later: inputs without code 19 decode
        // as they always did).
        _ => {
            if src.byte() % 4 == 0 {
                Op::Shutdown
            } else {
                Op::ReleaseIdleBuffers
            }
        }
    }
}

/// A scenario: a configuration, a client, and what happens.
#[derive(Debug)]
pub(crate) struct Scenario {
    pub(crate) config: Config,
    pub(crate) client: ClientInfo,
    pub(crate) ops: Vec<Op>,
}

fn timeout(src: &mut Source<'_>) -> Duration {
    Duration::from_millis(src.pick(&[10, 1_000, 60_000]))
}

/// Decodes a scenario: the configuration first, then operations until the input runs out.
pub(crate) fn decode(data: &[u8]) -> Scenario {
    let mut src = Source::new(data);
    let flags = src.byte();
    let mut config = if flags & 1 == 1 {
        busy_config()
    } else {
        Config::default()
    };
    let limits = &mut config.limits;
    limits.buffer_size = 256 + usize::from(src.u16()) % 3841;
    limits.max_head_bytes = src.pick(&[512, 2048, 8192]);
    limits.max_request_line = limits.max_head_bytes.min(src.pick(&[256, 8192]));
    limits.max_headers = src.pick(&[4, 16, 100]);
    limits.max_response_head_bytes = src.pick(&[512, 2048, 8192]);
    limits.max_response_headers = src.pick(&[4, 16, 100]);
    limits.max_chunk_line = src.pick(&[8, 64, 4096]);
    limits.max_body_size = src.pick(&[None, Some(0), Some(100), Some(10_000)]);
    let t = &mut config.timeouts;
    t.client_header = timeout(&mut src);
    t.client_body = timeout(&mut src);
    t.connect = timeout(&mut src);
    t.upstream_response = timeout(&mut src);
    t.tunnel_idle = timeout(&mut src);
    t.half_closed = timeout(&mut src);
    t.send_stall = timeout(&mut src);
    t.keepalive_idle = timeout(&mut src);
    t.linger = timeout(&mut src);
    config.half_close = if flags & 2 == 0 {
        HalfClose::Propagate
    } else {
        HalfClose::CloseBoth
    };
    config.strict_websocket = flags & 4 != 0;
    config.forwarded_headers = flags & 8 == 0;
    if flags & 16 != 0 {
        config.upgrade_protocols.push("foo".to_owned());
    }
    config.max_requests_per_connection = src.pick(&[1, 2, 1000]);
    let mut ops = Vec::new();
    while !src.is_empty() && ops.len() < 256 {
        ops.push(decode_op(&mut src));
    }
    Scenario {
        config,
        client: client_info(),
        ops,
    }
}
