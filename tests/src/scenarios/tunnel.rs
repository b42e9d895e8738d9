//! The upgrade and the byte tunnel, seen from raw sockets: every byte counted, every close
//! observed.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::{wait_until, Proxy, ProxyUnderTest, Setup, PATIENCE};
use crate::peers::http::MessageReader;
use crate::peers::raw::{self, closed_by_peer, read_head, read_to_eof};
use crate::peers::Upstream;
use crate::rng::Rng;

/// 16 MiB of random bytes, written in random sizes (1 byte to 64 KiB), come back byte-exact.
pub fn echo_16_mib<P: ProxyUnderTest>() {
    const TOTAL: usize = 16 * 1024 * 1024;
    let seed = 0x5eed_0016;
    let upstream = Upstream::spawn(raw::echo_tunnel);
    let proxy = Proxy::start::<P>(&Setup::new(upstream.addr()));
    let mut client = proxy.connect();
    let (head, early) = raw::upgrade(&mut client, "", b"");
    assert_eq!(head.status, 101);
    assert!(early.is_empty());

    let mut rng = Rng::new(seed);
    let data = Arc::new(rng.bytes(TOTAL));
    let writer = {
        let (data, mut stream) = (Arc::clone(&data), client.try_clone().unwrap());
        thread::spawn(move || {
            let mut at = 0;
            while at < data.len() {
                let n = rng.range(1, 64 * 1024).min(data.len() - at);
                stream
                    .write_all(&data[at..at + n])
                    .expect("write into the tunnel");
                at += n;
            }
            stream.shutdown(Shutdown::Write).unwrap();
        })
    };
    let started = Instant::now();
    let mut echoed = Vec::with_capacity(TOTAL);
    assert!(
        read_to_eof(&mut client, &mut echoed),
        "tunnel did not end after the echo"
    );
    writer.join().unwrap();
    eprintln!("{}: 16 MiB echoed in {:?}", proxy.name(), started.elapsed());
    assert_eq!(echoed.len(), TOTAL, "byte count (seed {seed:#x})");
    if let Some(at) = echoed.iter().zip(data.iter()).position(|(a, b)| a != b) {
        panic!("echo differs first at byte {at} (seed {seed:#x})");
    }
    proxy.assert_no_sessions("after 16 MiB");
}

/// Bytes sent with the request head are held until the 101 and then delivered first; bytes the
/// upstream sends with its 101 reach the client right after the head.
pub fn early_data_both_ways<P: ProxyUnderTest>() {
    let (report, reports) = mpsc::channel();
    let upstream = Upstream::spawn(move |mut stream| {
        let (head, rest) = read_head(&mut stream).unwrap().unwrap();
        let request = raw::parse_request(&head);
        // Nothing may arrive before the 101 goes out.
        stream
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut early = rest;
        let mut buf = [0u8; 64];
        match stream.read(&mut buf) {
            Ok(n) => early.extend_from_slice(&buf[..n]),
            Err(e) => assert!(matches!(
                e.kind(),
                ErrorKind::WouldBlock | ErrorKind::TimedOut
            )),
        }
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut answer = raw::switching_protocols(&request, "");
        answer.extend_from_slice(b"early-upstream");
        stream.write_all(&answer).unwrap();
        let after = raw::read_exact_n(&mut stream, b"early-client".len(), "held client bytes");
        report.send((early, after)).unwrap();
        let mut rest = Vec::new();
        read_to_eof(&mut stream, &mut rest);
    });
    let proxy = Proxy::start::<P>(&Setup::new(upstream.addr()));
    let mut client = proxy.connect();
    let (head, mut after) = raw::upgrade(&mut client, "", b"early-client");
    assert_eq!(head.status, 101);
    if after.len() < b"early-upstream".len() {
        after.extend(raw::read_exact_n(
            &mut client,
            b"early-upstream".len() - after.len(),
            "early upstream bytes",
        ));
    }
    assert_eq!(after, b"early-upstream");
    let (before_101, after_101) = reports.recv_timeout(PATIENCE).unwrap();
    assert!(
        before_101.is_empty(),
        "client bytes reached the upstream before its 101: {before_101:?}"
    );
    assert_eq!(after_101, b"early-client");
}

