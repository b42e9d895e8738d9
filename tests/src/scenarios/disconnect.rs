//! A client that goes away at each stage of a session. Whatever the stage, the session must end
//! (`open_sessions()` back to 0), the upstream connection must be closed, and the proxy's
//! process must hold no more file descriptors than before.

use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use crate::harness::{Proxy, ProxyUnderTest, Setup, PATIENCE};
use crate::peers::http::{self, MessageReader};
use crate::peers::raw::{self, read_head, read_to_eof};
use crate::peers::Upstream;

/// The stages at which the client disappears.
#[derive(Debug, Clone, Copy)]
enum Stage {
    /// Part of the request head sent.
    BeforeHeadComplete,
    /// A complete request sent; the upstream answers late.
    AfterHead,
    /// An upgrade request sent; the upstream's 101 comes late.
    WaitingFor101,
    /// Part of a Content-Length body sent.
    MidBody,
    /// In an established tunnel, idle.
    InTunnel,
    /// In an established tunnel while the upstream streams to the client.
    InBusyTunnel,
}

const ALL: [Stage; 6] = [
    Stage::BeforeHeadComplete,
    Stage::AfterHead,
    Stage::WaitingFor101,
    Stage::MidBody,
    Stage::InTunnel,
    Stage::InBusyTunnel,
];

/// The upstream: answers plain requests after 300 ms, 101s after 300 ms, streams in the tunnel
/// when asked (`/stream`), and reports whether each connection was closed by the proxy.
fn upstream(closed: mpsc::Sender<bool>) -> Upstream {
    let closed = std::sync::Mutex::new(closed);
    Upstream::spawn(move |mut stream| {
        let closed = closed.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let Ok(Some((head, _))) = read_head(&mut stream) else {
            let _ = closed.send(true);
            return;
        };
        let request = raw::parse_request(&head);
        if request.target == "/warmup" {
            // Not reusable, so that no later stage lands on this connection.
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
            return;
        }
        thread::sleep(Duration::from_millis(300));
        let ended = if request.header("upgrade").is_some() {
            let sent = stream
                .write_all(&raw::switching_protocols(&request, ""))
                .is_ok();
            if sent && request.target == "/stream" {
                stream_until_error(&mut stream)
            } else {
                let mut rest = Vec::new();
                read_to_eof(&mut stream, &mut rest)
            }
        } else {
            // Not reusable: this connection must be closed, not pooled.
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
            let mut rest = Vec::new();
            read_to_eof(&mut stream, &mut rest)
        };
        let _ = closed.send(ended);
    })
}

/// Writes until the proxy stops accepting bytes (the connection closed); true if it did.
fn stream_until_error(stream: &mut TcpStream) -> bool {
    let chunk = vec![0x5a; 64 * 1024];
    for _ in 0..16 * 1024 {
        if stream.write_all(&chunk).is_err() {
            return true;
        }
    }
    false
}

fn warm_up(proxy: &Proxy) {
    let mut client = MessageReader::new(proxy.connect());
    client
        .get_mut()
        .write_all(&http::request("GET", "/warmup", None))
        .unwrap();
    let answer = client.response(false).unwrap().expect("warm-up response");
    assert_eq!(answer.head.status, 200);
    client.get_mut().shutdown(Shutdown::Both).unwrap();
    drop(client);
}

fn leave_at(proxy: &Proxy, stage: Stage) {
    let mut client = proxy.connect();
    match stage {
        Stage::BeforeHeadComplete => {
            client
                .write_all(b"GET /partial HTTP/1.1\r\nHost: a\r\nX-Half: ")
                .unwrap();
            thread::sleep(Duration::from_millis(50));
        }
        Stage::AfterHead => {
            client
                .write_all(&http::request("GET", "/slow", None))
                .unwrap();
            thread::sleep(Duration::from_millis(50));
        }
        Stage::WaitingFor101 => {
            client.write_all(&raw::upgrade_request("")).unwrap();
            thread::sleep(Duration::from_millis(50));
        }
        Stage::MidBody => {
            client
                .write_all(b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\n")
                .unwrap();
            client.write_all(&[b'x'; 1000]).unwrap();
            thread::sleep(Duration::from_millis(50));
        }
        Stage::InTunnel | Stage::InBusyTunnel => {
            let mut request = raw::upgrade_request("");
            if matches!(stage, Stage::InBusyTunnel) {
                request = String::from_utf8(request)
                    .unwrap()
                    .replacen("/chat", "/stream", 1)
                    .into_bytes();
            }
            client.write_all(&request).unwrap();
            let (head, _) = read_head(&mut client).unwrap().expect("a 101");
            assert_eq!(raw::parse_response(&head).status, 101);
            if matches!(stage, Stage::InBusyTunnel) {
                let _ = raw::read_exact_n(&mut client, 100_000, "streamed bytes");
            }
        }
    }
    drop(client);
}

/// For every stage: the client disconnects, the session ends, the upstream connection is closed,
/// no file descriptor leaks.
pub fn client_disconnects_at_every_stage<P: ProxyUnderTest>() {
    let (closed_tx, closed) = mpsc::channel();
    let upstream = upstream(closed_tx);
    let proxy = Proxy::start_isolated::<P>(&Setup::new(upstream.addr()));
    warm_up(&proxy);
    proxy.assert_no_sessions("after the warm-up");
    thread::sleep(Duration::from_millis(100));
    let baseline = proxy.open_fds();
    for stage in ALL {
        leave_at(&proxy, stage);
        proxy.assert_settles(baseline, &format!("client left at {stage:?}"));
        if !matches!(stage, Stage::BeforeHeadComplete) {
            let upstream_closed = closed.recv_timeout(PATIENCE).unwrap_or(false);
            assert!(
                upstream_closed,
                "{}: client left at {stage:?}: the upstream connection was not closed",
                proxy.name()
            );
        }
    }
}

/// Shutting the proxy down with live tunnels ends them: clients see their connections close,
/// and the proxy stops cleanly (the binary exits 0 on SIGTERM).
pub fn shutdown_with_live_tunnels<P: ProxyUnderTest>() {
    let upstream = Upstream::spawn(raw::echo_tunnel);
    let proxy = Proxy::start_isolated::<P>(&Setup::new(upstream.addr()));
    let mut clients: Vec<TcpStream> = (0..10)
        .map(|_| {
            let mut client = proxy.connect();
            assert_eq!(raw::upgrade(&mut client, "", b"").0.status, 101);
            client
        })
        .collect();
    if let Some(open) = proxy.open_sessions() {
        assert_eq!(open, 10);
    }
    let started = std::time::Instant::now();
    proxy.shutdown();
    assert!(
        started.elapsed() < PATIENCE,
        "shutdown took {:?}",
        started.elapsed()
    );
    for client in &mut clients {
        assert!(
            raw::closed_by_peer(client),
            "a live tunnel survived shutdown"
        );
    }
}
