//! A client that goes away at each stage of a session, and a proxy shut down with sessions at
//! every stage. Whatever the stage, the session must end (`open_sessions()` back to 0), the
//! upstream connection must be closed, and the proxy's process must hold no more file
//! descriptors (and, after a shutdown, threads) than before.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::{self, open_fds, wait_until, Proxy, ProxyUnderTest, Setup, PATIENCE};
use crate::peers::http::{self, echo_server, MessageReader};
use crate::peers::raw::{self, closed_by_peer, read_head, read_to_eof};
use crate::peers::Upstream;

/// The stages at which the client disappears.
#[derive(Debug, Clone, Copy)]
enum Stage {
    /// Connected, nothing sent.
    Connected,
    /// Part of the request head sent.
    BeforeHeadComplete,
    /// A complete request sent; the upstream answers late.
    AfterHead,
    /// An upgrade request sent; the upstream's 101 comes late.
    WaitingFor101,
    /// Part of a Content-Length request body sent.
    MidBody,
    /// The response head received, its body still streaming.
    MidResponseBody,
    /// One exchange done, the connection kept alive for the next request.
    KeptAlive,
    /// The proxy answered 502 (the upstream's answer was not HTTP) and lingers.
    AfterA502,
    /// In an established tunnel, idle.
    InTunnel,
    /// In an established tunnel while the upstream streams to the client.
    InBusyTunnel,
    /// In a tunnel the client half-closed, while the upstream streams to it.
    TunnelHalfClosedByClient,
    /// In a tunnel the upstream half-closed.
    TunnelHalfClosedByUpstream,
}

const ALL: [Stage; 12] = [
    Stage::Connected,
    Stage::BeforeHeadComplete,
    Stage::AfterHead,
    Stage::WaitingFor101,
    Stage::MidBody,
    Stage::MidResponseBody,
    Stage::KeptAlive,
    Stage::AfterA502,
    Stage::InTunnel,
    Stage::InBusyTunnel,
    Stage::TunnelHalfClosedByClient,
    Stage::TunnelHalfClosedByUpstream,
];

impl Stage {
    /// Whether the proxy has an upstream connection at this stage (which it must close).
    fn reaches_upstream(self) -> bool {
        !matches!(self, Self::Connected | Self::BeforeHeadComplete)
    }
}

/// How long a session may take to end once its client left: well under every timeout of the
/// core (the 5 s linger after an error answer is the shortest), so that a session that only
/// ends when a timer fires fails the scenario.
const PROMPTLY: Duration = Duration::from_secs(3);

/// The upstream of [`client_disconnects_at_every_stage`]: answers plain requests and 101s after
/// 300 ms; by target, streams a response body (`/partial`), answers garbage (`/garbage`), or
/// in the tunnel streams (`/stream`), streams after the client's EOF (`/half-close`) or
/// half-closes first (`/fin-first`). Reports whether each connection was closed by the proxy.
fn upstream(closed: mpsc::Sender<bool>) -> Upstream {
    let closed = std::sync::Mutex::new(closed);
    Upstream::spawn(move |mut stream| {
        let closed = closed.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let Ok(Some((head, _))) = read_head(&mut stream) else {
            let _ = closed.send(true);
            return;
        };
        let request = raw::parse_request(&head);
        let ended = match request.target.as_str() {
            "/warmup" => {
                // Not reusable, so that no later stage lands on this connection.
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                );
                return;
            }
            "/partial" => {
                let _ =
                    stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100000000000\r\n\r\n");
                stream_until_error(&mut stream)
            }
            "/garbage" => {
                let _ = stream.write_all(b"this is not HTTP\r\n\r\n");
                let mut rest = Vec::new();
                read_to_eof(&mut stream, &mut rest)
            }
            _ if request.header("upgrade").is_some() => {
                thread::sleep(Duration::from_millis(300));
                let sent = stream
                    .write_all(&raw::switching_protocols(&request, ""))
                    .is_ok();
                sent && tunnel(&mut stream, &request.target)
            }
            _ => {
                thread::sleep(Duration::from_millis(300));
                // Not reusable: this connection must be closed, not pooled.
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                );
                let mut rest = Vec::new();
                read_to_eof(&mut stream, &mut rest)
            }
        };
        let _ = closed.send(ended);
    })
}