/// An upstream that refuses the upgrade with a normal response: the client gets that response
/// (status and body) and no tunnel.
pub fn non_101_answer<P: ProxyUnderTest>() {
    let upstream = Upstream::spawn(|mut stream| {
        let _ = read_head(&mut stream);
        let _ = stream.write_all(
            b"HTTP/1.1 403 Forbidden\r\nContent-Length: 5\r\nX-Why: policy\r\n\r\nnope\n",
        );
        let mut rest = Vec::new();
        read_to_eof(&mut stream, &mut rest);
    });
    let proxy = Proxy::start::<P>(&Setup::new(upstream.addr()));
    let mut client = proxy.connect();
    client.write_all(&raw::upgrade_request("")).unwrap();
    let mut reader = MessageReader::new(client);
    let response = reader.response(false).unwrap().expect("a response");
    assert_eq!(response.head.status, 403);
    assert_eq!(response.head.header("x-why"), Some("policy"));
    assert_eq!(response.body, b"nope\n");
    assert!(
        response.head.header("upgrade").is_none(),
        "no Upgrade on a non-101 answer"
    );
}

fn refused_101<P: ProxyUnderTest>(request: &[u8], answer: &'static [u8], case: &str) {
    let (saw_eof, eofs) = mpsc::channel();
    let upstream = Upstream::spawn(move |mut stream| {
        let _ = read_head(&mut stream);
        let _ = stream.write_all(answer);
        // The proxy must close this connection, never tunnel or reuse it.
        let mut rest = Vec::new();
        let _ = saw_eof.send(read_to_eof(&mut stream, &mut rest) && rest.is_empty());
    });
    let proxy = Proxy::start::<P>(&Setup::new(upstream.addr()));
    let mut client = proxy.connect();
    client.write_all(request).unwrap();
    let mut reader = MessageReader::new(client);
    let response = reader.response(false).unwrap().expect("a response");
    assert_eq!(response.head.status, 502, "{case}: the client must get 502");
    assert!(
        eofs.recv_timeout(PATIENCE).unwrap_or(false),
        "{case}: the upstream connection must be closed with nothing more sent"
    );
}

/// A 101 the client did not ask for is refused with 502: to a request without `Upgrade`, with
/// a protocol other than the one offered, and with a token the proxy does not tunnel.
pub fn refused_101s<P: ProxyUnderTest>() {
    const WS_101: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
    const H2C_101: &[u8] =
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n";
    const FOO_101: &[u8] =
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: foo\r\nConnection: Upgrade\r\n\r\n";
    refused_101::<P>(
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        WS_101,
        "101 to a plain GET",
    );
    refused_101::<P>(
        &raw::upgrade_request(""),
        H2C_101,
        "101 with the wrong token",
    );
    refused_101::<P>(
        b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: foo\r\nConnection: upgrade\r\n\r\n",
        FOO_101,
        "101 to a token the proxy does not tunnel",
    );
}

/// The client half-closes: the upstream sees EOF, still answers, and the answer reaches the
/// client before its EOF.
pub fn half_close_from_client<P: ProxyUnderTest>() {
    let upstream = Upstream::spawn(|mut stream| {
        if raw::accept_upgrade(&mut stream).is_none() {
            return;
        }
        let mut got = Vec::new();
        if read_to_eof(&mut stream, &mut got) {
            let mut answer = b"after-your-eof:".to_vec();
            answer.extend(got);
            let _ = stream.write_all(&answer);
        }
        let _ = stream.shutdown(Shutdown::Write);
    });
    let proxy = Proxy::start::<P>(&Setup::new(upstream.addr()));
    let mut client = proxy.connect();
    assert_eq!(raw::upgrade(&mut client, "", b"").0.status, 101);
    client.write_all(b"question").unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    let mut answer = Vec::new();
    assert!(
        read_to_eof(&mut client, &mut answer),
        "the tunnel must end after both EOFs"
    );
    assert_eq!(answer, b"after-your-eof:question");
    proxy.assert_no_sessions("after a client half-close");
}

