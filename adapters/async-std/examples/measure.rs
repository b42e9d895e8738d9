//! Measures the async-std adapter on 127.0.0.1: tunnel echo throughput and memory per idle
//! tunnel.
//!
//! ```text
//! cargo run --release -p switchyard-async-std --example measure -- throughput
//! cargo run --release -p switchyard-async-std --example measure -- idle [TUNNELS]
//! ```
//!
//! * `throughput`: echoes 1 MiB of random bytes through one tunnel (a writer thread, a reader
//!   thread, an echoing upstream on std threads), 64 times, and prints the median and best MB/s
//!   (MB = 10^6 bytes, counted one way), beside the same echo without the proxy.
//! * `idle`: opens TUNNELS (default 1000) tunnels, waits 2 s (the sessions free their buffers one
//!   second after the last read), and prints the growth of this process's resident memory
//!   divided by TUNNELS. The upstream and the clients are one thread each and keep only their
//!   sockets, so the growth is the proxy's. Run with `MALLOC_MMAP_THRESHOLD_=32768` to see the
//!   live memory without what glibc keeps of the freed setup buffers.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use switchyard_async_std::{spawn, ProxyConfig};
use switchyard_proto::Config;

const UPGRADE: &[u8] = b"GET /echo HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
const SWITCH: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("throughput") => throughput(),
        Some("idle") => idle(args.get(1).map_or(1000, |n| n.parse().expect("a number"))),
        _ => eprintln!("usage: measure throughput | measure idle [TUNNELS]"),
    }
}

fn proxy_to(upstream: SocketAddr) -> switchyard_async_std::ProxyHandle {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let config = ProxyConfig::new(Config::default(), vec![upstream.to_string()]);
    spawn(listener, config, None).unwrap()
}

/// Reads a head up to the blank line, byte by byte (setup only).
fn read_head(stream: &mut TcpStream) -> Vec<u8> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).unwrap(), 1, "EOF in a head");
        head.push(byte[0]);
    }
    head
}

/// An upstream that answers every upgrade with a 101 and echoes, one thread per connection.
fn echo_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            stream.set_nodelay(true).unwrap();
            thread::spawn(move || {
                read_head(&mut stream);
                stream.write_all(SWITCH).unwrap();
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if stream.write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    addr
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Echoes `data` through `stream`; returns the time from the first byte written to the last
/// byte read back.
fn echo_once(stream: &TcpStream, data: &[u8]) -> Duration {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = stream.try_clone().unwrap();
    let payload = data.to_vec();
    let start = Instant::now();
    let sender = thread::spawn(move || writer.write_all(&payload).unwrap());
    let mut got = vec![0u8; data.len()];
    reader.read_exact(&mut got).unwrap();
    let elapsed = start.elapsed();
    sender.join().unwrap();
    assert!(got == data, "echo differs");
    elapsed
}

fn report(name: &str, mut times: Vec<Duration>, bytes: usize) {
    times.sort();
    let mbps = |d: Duration| bytes as f64 / d.as_secs_f64() / 1e6;
    println!(
        "{name}: median {:.0} MB/s, best {:.0} MB/s ({} runs of {} KiB)",
        mbps(times[times.len() / 2]),
        mbps(times[0]),
        times.len(),
        bytes / 1024
    );
}

fn throughput() {
    let upstream = echo_upstream();
    let data = random_bytes(1 << 20);
    let runs = 64;

    let mut direct = TcpStream::connect(upstream).unwrap();
    direct.set_nodelay(true).unwrap();
    direct.write_all(UPGRADE).unwrap();
    read_head(&mut direct);
    let times = (0..runs).map(|_| echo_once(&direct, &data)).collect();
    report("direct to the upstream (no proxy)", times, data.len());

    let handle = proxy_to(upstream);
    let mut stream = TcpStream::connect(handle.local_addr()).unwrap();
    stream.set_nodelay(true).unwrap();
    stream.write_all(UPGRADE).unwrap();
    assert!(read_head(&mut stream).starts_with(b"HTTP/1.1 101"));
    let times = (0..runs).map(|_| echo_once(&stream, &data)).collect();
    report("through the switchyard tunnel", times, data.len());
    drop(stream);
    handle.shutdown();
}

fn rss_kib() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn idle(tunnels: usize) {
    // One upstream thread: accept, read the head, answer 101, keep the socket.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream = listener.local_addr().unwrap();
    let accepter = thread::spawn(move || {
        let mut kept = Vec::with_capacity(tunnels + 1);
        for _ in 0..=tunnels {
            let (mut stream, _) = listener.accept().unwrap();
            read_head(&mut stream);
            stream.write_all(SWITCH).unwrap();
            kept.push(stream);
        }
        kept
    });
    let handle = proxy_to(upstream);
    let open = |n: usize| -> Vec<TcpStream> {
        (0..n)
            .map(|_| {
                let mut s = TcpStream::connect(handle.local_addr()).unwrap();
                s.write_all(UPGRADE).unwrap();
                assert!(read_head(&mut s).starts_with(b"HTTP/1.1 101"));
                s
            })
            .collect()
    };
    // Warm up: one tunnel, so that the reactor, the executor and the pool exist.
    let warm = open(1);
    thread::sleep(Duration::from_secs(2));
    let mut clients = Vec::with_capacity(tunnels);
    let before = rss_kib();
    clients.extend(open(tunnels));
    thread::sleep(Duration::from_secs(2));
    let after = rss_kib();
    assert_eq!(handle.open_sessions(), tunnels + 1);
    println!(
        "{tunnels} idle tunnels: RSS {before} KiB -> {after} KiB, {:.2} KiB per idle tunnel",
        (after - before) as f64 / tunnels as f64
    );
    drop((warm, clients));
    handle.shutdown();
    drop(accepter.join().unwrap());
}