/// The upstream's side of a tunnel to `target`; true once the proxy closed it.
fn tunnel(stream: &mut TcpStream, target: &str) -> bool {
    let mut rest = Vec::new();
    match target {
        "/stream" => stream_until_error(stream),
        "/half-close" => read_to_eof(stream, &mut rest) && stream_until_error(stream),
        "/fin-first" => stream.shutdown(Shutdown::Write).is_ok() && read_to_eof(stream, &mut rest),
        _ => read_to_eof(stream, &mut rest),
    }
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
    client.send(&http::request("GET", "/warmup", None));
    let answer = client.expect_response();
    assert_eq!(answer.head.status, 200);
    client.get_mut().shutdown(Shutdown::Both).unwrap();
    drop(client);
}

/// An upgrade request for `target`.
fn upgrade_request_to(target: &str) -> Vec<u8> {
    String::from_utf8(raw::upgrade_request(""))
        .unwrap()
        .replacen("/chat", target, 1)
        .into_bytes()
}

/// Opens a tunnel to `target`; returns the client and the bytes after the 101.
fn open_tunnel(proxy: &Proxy, target: &str) -> (TcpStream, Vec<u8>) {
    let mut client = proxy.connect();
    client.write_all(&upgrade_request_to(target)).unwrap();
    let (head, rest) = read_head(&mut client).unwrap().expect("a 101");
    assert_eq!(raw::parse_response(&head).status, 101);
    (client, rest)
}