/// The upstream half-closes: the client sees EOF, keeps sending, and the upstream gets it all.
pub fn half_close_from_upstream<P: ProxyUnderTest>() {
    let (report, reports) = mpsc::channel();
    let upstream = Upstream::spawn(move |mut stream| {
        if raw::accept_upgrade(&mut stream).is_none() {
            return;
        }
        stream.write_all(b"bye-from-upstream").unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        let mut got = Vec::new();
        let eof = read_to_eof(&mut stream, &mut got);
        report.send((eof, got)).unwrap();
    });
    let proxy = Proxy::start::<P>(&Setup::new(upstream.addr()));
    let mut client = proxy.connect();
    let (head, mut got) = raw::upgrade(&mut client, "", b"");
    assert_eq!(head.status, 101);
    assert!(
        read_to_eof(&mut client, &mut got),
        "the client must see the upstream's EOF"
    );
    assert_eq!(got, b"bye-from-upstream");
    client.write_all(b"late words").unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    let (eof, received) = reports.recv_timeout(PATIENCE).unwrap();
    assert!(eof, "the upstream must see the client's EOF");
    assert_eq!(received, b"late words");
    proxy.assert_no_sessions("after an upstream half-close");
}

/// A tunnel with traffic stays open past the idle timeout; once idle it is closed after about
/// the timeout, and both ends see it close.
pub fn idle_timeout<P: ProxyUnderTest>() {
    const IDLE: Duration = Duration::from_millis(600);
    let upstream = Upstream::spawn(raw::echo_tunnel);
    let proxy = Proxy::start::<P>(&Setup::new(upstream.addr()).tunnel_idle(IDLE));
    let mut client = proxy.connect();
    assert_eq!(raw::upgrade(&mut client, "", b"").0.status, 101);
    // Traffic every 200 ms for 1.2 s (twice the timeout) keeps it open.
    let mut idle_since = Instant::now();
    for i in 0..7u8 {
        if i > 0 {
            thread::sleep(Duration::from_millis(200));
        }
        client.write_all(&[i]).unwrap();
        assert_eq!(raw::read_exact_n(&mut client, 1, "echo"), [i]);
        idle_since = Instant::now();
    }
    assert!(
        closed_by_peer(&mut client),
        "the idle tunnel was not closed"
    );
    let waited = idle_since.elapsed();
    assert!(
        waited >= IDLE - Duration::from_millis(100) && waited < IDLE + Duration::from_secs(3),
        "closed after {waited:?} of idleness, timeout {IDLE:?}"
    );
    proxy.assert_no_sessions("after the idle timeout");
}

