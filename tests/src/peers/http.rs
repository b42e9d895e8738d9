//! Plain HTTP/1.1 on both sides: a message reader (Content-Length, chunked or close-delimited
//! bodies, with leftover bytes kept for pipelining) and an echoing upstream.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};

use super::raw::{closed_by_peer, find, parse_request, parse_response, switching_protocols, Head};

/// A complete message read by [`MessageReader`].
#[derive(Debug, Clone)]
pub struct Message {
    /// Its head.
    pub head: Head,
    /// Its decoded body.
    pub body: Vec<u8>,
    /// How the body was framed: `"length"`, `"chunked"`, `"close"` or `"none"`.
    pub framing: &'static str,
}

/// Reads HTTP/1.1 messages from a stream, keeping bytes of the next message.
pub struct MessageReader<S> {
    stream: S,
    buf: Vec<u8>,
    eof: bool,
}

impl<S: Read> MessageReader<S> {
    /// Reads messages from `stream`.
    pub fn new(stream: S) -> Self {
        Self {
            stream,
            buf: Vec::new(),
            eof: false,
        }
    }

    /// The underlying stream.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// The underlying stream, dropping whatever was buffered.
    pub fn into_inner(self) -> S {
        self.stream
    }

    /// Bytes buffered but not consumed.
    pub fn buffered(&self) -> &[u8] {
        &self.buf
    }

    fn fill(&mut self) -> io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk)?;
        if n == 0 {
            self.eof = true;
            return Ok(false);
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(true)
    }

    fn take_head(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let rest = self.buf.split_off(end + 4);
                return Ok(Some(std::mem::replace(&mut self.buf, rest)));
            }
            if !self.fill()? {
                return Ok(None);
            }
        }
    }

    fn take_exact(&mut self, n: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() < n {
            if !self.fill()? {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "body cut short",
                ));
            }
        }
        let rest = self.buf.split_off(n);
        Ok(std::mem::replace(&mut self.buf, rest))
    }

    fn take_line(&mut self) -> io::Result<Vec<u8>> {
        loop {
            if let Some(end) = find(&self.buf, b"\r\n") {
                let rest = self.buf.split_off(end + 2);
                let mut line = std::mem::replace(&mut self.buf, rest);
                line.truncate(end);
                return Ok(line);
            }
            if !self.fill()? {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "line cut short",
                ));
            }
        }
    }

    fn chunked_body(&mut self) -> io::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line = self.take_line()?;
            let size = std::str::from_utf8(&line)
                .ok()
                .and_then(|l| usize::from_str_radix(l.split(';').next()?.trim(), 16).ok())
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
            if size == 0 {
                // Trailer section: lines until an empty one.
                while !self.take_line()?.is_empty() {}
                return Ok(body);
            }
            body.extend(self.take_exact(size)?);
            if !self.take_line()?.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "chunk not ended by CRLF",
                ));
            }
        }
    }

    fn body(&mut self, head: &Head, is_response: bool) -> io::Result<(Vec<u8>, &'static str)> {
        let no_body =
            is_response && (head.status / 100 == 1 || head.status == 204 || head.status == 304);
        if no_body {
            return Ok((Vec::new(), "none"));
        }
        let chunked = head
            .header("transfer-encoding")
            .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
        if chunked {
            return Ok((self.chunked_body()?, "chunked"));
        }
        if let Some(length) = head.header("content-length") {
            let n = length
                .trim()
                .parse()
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad Content-Length"))?;
            return Ok((self.take_exact(n)?, "length"));
        }
        if !is_response {
            return Ok((Vec::new(), "none"));
        }
        while self.fill()? {}
        Ok((std::mem::take(&mut self.buf), "close"))
    }

    /// The next response (`None`: the connection closed cleanly before one began). A response to
    /// a `HEAD` request has no body: pass `head_request`.
    pub fn response(&mut self, head_request: bool) -> io::Result<Option<Message>> {
        let Some(bytes) = self.take_head()? else {
            return Ok(None);
        };
        let head = parse_response(&bytes);
        let (body, framing) = if head_request {
            (Vec::new(), "none")
        } else {
            self.body(&head, true)?
        };
        Ok(Some(Message {
            head,
            body,
            framing,
        }))
    }

    /// The next request (`None`: the connection closed cleanly before one began).
    pub fn request(&mut self) -> io::Result<Option<Message>> {
        let Some(bytes) = self.take_head()? else {
            return Ok(None);
        };
        let head = parse_request(&bytes);
        let (body, framing) = self.body(&head, false)?;
        Ok(Some(Message {
            head,
            body,
            framing,
        }))
    }
}

