//! Test fixtures on real sockets (127.0.0.1 only): a tiny upstream server written with std
//! threads, client helpers, and leak probes (open file descriptors).
//!
//! The upstream's behaviour is chosen by the request path:
//!
//! | request | answer |
//! |---|---|
//! | upgrade `/echo` | 101, then echoes every byte; at EOF shuts its write half and closes |
//! | upgrade `/early` | 101 and `EARLY_UPSTREAM` in one write, then as `/echo` |
//! | upgrade `/late` | 101, reads until EOF, then sends back what it read plus `AFTER_EOF` |
//! | upgrade `/fin-first` | 101 and `BYE`, shuts its write half at once, then records what it reads |
//! | GET `/hang` | nothing (reads until EOF) |
//! | GET `/once` | `200` with body `hello`, then closes (without saying so) |
//! | GET `/flaky` | `200` with body `hello`; then reads the next request and closes unanswered |
//! | other GET | `200` with body `hello`, keep-alive |

#![allow(dead_code, unreachable_pub)]

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

pub const EARLY_UPSTREAM: &[u8] = b"early-from-upstream";
pub const AFTER_EOF: &[u8] = b"after-eof";
pub const BYE: &[u8] = b"bye";

const SWITCH: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello";

/// Tests of one binary run one at a time: they count the process's file descriptors.
pub fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The tiny upstream server.
pub struct Upstream {
    pub addr: SocketAddr,
    /// Connections accepted so far.
    pub connections: Arc<AtomicUsize>,
    /// Requests answered so far.
    pub requests: Arc<AtomicUsize>,
    /// What `/fin-first` read after its FIN.
    pub recorded: Arc<Mutex<Vec<u8>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Upstream {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let recorded = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (connections, requests, recorded, stop) = (
                connections.clone(),
                requests.clone(),
                recorded.clone(),
                stop.clone(),
            );
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    connections.fetch_add(1, Ordering::SeqCst);
                    let (requests, recorded) = (requests.clone(), recorded.clone());
                    thread::spawn(move || {
                        let _ = serve_upstream(stream, &requests, &recorded);
                    });
                }
            })
        };
        Self {
            addr,
            connections,
            requests,
            recorded,
            stop,
            thread: Some(thread),
        }
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One upstream connection: requests until EOF, or an upgrade.
fn serve_upstream(
    mut stream: TcpStream,
    requests: &AtomicUsize,
    recorded: &Mutex<Vec<u8>>,
) -> io::Result<()> {
    let mut buf = Vec::new();
    let mut drop_next = false;
    loop {
        let Some(head_end) = read_head(&mut stream, &mut buf)? else {
            return Ok(());
        };
        if drop_next {
            // As if the upstream closed the idle connection just as the request arrived.
            return Ok(());
        }
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let rest = buf.split_off(head_end);
        buf = rest;
        requests.fetch_add(1, Ordering::SeqCst);
        let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
        if head.contains("\r\nupgrade:") {
            return tunnel(stream, &path, buf, recorded);
        }
        if path == "/hang" {
            let mut sink = [0u8; 1024];
            while stream.read(&mut sink)? > 0 {}
            return Ok(());
        }
        stream.write_all(OK)?;
        if path == "/once" {
            return Ok(());
        }
        drop_next = path == "/flaky";
    }
}

fn tunnel(
    mut stream: TcpStream,
    path: &str,
    leftover: Vec<u8>,
    recorded: &Mutex<Vec<u8>>,
) -> io::Result<()> {
    match path {
        "/early" => stream.write_all(&[SWITCH, EARLY_UPSTREAM].concat())?,
        "/fin-first" => {
            stream.write_all(&[SWITCH, BYE].concat())?;
            stream.shutdown(Shutdown::Write)?;
        }
        _ => stream.write_all(SWITCH)?,
    }
    match path {
        "/late" => {
            let mut all = leftover;
            stream.read_to_end(&mut all)?;
            all.extend_from_slice(AFTER_EOF);
            stream.write_all(&all)?;
            stream.shutdown(Shutdown::Write)?;
        }
        "/fin-first" => {
            let mut all = leftover;
            stream.read_to_end(&mut all)?;
            *recorded.lock().unwrap() = all;
        }
        _ => {
            stream.write_all(&leftover)?;
            let mut chunk = vec![0u8; 64 * 1024];
            loop {
                let n = stream.read(&mut chunk)?;
                if n == 0 {
                    break;
                }
                stream.write_all(&chunk[..n])?;
            }
            stream.shutdown(Shutdown::Write)?;
        }
    }
    Ok(())
}

