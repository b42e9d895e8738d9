//! A tiny upstream on std threads, and client helpers, for the adapter's tests. Everything
//! listens and connects on 127.0.0.1 only.
//!
//! The upstream answers an `Upgrade: websocket` request with a 101 and then echoes raw bytes;
//! any other request gets a 200 with a small body, on a kept-alive connection. Paths select
//! behaviours:
//!
//! | path | behaviour |
//! |---|---|
//! | `/greet` (upgrade) | the 101 and `early-upstream-bytes` in one write, then echo |
//! | `/bye` (upgrade) | echo; after the client's EOF, write `BYE` and shut down |
//! | `/close-first` (upgrade) | the 101 and `bye`, shut down its write side, record what arrives |
//! | `/slow` | answer after 300 ms |
//! | `/partial` | a head announcing 100 body bytes and 10 of them, the other 90 after 300 ms |
//! | `/close-after` | the 200 (reusable as far as the proxy can tell), then close the connection |
//! | `/drop-next` | the 200, then close the connection when the next request arrives, unanswered |
//! | anything else | echo (upgrade) or `200` with `hello PATH` (plain) |

#![allow(dead_code, unreachable_pub)]

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

pub const SWITCH: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

/// The upstream's counters and records.
#[derive(Debug, Default)]
pub struct Stats {
    /// Connections accepted.
    pub connections: AtomicUsize,
    /// Request heads read.
    pub requests: AtomicUsize,
    /// Connection handlers that returned (their socket closed).
    pub finished: AtomicUsize,
    /// Bytes `/close-first` tunnels received after shutting down their write side.
    pub after_fin: Mutex<Vec<u8>>,
}

/// A running test upstream.
pub struct Upstream {
    pub addr: SocketAddr,
    pub stats: Arc<Stats>,
}

impl Upstream {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stats = Arc::new(Stats::default());
        let shared = Arc::clone(&stats);
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                shared.connections.fetch_add(1, Ordering::SeqCst);
                let stats = Arc::clone(&shared);
                thread::spawn(move || {
                    let _ = serve_connection(stream, &stats);
                    stats.finished.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        Self { addr, stats }
    }

    pub fn connections(&self) -> usize {
        self.stats.connections.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> usize {
        self.stats.requests.load(Ordering::SeqCst)
    }

    /// Connections accepted and not yet closed.
    pub fn live(&self) -> usize {
        self.connections() - self.stats.finished.load(Ordering::SeqCst)
    }
}

/// An address on 127.0.0.1 where nothing listens.
pub fn dead_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

fn serve_connection(mut stream: TcpStream, stats: &Stats) -> io::Result<()> {
    let mut buf = Vec::new();
    let mut drop_next = false;
    loop {
        let Some(head) = read_head(&mut stream, &mut buf)? else {
            return Ok(());
        };
        if drop_next {
            return Ok(());
        }
        stats.requests.fetch_add(1, Ordering::SeqCst);
        let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
        let path = text.split(' ').nth(1).unwrap_or("/").to_owned();
        if text.contains("\r\nupgrade: websocket") {
            return tunnel(stream, &path, buf, stats);
        }
        match path.as_str() {
            "/slow" => thread::sleep(Duration::from_millis(300)),
            "/partial" => {
                stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")?;
                thread::sleep(Duration::from_millis(300));
                stream.write_all(&[b'x'; 90])?;
                continue;
            }
            _ => {}
        }
        let body = format!("hello {path}");
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(response.as_bytes())?;
        match path.as_str() {
            "/close-after" => return Ok(()),
            "/drop-next" => drop_next = true,
            _ => {}
        }
    }
}

fn tunnel(mut stream: TcpStream, path: &str, leftover: Vec<u8>, stats: &Stats) -> io::Result<()> {
    let mut first = SWITCH.to_vec();
    match path {
        "/greet" => first.extend_from_slice(b"early-upstream-bytes"),
        "/close-first" => first.extend_from_slice(b"bye"),
        _ => {}
    }
    stream.write_all(&first)?;
    if path == "/close-first" {
        stream.shutdown(Shutdown::Write)?;
        let mut got = leftover;
        stream.read_to_end(&mut got)?;
        stats.after_fin.lock().unwrap().extend_from_slice(&got);
        return Ok(());
    }
    stream.write_all(&leftover)?;
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        stream.write_all(&chunk[..n])?;
    }
    if path == "/bye" {
        stream.write_all(b"BYE")?;
    }
    stream.shutdown(Shutdown::Write)
}

/// Reads one head (up to the blank line) from `stream`, keeping what follows in `buf`.
/// `None` on EOF before a head.
pub fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<Option<Vec<u8>>> {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(i + 4);
            return Ok(Some(std::mem::replace(buf, rest)));
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// An upgrade request for `path`.
pub fn upgrade_request(path: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: test.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .into_bytes()
}

/// Connects to the proxy with a read timeout, so that a hang fails the test.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

/// Opens a tunnel to `path` through the proxy; returns the stream and the bytes after the 101.
pub fn open_tunnel(proxy: SocketAddr, path: &str, early: &[u8]) -> (TcpStream, Vec<u8>) {
    let mut stream = connect(proxy);
    let mut request = upgrade_request(path);
    request.extend_from_slice(early);
    stream.write_all(&request).unwrap();
    let mut buf = Vec::new();
    let head = read_head(&mut stream, &mut buf)
        .unwrap()
        .expect("a response head");
    assert!(
        head.starts_with(b"HTTP/1.1 101 "),
        "not a 101: {}",
        String::from_utf8_lossy(&head)
    );
    (stream, buf)
}

/// A response: status and body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

/// Sends a GET for `path` on `stream` and reads the response (Content-Length bodies only).
pub fn get(stream: &mut TcpStream, buf: &mut Vec<u8>, path: &str) -> Response {
    let request = format!("GET {path} HTTP/1.1\r\nHost: test.example\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    read_response(stream, buf)
}

/// Reads one response with a Content-Length body (or none).
pub fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Response {
    let head = read_head(stream, buf).unwrap().expect("a response head");
    let head = String::from_utf8(head).unwrap();
    let status = head[9..12].parse().unwrap();
    let length = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().unwrap())
        })
        .unwrap_or(0);
    let mut chunk = [0u8; 4096];
    while buf.len() < length {
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "EOF inside a body");
        buf.extend_from_slice(&chunk[..n]);
    }
    let rest = buf.split_off(length);
    let body = std::mem::replace(buf, rest);
    Response { status, head, body }
}