/// A client connection in `stage`.
fn enter(proxy: &Proxy, stage: Stage) -> TcpStream {
    let mut client = proxy.connect();
    match stage {
        Stage::Connected => {}
        Stage::BeforeHeadComplete => {
            client
                .write_all(b"GET /partial HTTP/1.1\r\nHost: a\r\nX-Half: ")
                .unwrap();
        }
        Stage::AfterHead => {
            client
                .write_all(&http::request("GET", "/slow", None))
                .unwrap();
        }
        Stage::WaitingFor101 => {
            client.write_all(&raw::upgrade_request("")).unwrap();
        }
        Stage::MidBody => {
            client
                .write_all(b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\n")
                .unwrap();
            client.write_all(&[b'x'; 1000]).unwrap();
        }
        Stage::MidResponseBody => {
            client
                .write_all(&http::request("GET", "/partial", None))
                .unwrap();
            let (head, _) = read_head(&mut client).unwrap().expect("a response head");
            assert_eq!(raw::parse_response(&head).status, 200);
        }
        Stage::KeptAlive | Stage::AfterA502 => {
            let (target, status) = match stage {
                Stage::KeptAlive => ("/keep", 200),
                _ => ("/garbage", 502),
            };
            let mut reader = MessageReader::new(client);
            reader.send(&http::request("GET", target, None));
            assert_eq!(reader.expect_response().head.status, status, "{stage:?}");
            client = reader.into_inner();
        }
        Stage::InTunnel => client = open_tunnel(proxy, "/chat").0,
        Stage::InBusyTunnel => {
            client = open_tunnel(proxy, "/stream").0;
            let _ = raw::read_exact_n(&mut client, 100_000, "streamed bytes");
        }
        Stage::TunnelHalfClosedByClient => {
            client = open_tunnel(proxy, "/half-close").0;
            client.shutdown(Shutdown::Write).unwrap();
            let _ = raw::read_exact_n(&mut client, 100_000, "bytes after our EOF");
        }
        Stage::TunnelHalfClosedByUpstream => {
            let (mut tunnel, mut rest) = open_tunnel(proxy, "/fin-first");
            assert!(
                read_to_eof(&mut tunnel, &mut rest) && rest.is_empty(),
                "the upstream's EOF reaches the client"
            );
            client = tunnel;
        }
    }
    client
}

/// For every stage: the client disconnects, the session ends promptly, the upstream connection
/// is closed, no file descriptor leaks.
pub fn client_disconnects_at_every_stage<P: ProxyUnderTest>() {
    let (closed_tx, closed) = mpsc::channel();
    let upstream = upstream(closed_tx);
    let proxy = Proxy::start_isolated::<P>(&Setup::new(upstream.addr()));
    warm_up(&proxy);
    proxy.assert_no_sessions("after the warm-up");
    thread::sleep(Duration::from_millis(100));
    let baseline = Descriptors::baseline(&proxy, upstream.addr().port());
    for stage in ALL {
        let client = enter(&proxy, stage);
        proxy.assert_open_sessions(1, &format!("client in {stage:?}"));
        let left = Instant::now();
        drop(client);
        baseline.assert_settles(&proxy, &format!("client left at {stage:?}"));
        assert!(
            left.elapsed() < PROMPTLY,
            "{}: client left at {stage:?}: the session took {:?} to end",
            proxy.name(),
            left.elapsed()
        );
        if stage.reaches_upstream() {
            let upstream_closed = closed.recv_timeout(PATIENCE).unwrap_or(false);
            assert!(
                upstream_closed,
                "{}: client left at {stage:?}: the upstream connection was not closed",
                proxy.name()
            );
        }
    }
}

/// The descriptors a proxy held when it was idle, to tell whether a session left one behind.
///
/// A child process (the binary) holds only the proxy's descriptors: their number is compared.
/// A proxy in the test process shares it with the suite's other threads, and the isolation lock
/// does not cover everything they open: a test starting on another thread sets up its peers (an
/// upstream's listener, a Python peer's pipes) *before* it waits for the lock, so they can
/// appear in the middle of this scenario and stay until it ends. So in the test process each
/// descriptor opened since the baseline is looked at (`/proc/self/fd`, and `/proc/net/tcp*` for
/// the ports of a socket), and only what cannot be the proxy's is ignored: TCP sockets with no
/// end on the proxy's port or its upstream's, and pipes (the in-process proxies open none).
/// Anything else (a socket of the proxy in any state, even one gone from the TCP table, an
/// epoll or event descriptor) is a leak: no slack.
enum Descriptors {
    /// The number of descriptors of the proxy's own process.
    Child(usize),
    /// The test process's descriptors (number -> what it refers to) and the ports whose sockets
    /// are the proxy's (its listener's and its upstream's).
    InProcess {
        fds: BTreeMap<String, String>,
        ports: [u16; 2],
    },
}

/// How long new sockets may take to close before the TCP table is read to tell whose they are:
/// with tens of thousands of sockets in `TIME_WAIT` (the suite makes them) one read takes a
/// good part of a second.
const BEFORE_TCP_TABLE: Duration = Duration::from_millis(300);

impl Descriptors {
    /// Taken while the proxy is idle, after the warm-up.
    fn baseline(proxy: &Proxy, upstream_port: u16) -> Self {
        if proxy.in_process() {
            Self::InProcess {
                fds: descriptors(),
                ports: [proxy.addr().port(), upstream_port],
            }
        } else {
            Self::Child(proxy.open_fds())
        }
    }

    /// Waits until no session is open and the proxy holds no descriptor it did not hold at the
    /// baseline; fails naming the descriptors left.
    fn assert_settles(&self, proxy: &Proxy, what: &str) {
        let (baseline, ports) = match self {
            Self::Child(count) => return proxy.assert_settles(*count, what),
            Self::InProcess { fds, ports } => (fds, ports),
        };
        let started = Instant::now();
        // Sockets found to be another test's, and when the TCP table was last read.
        let mut strangers = BTreeMap::new();
        let mut table_read: Option<Instant> = None;
        let mut left = Vec::new();
        let settled = wait_until(PATIENCE, || {
            if proxy.open_sessions().unwrap_or(0) > 0 {
                return false;
            }
            left = new_descriptors(baseline, &strangers);
            let unknown_socket = left.iter().any(|(_, target)| target.starts_with("socket:"));
            let table_due = started.elapsed() >= BEFORE_TCP_TABLE
                && !table_read.is_some_and(|at| at.elapsed() < BEFORE_TCP_TABLE);
            if unknown_socket && table_due {
                table_read = Some(Instant::now());
                let tcp = tcp_ports();
                for (fd, target) in &left {
                    if tcp
                        .get(target)
                        .is_some_and(|ends| !ends.iter().any(|end| ports.contains(end)))
                    {
                        strangers.insert(fd.clone(), target.clone());
                    }
                }
                left = new_descriptors(baseline, &strangers);
            }
            left.is_empty()
        });
        assert!(
            settled,
            "{}: {what}: did not settle: open sessions {:?}, descriptors opened since the \
             baseline {left:?} (ignored as another test's: {strangers:?})",
            proxy.name(),
            proxy.open_sessions(),
        );
    }
}

/// The test process's descriptors: number -> what it refers to (`socket:[inode]`, `pipe:[..]`,
/// `anon_inode:[eventpoll]`, a path). Descriptors closed while they are listed are left out.
fn descriptors() -> BTreeMap<String, String> {
    let dir = "/proc/self/fd";
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {dir}: {e}"));
    entries
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let target = std::fs::read_link(entry.path()).ok()?;
            let fd = entry.file_name().to_string_lossy().into_owned();
            Some((fd, target.to_string_lossy().into_owned()))
        })
        .collect()
}

/// The descriptors opened since `baseline`, but for this listing's own, pipes, and `strangers`.
fn new_descriptors(
    baseline: &BTreeMap<String, String>,
    strangers: &BTreeMap<String, String>,
) -> Vec<(String, String)> {
    descriptors()
        .into_iter()
        .filter(|(fd, target)| {
            baseline.get(fd) != Some(target)
                && strangers.get(fd) != Some(target)
                && !target.starts_with("/proc/")
                && !target.starts_with("pipe:")
        })
        .collect()
}

