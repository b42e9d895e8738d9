//! `race-backend`: the upstream every proxy of the end-to-end race forwards to.
//!
//! ```text
//! race-backend --listen 127.0.0.1:0 [--threads N]
//! ```
//!
//! Prints `listening on ADDR` once bound. Each connection is one task that reads request heads:
//!
//! * a request asking for an upgrade (an `Upgrade` header, or `upgrade` in `Connection`) gets a
//!   `101 Switching Protocols` (a valid WebSocket accept for the race's fixed key) and from then
//!   on every byte received is echoed back until EOF, which is answered with a half-close;
//! * any other request gets `200` with the 16-byte body [`BODY`], `Content-Length` framed, and
//!   the connection stays open unless the request said `Connection: close` (or was HTTP/1.0).
//!   Pipelined requests are answered in order; a request body (`Content-Length`) is discarded.
//!
//! It is as small as a server can be, so that the race measures the proxies: no logging, no
//! allocation per request, `TCP_NODELAY` on every socket. By default it runs on one thread (the
//! race pins it to one core beside the load generator); `--threads` gives it more.

use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The body of every plain response.
const BODY: &[u8; 16] = b"0123456789abcdef";

/// The race's WebSocket key (RFC 6455's example).
const WS_KEY: &[u8] = b"dGhlIHNhbXBsZSBub25jZQ==";

/// The answer to an upgrade, with the accept value of [`WS_KEY`].
const SWITCHING: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

/// The largest request head accepted.
const MAX_HEAD: usize = 16 * 1024;

/// Fields looked at in a request head.
const MAX_FIELDS: usize = 64;

fn main() -> ExitCode {
    let mut listen: SocketAddr = ([127, 0, 0, 1], 0).into();
    let mut threads = 1usize;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next();
        let parsed = match (flag.as_str(), value) {
            ("--listen", Some(v)) => v.parse().map(|a| listen = a).is_ok(),
            ("--threads", Some(v)) => v.parse().map(|n: usize| threads = n.max(1)).is_ok(),
            _ => false,
        };
        if !parsed {
            eprintln!("usage: race-backend [--listen ADDR] [--threads N]");
            return ExitCode::from(2);
        }
    }
    if !listen.ip().is_loopback() {
        eprintln!("race-backend: listens on loopback addresses only");
        return ExitCode::from(2);
    }
    let runtime = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_io()
            .build()
    };
    let result = runtime.and_then(|rt| rt.block_on(serve(listen)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("race-backend: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(addr: SocketAddr) -> io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    println!("listening on {}", listener.local_addr()?);
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(async move {
                    // A peer that resets is not the backend's problem.
                    let _ = connection(stream).await;
                });
            }
            // Out of descriptors or an aborted handshake: keep serving.
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
        }
    }
}

/// What one request head asks for.
struct Request {
    head_len: usize,
    upgrade: bool,
    close: bool,
    body_len: usize,
}

/// Parses a complete head at the start of `buf`; `Ok(None)` while it is incomplete.
fn parse(buf: &[u8]) -> io::Result<Option<Request>> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_FIELDS];
    let mut req = httparse::Request::new(&mut fields);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => return Ok(None),
        _ => return Err(io::Error::new(io::ErrorKind::InvalidData, "bad request")),
    };
    let mut upgrade = false;
    let mut close = req.version == Some(0);
    let mut body_len = 0;
    let mut key_ok = true;
    for field in req.headers.iter() {
        let value = field.value;
        if field.name.eq_ignore_ascii_case("upgrade") {
            upgrade = true;
        } else if field.name.eq_ignore_ascii_case("connection") {
            let has = |token: &[u8]| {
                value
                    .split(|&b| b == b',')
                    .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
            };
            upgrade |= has(b"upgrade");
            close |= has(b"close");
        } else if field.name.eq_ignore_ascii_case("content-length") {
            body_len = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad length"))?;
        } else if field.name.eq_ignore_ascii_case("sec-websocket-key") {
            key_ok = value == WS_KEY;
        }
    }
    if upgrade && !key_ok {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "unknown key"));
    }
    Ok(Some(Request {
        head_len,
        upgrade,
        close,
        body_len,
    }))
}

async fn connection(mut stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = vec![0u8; MAX_HEAD];
    let mut filled = 0;
    let mut response = Vec::with_capacity(128);
    loop {
        // Answer every complete request in the buffer, then write once.
        let mut start = 0;
        response.clear();
        let mut close = false;
        while let Some(req) = parse(&buf[start..filled])? {
            if req.upgrade {
                stream.write_all(&response).await?;
                stream.write_all(SWITCHING).await?;
                let rest = buf[start + req.head_len..filled].to_vec();
                return echo(stream, buf, &rest).await;
            }
            let mut skip = req.head_len + req.body_len;
            while start + skip > filled {
                // Discard a body still arriving.
                skip -= filled - start;
                start = 0;
                filled = stream.read(&mut buf).await?;
                if filled == 0 {
                    return Ok(());
                }
            }
            start += skip;
            response.extend_from_slice(if req.close { CLOSE_HEAD } else { KEEP_HEAD });
            response.extend_from_slice(BODY);
            if req.close {
                close = true;
                break;
            }
        }
        if !response.is_empty() {
            stream.write_all(&response).await?;
        }
        if close {
            return stream.shutdown().await;
        }
        buf.copy_within(start..filled, 0);
        filled -= start;
        let n = stream.read(&mut buf[filled..]).await?;
        if n == 0 {
            return Ok(());
        }
        filled += n;
    }
}

const KEEP_HEAD: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 16\r\n\r\n";
const CLOSE_HEAD: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 16\r\nConnection: close\r\n\r\n";

/// The tunnel: echoes `rest` (bytes that followed the head), then everything read, until EOF.
async fn echo(mut stream: TcpStream, mut buf: Vec<u8>, rest: &[u8]) -> io::Result<()> {
    stream.write_all(rest).await?;
    buf.resize(64 * 1024, 0);
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return stream.shutdown().await;
        }
        stream.write_all(&buf[..n]).await?;
    }
}