/// A client that stops reading while the upstream sends 256 MiB: the upstream is held back
/// (bounded bytes in flight), the proxy's memory does not grow, and once the client reads
/// again every byte arrives in order.
pub fn slow_reader<P: ProxyUnderTest>() {
    const TOTAL: u64 = 256 * 1024 * 1024;
    /// Kernel socket buffers of the four socket ends plus the proxy's 16 KiB per direction hold
    /// every byte in flight (about 8 MiB measured on loopback); a proxy that queues without
    /// bound would take all 256 MiB.
    const MAX_IN_FLIGHT: u64 = 32 * 1024 * 1024;
    /// Growth of the proxy's resident memory allowed while the client stalls (measured: under
    /// 200 KiB for every adapter).
    const MAX_RSS_GROWTH: u64 = 16 * 1024 * 1024;
    let block = Arc::new(pattern_block());
    let written = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let upstream = {
        let (block, written, done) = (Arc::clone(&block), Arc::clone(&written), Arc::clone(&done));
        Upstream::spawn(move |mut stream| {
            if raw::accept_upgrade(&mut stream).is_none() {
                return;
            }
            stream
                .set_write_timeout(Some(Duration::from_secs(60)))
                .unwrap();
            let mut sent = 0u64;
            while sent < TOTAL {
                let at = (sent % PATTERN_PERIOD as u64) as usize;
                let n = (TOTAL - sent).min(64 * 1024) as usize;
                if stream.write_all(&block[at..at + n]).is_err() {
                    return;
                }
                sent += n as u64;
                written.store(sent, Ordering::SeqCst);
            }
            done.store(true, Ordering::SeqCst);
            let _ = stream.shutdown(Shutdown::Write);
            let mut rest = Vec::new();
            read_to_eof(&mut stream, &mut rest);
        })
    };
    let proxy = Proxy::start_isolated::<P>(&Setup::new(upstream.addr()));
    let mut client = proxy.connect();
    let (head, early) = raw::upgrade(&mut client, "", b"");
    assert_eq!(head.status, 101);
    let rss_before = proxy.rss();

    // Wait until the upstream is stuck (no progress for 500 ms).
    let mut last = (written.load(Ordering::SeqCst), Instant::now());
    let stalled = wait_until(Duration::from_secs(20), || {
        let now = written.load(Ordering::SeqCst);
        if now != last.0 {
            last = (now, Instant::now());
        }
        now >= TOTAL || last.1.elapsed() > Duration::from_millis(500)
    });
    let in_flight = written.load(Ordering::SeqCst);
    assert!(
        stalled && !done.load(Ordering::SeqCst),
        "{}: the upstream sent all {TOTAL} bytes to a client that reads nothing",
        proxy.name()
    );
    assert!(
        in_flight <= MAX_IN_FLIGHT,
        "{}: {in_flight} bytes in flight to a stalled client",
        proxy.name()
    );
    let growth = proxy.rss().saturating_sub(rss_before);
    assert!(
        growth <= MAX_RSS_GROWTH,
        "{}: resident memory grew by {growth} bytes while the client stalled",
        proxy.name()
    );

    // Now read everything and check it.
    let verifier = Verifier::new(block);
    let received = verifier.read_all(&mut client, early);
    assert_eq!(received, TOTAL, "bytes delivered after the stall");
    eprintln!(
        "{}: slow reader: {in_flight} bytes in flight at the stall, RSS growth {growth} bytes",
        proxy.name()
    );
}

/// Period of the slow-reader pattern (prime, so that a lost or repeated chunk shows).
const PATTERN_PERIOD: usize = 65_521;

/// The pattern, twice over plus a write's worth, so that any window of up to 64 KiB starting at
/// offset `i % PATTERN_PERIOD` is one slice.
fn pattern_block() -> Vec<u8> {
    let period = Rng::new(0x51_0b).bytes(PATTERN_PERIOD);
    let mut block = Vec::with_capacity(PATTERN_PERIOD * 3);
    for _ in 0..3 {
        block.extend_from_slice(&period);
    }
    block
}

/// Checks a stream of [`pattern_block`] bytes without storing it.
struct Verifier {
    block: Arc<Vec<u8>>,
}

impl Verifier {
    fn new(block: Arc<Vec<u8>>) -> Self {
        Self { block }
    }

    /// Reads `stream` to EOF (after `first` bytes already read), comparing every byte; returns
    /// the count.
    fn read_all(&self, stream: &mut TcpStream, first: Vec<u8>) -> u64 {
        let mut offset = 0u64;
        self.check(&first, &mut offset);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match stream.read(&mut buf) {
                Ok(0) => return offset,
                Ok(n) => self.check(&buf[..n], &mut offset),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => panic!("reading after the stall, at byte {offset}: {e}"),
            }
        }
    }

    fn check(&self, bytes: &[u8], offset: &mut u64) {
        let at = (*offset % PATTERN_PERIOD as u64) as usize;
        assert!(
            bytes == &self.block[at..at + bytes.len()],
            "byte stream differs in the {} bytes at offset {offset}",
            bytes.len()
        );
        *offset += bytes.len() as u64;
    }
}