/// Reads until `buf` holds a complete head; returns its length (None: EOF before one).
fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<Option<usize>> {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Ok(Some(i + 4));
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// A client connection to the proxy, with a read timeout so that a hang fails the test.
pub fn connect(proxy: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(proxy).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
}

/// The request that asks for a WebSocket upgrade on `path`.
pub fn upgrade_request(path: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: test.invalid\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .into_bytes()
}

/// Opens a tunnel on `path` (sending `early` right behind the request); returns the stream and
/// the bytes that came after the 101 head.
pub fn open_tunnel(proxy: SocketAddr, path: &str, early: &[u8]) -> (TcpStream, Vec<u8>) {
    let mut stream = connect(proxy);
    stream
        .write_all(&[upgrade_request(path), early.to_vec()].concat())
        .unwrap();
    let mut buf = Vec::new();
    let end = read_head(&mut stream, &mut buf)
        .unwrap()
        .expect("a 101 head");
    assert!(
        buf.starts_with(b"HTTP/1.1 101 "),
        "expected a 101, got {:?}",
        String::from_utf8_lossy(&buf[..end])
    );
    let rest = buf.split_off(end);
    (stream, rest)
}

/// Sends a keep-alive GET on `stream`; returns the status and the body.
pub fn get(stream: &mut TcpStream, path: &str) -> (u16, Vec<u8>) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: test.invalid\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    read_response(stream)
}

/// Reads one response with a `Content-Length` body (or none).
pub fn read_response(stream: &mut TcpStream) -> (u16, Vec<u8>) {
    let mut buf = Vec::new();
    let end = read_head(stream, &mut buf)
        .unwrap()
        .expect("a response head");
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let status = head[9..12].parse().unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    let mut body = buf.split_off(end);
    while body.len() < length {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "EOF inside the body");
        body.extend_from_slice(&chunk[..n]);
    }
    (status, body)
}

/// Reads until EOF (a reset counts as EOF: the proxy may abort).
pub fn read_to_eof(stream: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return all,
            Ok(n) => all.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return all,
            Err(e) => panic!("read failed: {e}"),
        }
    }
}

/// An address nothing listens on.
pub fn dead_address() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// Open file descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Waits until `check` holds (up to 10 s); panics with `what` otherwise.
pub fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

/// Waits until the process has `baseline` file descriptors open again.
pub fn wait_for_fds(baseline: usize, stage: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = open_fds();
        if now == baseline {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{stage}: {now} fds open, baseline {baseline}"
        );
        thread::sleep(Duration::from_millis(5));
    }
}

/// A small deterministic generator (xorshift64*), so failures reproduce.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| (self.next_u64() >> 32) as u8).collect()
    }

    /// A size in `1..=max`.
    pub fn size(&mut self, max: usize) -> usize {
        (self.next_u64() % max as u64) as usize + 1
    }
}

/// Sends `data` in random-size writes then shuts the write half, while reading everything
/// back until EOF; returns what came back.
pub fn echo_through(stream: TcpStream, data: &[u8], seed: u64) -> Vec<u8> {
    let mut writer = stream.try_clone().unwrap();
    let data_to_send = data.to_vec();
    let sender = thread::spawn(move || {
        let mut rng = Rng::new(seed);
        let mut sent = 0;
        while sent < data_to_send.len() {
            let n = rng.size(64 * 1024).min(data_to_send.len() - sent);
            writer.write_all(&data_to_send[sent..sent + n]).unwrap();
            sent += n;
        }
        writer.shutdown(Shutdown::Write).unwrap();
    });
    let mut reader = stream;
    let back = read_to_eof(&mut reader);
    sender.join().unwrap();
    back
}