/// The local and remote ports of the network namespace's TCP sockets, by `socket:[inode]`.
fn tcp_ports() -> HashMap<String, [u16; 2]> {
    let port = |address: &str| {
        let hex = address.rsplit(':').next()?;
        u16::from_str_radix(hex, 16).ok()
    };
    let mut ports = HashMap::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(remote), Some(inode)) =
                (fields.get(1), fields.get(2), fields.get(9))
            else {
                continue;
            };
            if let (Some(local), Some(remote)) = (port(local), port(remote)) {
                ports.insert(format!("socket:[{inode}]"), [local, remote]);
            }
        }
    }
    ports
}

/// Tunnels in [`live_sessions`].
const TUNNELS: usize = 10;

/// Opens sessions at every stage a shutdown may find them in: ten tunnels, one waiting for its
/// response, one halfway through a head, one connected and silent, and one kept alive after an
/// exchange whose upstream connection went back to the pool (opened last, so that no tunnel
/// takes that connection).
fn live_sessions(proxy: &Proxy) -> Vec<TcpStream> {
    let mut clients: Vec<TcpStream> = (0..TUNNELS)
        .map(|_| {
            let mut client = proxy.connect();
            assert_eq!(raw::upgrade(&mut client, "", b"").0.status, 101);
            client
        })
        .collect();
    let mut waiting = proxy.connect();
    waiting
        .write_all(&http::request("GET", "/hang", None))
        .unwrap();
    let mut partial = proxy.connect();
    partial.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n").unwrap();
    let silent = proxy.connect();
    let mut kept = MessageReader::new(proxy.connect());
    kept.send(&http::request("GET", "/pooled", None));
    assert_eq!(kept.expect_response().head.status, 200);
    clients.extend([waiting, partial, silent, kept.into_inner()]);
    clients
}

/// Shutting the proxy down ends every live session, whatever its stage: each client sees its
/// connection close, every upstream connection is closed (including the idle one in the pool),
/// and the proxy stops cleanly (the binary exits 0 on SIGTERM). A library proxy leaves no file
/// descriptor or thread behind in the test process.
pub fn shutdown_with_live_sessions<P: ProxyUnderTest>() {
    let upstream = Upstream::spawn(echo_server);
    let setup = Setup::new(upstream.addr());
    // A first proxy through the same stages warms up what lives as long as the process (an
    // async runtime's reactor thread, a blocking pool), so that the baseline taken after it
    // counts only what the second proxy must give back.
    let warm = Proxy::start_isolated::<P>(&setup);
    let clients = live_sessions(&warm);
    let isolation = warm.stop();
    drop(clients);
    let upstream_settled = || wait_until(PATIENCE, || upstream.active() == 0);
    assert!(
        upstream_settled(),
        "the warm-up proxy's upstream connections"
    );
    thread::sleep(Duration::from_millis(100));
    let pid = std::process::id();
    let (fds, threads) = (open_fds(pid), harness::threads(pid));

    let proxy = Proxy::start_holding::<P>(&setup, isolation);
    let mut clients = live_sessions(&proxy);
    proxy.assert_open_sessions(clients.len(), "sessions before the shutdown");
    // Tunnels, the awaited response and the pooled connection hold upstream connections.
    let held = TUNNELS + 2;
    assert!(
        wait_until(PATIENCE, || upstream.active() == held),
        "{}: {} upstream connections open before the shutdown, expected {held}",
        proxy.name(),
        upstream.active()
    );
    let started = Instant::now();
    let _isolation = proxy.stop();
    assert!(
        started.elapsed() < PATIENCE,
        "shutdown took {:?}",
        started.elapsed()
    );
    for (i, client) in clients.iter_mut().enumerate() {
        assert!(
            closed_by_peer(client),
            "{}: session {i} survived the shutdown",
            P::NAME
        );
    }
    drop(clients);
    assert!(
        upstream_settled(),
        "{}: {} upstream connections left open after the shutdown",
        P::NAME,
        upstream.active()
    );
    if P::IN_PROCESS {
        let released = wait_until(PATIENCE, || {
            open_fds(pid) <= fds && harness::threads(pid) <= threads
        });
        assert!(
            released,
            "{}: after the shutdown: {} fds (before the proxy: {fds}), {} threads (before: {threads})",
            P::NAME,
            open_fds(pid),
            harness::threads(pid)
        );
    }
}
