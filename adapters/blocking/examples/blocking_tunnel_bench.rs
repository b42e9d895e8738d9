//! Measures this adapter on 127.0.0.1: tunnel throughput and memory per idle tunnel.
//!
//! ```text
//! cargo run --release -p switchyard-blocking --example blocking_tunnel_bench -- throughput [ROUNDS [WORKERS]]
//! cargo run --release -p switchyard-blocking --example blocking_tunnel_bench -- idle [TUNNELS]
//! ```
//!
//! * `throughput`: one tunnel to an echo upstream; each round sends 1 MiB of random bytes in
//!   random-size writes (1 B to 64 KiB) while reading the echo back, and checks it byte for
//!   byte. Prints MB/s (10^6 bytes of payload per second) over all rounds, and the same measured
//!   straight to the echo server, without the proxy, for scale. `WORKERS`: proxy worker
//!   threads (default 1: the one tunnel needs one, and the clients and the echo server need
//!   the other cores).
//! * `idle`: opens 100 tunnels to warm up, lets them idle 1.5 s (the core frees the buffers of a
//!   connection idle for 1 s), reads the process RSS, then twice opens `TUNNELS` more, idles
//!   again and prints the RSS delta per tunnel. The clients and the upstream are plain std
//!   sockets driven from one thread, so the delta is the proxy's. With glibc's default
//!   settings the first batch's delta also holds the heap its handshakes left behind: their
//!   receive buffers, all alive at once when a batch opens within the 1 s grace, are freed as
//!   holes between live allocations that the allocator keeps; later tunnels reuse those holes,
//!   which makes the second delta understate. To see only what an idle tunnel keeps, let glibc
//!   serve buffers of 4 KiB and more with `mmap` (given back to the system when freed):
//!   `GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4096 target/release/examples/blocking_tunnel_bench idle 1000`

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use switchyard_blocking::{spawn, ProxyConfig};
use switchyard_proto::Config;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().map_or("throughput", String::as_str);
    let count = args.get(1).and_then(|a| a.parse().ok());
    match mode {
        "throughput" => {
            let workers = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(1);
            throughput(count.unwrap_or(200), workers);
        }
        "idle" => idle(count.unwrap_or(1000)),
        _ => {
            eprintln!("usage: blocking_tunnel_bench throughput [ROUNDS [WORKERS]] | idle [TUNNELS]")
        }
    }
}

const SWITCH: &[u8] =
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
const UPGRADE: &[u8] = b"GET /bench HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
const MIB: usize = 1 << 20;

fn throughput(rounds: usize, workers: usize) {
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream_addr = upstream.local_addr().unwrap();
    thread::spawn(move || {
        for stream in upstream.incoming().flatten() {
            thread::spawn(move || echo(stream));
        }
    });
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let config = ProxyConfig::new(Config::default(), vec![upstream_addr.to_string()]);
    let proxy = spawn(listener, config, Some(workers)).unwrap();

    let mut through_proxy = TcpStream::connect(proxy.local_addr()).unwrap();
    through_proxy.write_all(UPGRADE).unwrap();
    read_head(&mut through_proxy);
    let mut direct = TcpStream::connect(upstream_addr).unwrap();
    direct.write_all(UPGRADE).unwrap();
    read_head(&mut direct);

    let payload = random_bytes(MIB, 1);
    let proxied = pump(through_proxy, &payload, rounds);
    let baseline = pump(direct, &payload, rounds);
    println!(
        "blocking adapter: {rounds} x 1 MiB echo through the proxy ({workers} worker): {proxied:.0} MB/s \
         (straight to the echo server: {baseline:.0} MB/s)"
    );
    proxy.shutdown();
}

/// Echoes `rounds` times `payload` through `stream`; returns the payload MB/s.
fn pump(stream: TcpStream, payload: &[u8], rounds: usize) -> f64 {
    stream.set_nodelay(true).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sent = payload.to_vec();
    let started = Instant::now();
    let sender = thread::spawn(move || {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for _ in 0..rounds {
            let mut at = 0;
            while at < sent.len() {
                let n = (rng.next() as usize % (64 * 1024) + 1).min(sent.len() - at);
                writer.write_all(&sent[at..at + n]).unwrap();
                at += n;
            }
        }
        writer.shutdown(Shutdown::Write).unwrap();
    });
    let mut reader = stream;
    let mut back = vec![0u8; MIB];
    for round in 0..rounds {
        reader.read_exact(&mut back).unwrap();
        assert!(back == payload, "round {round}: the echo differs");
    }
    let elapsed = started.elapsed();
    sender.join().unwrap();
    (rounds * MIB) as f64 / elapsed.as_secs_f64() / 1e6
}

fn idle(tunnels: usize) {
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let config = ProxyConfig::new(
        Config::default(),
        vec![upstream.local_addr().unwrap().to_string()],
    );
    let proxy = spawn(listener, config, Some(2)).unwrap();
    let mut held = Vec::with_capacity(2 * (2 * tunnels + 100));
    let mut batch = |n: usize| {
        open_tunnels(proxy.local_addr(), &upstream, n, &mut held);
        // The core frees the buffers of a connection idle for 1 s.
        thread::sleep(Duration::from_millis(1500));
        rss_kib()
    };
    let warm = batch(100);
    let first = batch(tunnels);
    let second = batch(tunnels);
    assert_eq!(proxy.open_sessions(), 2 * tunnels + 100);
    let per = |from: u64, to: u64| (to as f64 - from as f64) / tunnels as f64;
    println!(
        "blocking adapter, RSS per idle tunnel: first {tunnels}: {:.2} KiB ({warm} -> {first} KiB); \
         next {tunnels}: {:.2} KiB ({first} -> {second} KiB)",
        per(warm, first),
        per(first, second),
    );
    drop(held);
    proxy.shutdown();
}

/// Opens `n` tunnels through `proxy` to `upstream` (answered from this thread); keeps both ends.
fn open_tunnels(proxy: SocketAddr, upstream: &TcpListener, n: usize, held: &mut Vec<TcpStream>) {
    for _ in 0..n {
        let mut client = TcpStream::connect(proxy).unwrap();
        client.write_all(UPGRADE).unwrap();
        let (mut server, _) = upstream.accept().unwrap();
        read_head(&mut server);
        server.write_all(SWITCH).unwrap();
        read_head(&mut client);
        held.push(client);
        held.push(server);
    }
}

fn echo(mut stream: TcpStream) {
    read_head(&mut stream);
    stream.write_all(SWITCH).unwrap();
    stream.set_nodelay(true).unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if stream.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = stream.shutdown(Shutdown::Write);
}

/// Reads byte by byte up to the end of a head, so that nothing after it is consumed.
fn read_head(stream: &mut TcpStream) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed);
    (0..n).map(|_| (rng.next() >> 32) as u8).collect()
}

/// xorshift64*: deterministic, good enough for payloads and sizes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}
