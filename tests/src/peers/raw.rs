//! Byte-level HTTP/1.1 and upgrade helpers for clients and upstreams that must control every
//! byte: reading a head, parsing it, the WebSocket handshake written by hand.

use std::io::{self, Read, Write};
use std::net::TcpStream;

use tungstenite::handshake::derive_accept_key;

/// The `Sec-WebSocket-Key` every hand-written handshake uses (RFC 6455 §1.3's sample nonce).
pub const WS_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// A parsed request or response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Request method (empty for a response).
    pub method: String,
    /// Request target (empty for a response).
    pub target: String,
    /// Response status (0 for a request).
    pub status: u16,
    /// Header fields, in order.
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the `Connection` header lists `token`.
    pub fn connection_has(&self, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }
}

/// Reads from `stream` until a complete head (`\r\n\r\n`) is buffered. Returns the head bytes
/// and whatever followed them in the same reads. `Ok(None)`: EOF before a complete head.
pub fn read_head(stream: &mut impl Read) -> io::Result<Option<(Vec<u8>, Vec<u8>)>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return Ok(Some((buf, rest)));
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The position of `needle` in `haystack`.
pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Parses a request head (panics on a malformed one: the proxy must never send one).
pub fn parse_request(bytes: &[u8]) -> Head {
    let mut fields = [httparse::EMPTY_HEADER; 128];
    let mut request = httparse::Request::new(&mut fields);
    let status = request
        .parse(bytes)
        .expect("the proxy sent a malformed request head");
    assert!(status.is_complete(), "incomplete request head");
    Head {
        method: request.method.unwrap_or_default().to_owned(),
        target: request.path.unwrap_or_default().to_owned(),
        status: 0,
        headers: pairs(request.headers),
    }
}

/// Parses a response head (panics on a malformed one: the proxy must never send one).
pub fn parse_response(bytes: &[u8]) -> Head {
    let mut fields = [httparse::EMPTY_HEADER; 128];
    let mut response = httparse::Response::new(&mut fields);
    let status = response
        .parse(bytes)
        .expect("the proxy sent a malformed response head");
    assert!(status.is_complete(), "incomplete response head");
    Head {
        method: String::new(),
        target: String::new(),
        status: response.code.unwrap_or_default(),
        headers: pairs(response.headers),
    }
}

fn pairs(headers: &[httparse::Header<'_>]) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|h| {
            (
                h.name.to_owned(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect()
}

/// A WebSocket upgrade request for `/chat` with `extra` header lines (each ending in `\r\n`).
pub fn upgrade_request(extra: &str) -> Vec<u8> {
    format!(
        "GET /chat HTTP/1.1\r\nHost: switchyard.test\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: {WS_KEY}\r\nSec-WebSocket-Version: 13\r\n\
         {extra}\r\n"
    )
    .into_bytes()
}

/// A valid `101` answering `request` (its `Sec-WebSocket-Key` gives the accept value), with
/// `extra` header lines.
pub fn switching_protocols(request: &Head, extra: &str) -> Vec<u8> {
    let key = request.header("sec-websocket-key").unwrap_or(WS_KEY);
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n{extra}\r\n",
        derive_accept_key(key.as_bytes())
    )
    .into_bytes()
}

/// Client side: connects through `stream`, sends an upgrade request (`extra` headers) plus
/// `early` bytes in the same write, and reads the answer's head. Returns the head and the bytes
/// that followed it.
pub fn upgrade(stream: &mut TcpStream, extra: &str, early: &[u8]) -> (Head, Vec<u8>) {
    let mut request = upgrade_request(extra);
    request.extend_from_slice(early);
    stream
        .write_all(&request)
        .expect("send the upgrade request");
    let (head, rest) = read_head(stream)
        .expect("read the answer to the upgrade")
        .expect("the proxy closed before answering the upgrade");
    (parse_response(&head), rest)
}

/// Upstream side: reads the upgrade request, answers a valid `101` and returns the request and
/// the bytes that followed its head.
pub fn accept_upgrade(stream: &mut TcpStream) -> Option<(Head, Vec<u8>)> {
    let (head, rest) = read_head(stream).ok()??;
    let request = parse_request(&head);
    stream.write_all(&switching_protocols(&request, "")).ok()?;
    Some((request, rest))
}

/// Reads until EOF, appending to `into`; returns whether EOF was reached (false: error or
/// timeout).
pub fn read_to_eof(stream: &mut impl Read, into: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return true,
            Ok(n) => into.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}

/// Reads exactly `n` bytes (or panics with `what`).
pub fn read_exact_n(stream: &mut impl Read, n: usize, what: &str) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    stream
        .read_exact(&mut buf)
        .unwrap_or_else(|e| panic!("{what}: reading {n} bytes: {e}"));
    buf
}

/// Whether the peer closed the connection: a read returns EOF or a reset (not a timeout, not
/// data) within the stream's read timeout.
pub fn closed_by_peer(stream: &mut impl Read) -> bool {
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => matches!(
            e.kind(),
            io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
        ),
    }
}

/// An upstream handler: answers an upgrade with a `101`, then echoes every byte until EOF, then
/// closes. An idle tunnel is kept for up to a minute (scenarios keep many tunnels idle).
pub fn echo_tunnel(mut stream: TcpStream) {
    if accept_upgrade_and_forward(&mut stream).is_none() {
        return;
    }
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(60)));
    let _ = io::copy(&mut stream.try_clone().expect("clone"), &mut stream);
    let _ = stream.shutdown(std::net::Shutdown::Write);
}

/// [`accept_upgrade`], then echoes the bytes that came with the request.
fn accept_upgrade_and_forward(stream: &mut TcpStream) -> Option<()> {
    let (_, rest) = accept_upgrade(stream)?;
    stream.write_all(&rest).ok()
}