impl<S: Read + Write> MessageReader<S> {
    /// Client side: writes `bytes` (one or more requests) to the stream.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send a request");
    }

    /// Client side: the next response, which must come.
    pub fn expect_response(&mut self) -> Message {
        self.response(false)
            .expect("read a response")
            .expect("the proxy closed instead of answering")
    }
}

/// Serialises a request with a Content-Length body (`None`: no body, no framing header).
pub fn request(method: &str, target: &str, body: Option<&[u8]>) -> Vec<u8> {
    let mut out = format!("{method} {target} HTTP/1.1\r\nHost: switchyard.test\r\n").into_bytes();
    if let Some(body) = body {
        out.extend(format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes());
        out.extend_from_slice(body);
    } else {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Serialises a request with a chunked body made of `chunks`.
pub fn chunked_request(method: &str, target: &str, chunks: &[&[u8]]) -> Vec<u8> {
    let mut out = format!(
        "{method} {target} HTTP/1.1\r\nHost: switchyard.test\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for chunk in chunks.iter().filter(|c| !c.is_empty()) {
        out.extend(format!("{:x}\r\n", chunk.len()).into_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// The deterministic body `GET /bytes/N` answers: byte `i` is `i % 251`.
pub fn pattern_body(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

/// An upstream handler serving HTTP/1.1 with keep-alive until the client closes:
///
/// * `GET /bytes/N` answers `N` bytes of [`pattern_body`] with Content-Length;
/// * `GET /hang` gets no answer: the handler waits until the proxy closes the connection;
/// * an upgrade request gets a `101` (WebSocket), and the tunnel echoes every byte until EOF;
/// * any other request answers `200` echoing the request body, with the same framing the
///   request arrived with (chunked in, chunked out), plus `X-Target` (the request target),
///   `X-Framing` (how the request body was framed) and `X-Request-On-Connection` (1 for the
///   first request on this upstream connection).
pub fn echo_server(stream: TcpStream) {
    serve_echo(stream, None);
}

/// [`echo_server`] that also names itself in an `X-Server: NAME` header of every response (to
/// tell the upstreams of a group apart).
pub fn named_echo_server(name: &'static str) -> impl Fn(TcpStream) + Send + Sync + 'static {
    move |stream| serve_echo(stream, Some(name))
}

fn serve_echo(stream: TcpStream, name: Option<&str>) {
    let mut writer = stream.try_clone().expect("clone");
    let mut reader = MessageReader::new(stream);
    let mut count = 0;
    while let Ok(Some(request)) = reader.request() {
        count += 1;
        if request.head.header("upgrade").is_some() {
            echo_tunnel(&request.head, reader.buffered(), &mut writer);
            return;
        }
        if request.head.target == "/hang" {
            let _ = closed_by_peer(reader.get_mut());
            return;
        }
        let body = match request.head.target.strip_prefix("/bytes/") {
            Some(n) => pattern_body(n.parse().unwrap_or(0)),
            None => request.body,
        };
        let mut head = format!(
            "HTTP/1.1 200 OK\r\nX-Target: {}\r\nX-Framing: {}\r\nX-Request-On-Connection: {count}\r\n",
            request.head.target, request.framing
        )
        .into_bytes();
        if let Some(name) = name {
            head.extend(format!("X-Server: {name}\r\n").into_bytes());
        }
        let out = if request.framing == "chunked" {
            head.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
            let pieces: Vec<&[u8]> = body.chunks(1000).collect();
            let mut framed = chunked_request("X", "/", &pieces);
            // Keep only the chunked body of that serialisation.
            let start = find(&framed, b"\r\n\r\n").map_or(0, |p| p + 4);
            framed.drain(..start);
            head.extend(framed);
            head
        } else {
            head.extend(format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes());
            head.extend(body);
            head
        };
        if writer.write_all(&out).is_err() {
            return;
        }
    }
}

/// Answers the upgrade `request` with a `101`, then echoes `early` and every byte after it
/// until EOF, then shuts down its write side.
fn echo_tunnel(request: &Head, early: &[u8], stream: &mut TcpStream) {
    let mut answer = switching_protocols(request, "");
    answer.extend_from_slice(early);
    if stream.write_all(&answer).is_ok() {
        let _ = io::copy(&mut stream.try_clone().expect("clone"), stream);
        let _ = stream.shutdown(Shutdown::Write);
    }
}