/// Reads until EOF; fails the test on a timeout.
pub fn read_to_eof(stream: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    stream.read_to_end(&mut all).expect("EOF in time");
    all
}

/// Whether the peer closed `stream`: EOF, or a reset (an abrupt close of a socket with unread
/// input sends RST instead of FIN).
pub fn closed(stream: &mut TcpStream) -> bool {
    let mut rest = Vec::new();
    match stream.read_to_end(&mut rest) {
        Ok(_) => rest.is_empty(),
        Err(e) => e.kind() == io::ErrorKind::ConnectionReset,
    }
}

/// Reads exactly `n` bytes.
pub fn read_exact(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut got = vec![0u8; n];
    stream.read_exact(&mut got).unwrap();
    got
}

/// Polls `condition` every 10 ms until it holds or `limit` passes; returns whether it held.
pub fn wait_until(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Open file descriptors of this process.
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Threads of this process.
pub fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

/// A small deterministic generator (xorshift64*), for random bytes and sizes.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| (self.next() >> 32) as u8).collect()
    }

    /// A size in `1..=max`.
    pub fn size(&mut self, max: usize) -> usize {
        1 + (self.next() % max as u64) as usize
    }
}

/// Writes `data` in random-sized pieces on one thread while reading the echo on this one;
/// returns what came back.
pub fn echo_through(stream: &TcpStream, data: &[u8], seed: u64) -> Vec<u8> {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = stream.try_clone().unwrap();
    let data = data.to_vec();
    let total = data.len();
    let sender = thread::spawn(move || {
        let mut rng = Rng::new(seed);
        let mut at = 0;
        while at < data.len() {
            let n = rng.size(64 * 1024).min(data.len() - at);
            writer.write_all(&data[at..at + n]).unwrap();
            at += n;
        }
    });
    let mut got = Vec::with_capacity(total);
    let mut chunk = vec![0u8; 64 * 1024];
    while got.len() < total {
        let n = reader.read(&mut chunk).unwrap();
        assert!(n > 0, "EOF after {} of {total} echoed bytes", got.len());
        got.extend_from_slice(&chunk[..n]);
    }
    sender.join().unwrap();
    got
}

/// A proxy on 127.0.0.1 with two worker threads, the core's defaults and `pool`.
pub fn proxy_with(
    upstreams: &[SocketAddr],
    pool: switchyard_proto::PoolConfig,
) -> switchyard_async_std::ProxyHandle {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let servers = upstreams.iter().map(ToString::to_string).collect();
    let mut config =
        switchyard_async_std::ProxyConfig::new(switchyard_proto::Config::default(), servers);
    config.pool = pool;
    switchyard_async_std::spawn(listener, config, Some(2)).unwrap()
}

/// A proxy on 127.0.0.1 with the default pool.
pub fn proxy(upstreams: &[SocketAddr]) -> switchyard_async_std::ProxyHandle {
    proxy_with(upstreams, switchyard_proto::PoolConfig::default())
}

/// Waits until the proxy has no open session; fails the test otherwise.
pub fn assert_sessions_end(handle: &switchyard_async_std::ProxyHandle) {
    assert!(
        wait_until(Duration::from_secs(10), || handle.open_sessions() == 0),
        "{} sessions still open",
        handle.open_sessions()
    );
}
