//! What every scenario runs against: a proxy started from a [`Setup`], behind one trait.
//!
//! A scenario is written once, generic over [`ProxyUnderTest`], and never knows whether the proxy
//! is a library running on threads of the test process or the `switchyard` binary in a child
//! process. [`Proxy`] is the handle a scenario holds: the address to connect to, the leak
//! checks (open sessions for the libraries, open file descriptors for both), and a shutdown that
//! asserts the proxy stops cleanly.
//!
//! Tests of one binary run in parallel threads. Counting the file descriptors of the test process
//! is only meaningful while no other test opens or closes sockets, so a scenario that counts them
//! starts its proxy with [`Proxy::start_isolated`], which holds the suite-wide lock exclusively;
//! every other scenario holds it shared. A scenario that needs the same lock across two proxies
//! (a warm-up proxy, then the one it measures) takes it back with [`Proxy::stop`] and hands it to
//! [`Proxy::start_holding`].

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use switchyard_proto::Config;

/// How long a scenario waits for anything that should happen "soon" before failing.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// What a proxy under test is started with. Only settings that the binary's flags can express
/// are here, so every scenario runs unchanged against the binary too.
#[derive(Debug, Clone)]
pub struct Setup {
    /// Upstream servers (`--upstream`, repeatable: round-robin with failover).
    pub upstreams: Vec<SocketAddr>,
    /// `--tunnel-idle-timeout` (core `Timeouts::tunnel_idle`).
    pub tunnel_idle: Option<Duration>,
    /// `--read-timeout` (core `Timeouts::upstream_response`).
    pub upstream_response: Option<Duration>,
    /// `--connect-timeout` (core `Timeouts::connect`).
    pub connect: Option<Duration>,
    /// `--header-timeout` (core `Timeouts::client_header`).
    pub client_header: Option<Duration>,
    /// `--workers`: executor or worker threads.
    pub workers: usize,
}

impl Setup {
    /// Proxy everything to `upstream` with the core's defaults.
    pub fn new(upstream: SocketAddr) -> Self {
        Self::group(vec![upstream])
    }

    /// Proxy to a round-robin group of upstreams.
    pub fn group(upstreams: Vec<SocketAddr>) -> Self {
        Self {
            upstreams,
            tunnel_idle: None,
            upstream_response: None,
            connect: None,
            client_header: None,
            workers: 2,
        }
    }

    /// Sets the tunnel idle timeout.
    pub fn tunnel_idle(mut self, timeout: Duration) -> Self {
        self.tunnel_idle = Some(timeout);
        self
    }

    /// Sets the upstream response (read) timeout.
    pub fn upstream_response(mut self, timeout: Duration) -> Self {
        self.upstream_response = Some(timeout);
        self
    }

    /// The core configuration the library adapters get.
    pub fn core(&self) -> Config {
        let mut core = Config::default();
        let timeouts = &mut core.timeouts;
        let settings = [
            (self.tunnel_idle, &mut timeouts.tunnel_idle),
            (self.upstream_response, &mut timeouts.upstream_response),
            (self.connect, &mut timeouts.connect),
            (self.client_header, &mut timeouts.client_header),
        ];
        for (value, field) in settings {
            if let Some(value) = value {
                *field = value;
            }
        }
        core
    }

    /// The upstreams as `host:port` strings.
    pub fn upstream_strings(&self) -> Vec<String> {
        self.upstreams.iter().map(ToString::to_string).collect()
    }

    /// The binary's command-line flags for this setup (without `--listen`).
    pub fn flags(&self) -> Vec<String> {
        let mut flags = Vec::new();
        for upstream in &self.upstreams {
            flags.extend(["--upstream".to_owned(), upstream.to_string()]);
        }
        let durations = [
            ("--tunnel-idle-timeout", self.tunnel_idle),
            ("--read-timeout", self.upstream_response),
            ("--connect-timeout", self.connect),
            ("--header-timeout", self.client_header),
        ];
        for (flag, value) in durations {
            if let Some(value) = value {
                flags.extend([flag.to_owned(), format!("{}ms", value.as_millis())]);
            }
        }
        flags.extend(["--workers".to_owned(), self.workers.to_string()]);
        flags
    }
}

/// One way of running the proxy: a library adapter or the binary.
pub trait ProxyUnderTest {
    /// A short name for messages.
    const NAME: &'static str;
    /// Whether the proxy runs inside the test process (its file descriptors are ours).
    const IN_PROCESS: bool;
    /// Starts a proxy listening on an ephemeral port of 127.0.0.1.
    fn start(setup: &Setup) -> Box<dyn Running>;
}

/// A started proxy, as its implementation sees it.
pub trait Running: Send {
    /// The address it listens on.
    fn addr(&self) -> SocketAddr;
    /// Client connections whose session has not ended (None: not observable, e.g. the binary).
    fn open_sessions(&self) -> Option<usize>;
    /// The process the proxy runs in (the test process for the libraries).
    fn pid(&self) -> u32;
    /// Stops the proxy and asserts that it stopped cleanly.
    fn shutdown(self: Box<Self>);
}

static ISOLATION: RwLock<()> = RwLock::new(());

/// The suite-wide lock a scenario holds while its proxy runs: shared, or exclusive while it
/// counts the test process's resources.
pub struct Isolation(#[allow(dead_code)] Guard);

enum Guard {
    Shared(#[allow(dead_code)] RwLockReadGuard<'static, ()>),
    Exclusive(#[allow(dead_code)] RwLockWriteGuard<'static, ()>),
}

impl Isolation {
    /// Held alongside other tests.
    pub fn shared() -> Self {
        Self(Guard::Shared(
            ISOLATION.read().unwrap_or_else(|e| e.into_inner()),
        ))
    }

    /// Held while no other test of this process runs a proxy, if `P` runs in this process (a
    /// child process needs no isolation, so none is taken for it).
    pub fn exclusive_for<P: ProxyUnderTest>() -> Self {
        if P::IN_PROCESS {
            Self(Guard::Exclusive(
                ISOLATION.write().unwrap_or_else(|e| e.into_inner()),
            ))
        } else {
            Self::shared()
        }
    }
}

/// A running proxy held by a scenario. Dropping it stops the proxy.
pub struct Proxy {
    running: Option<Box<dyn Running>>,
    name: &'static str,
    in_process: bool,
    // Declared last: released after the proxy stopped.
    isolation: Option<Isolation>,
}

impl Proxy {
    /// Starts `P` alongside other tests.
    pub fn start<P: ProxyUnderTest>(setup: &Setup) -> Self {
        Self::start_holding::<P>(setup, Isolation::shared())
    }

    /// Starts `P` while no other test of this process runs (needed to count the test process's
    /// file descriptors, threads or memory).
    pub fn start_isolated<P: ProxyUnderTest>(setup: &Setup) -> Self {
        Self::start_holding::<P>(setup, Isolation::exclusive_for::<P>())
    }

    /// Starts `P` under a lock already held (see [`stop`](Self::stop)).
    pub fn start_holding<P: ProxyUnderTest>(setup: &Setup, isolation: Isolation) -> Self {
        Self {
            running: Some(P::start(setup)),
            name: P::NAME,
            in_process: P::IN_PROCESS,
            isolation: Some(isolation),
        }
    }

    fn running(&self) -> &dyn Running {
        self.running.as_deref().expect("proxy already shut down")
    }

    /// The proxy's name (`tokio`, `binary`...).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The address to connect to.
    pub fn addr(&self) -> SocketAddr {
        self.running().addr()
    }

    /// A new client connection, with read and write timeouts so that no scenario hangs.
    pub fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(self.addr()).expect("connect to the proxy");
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        stream.set_write_timeout(Some(PATIENCE)).unwrap();
        stream.set_nodelay(true).unwrap();
        stream
    }

    /// Open sessions, where observable.
    pub fn open_sessions(&self) -> Option<usize> {
        self.running().open_sessions()
    }

    /// Open file descriptors of the process the proxy runs in.
    pub fn open_fds(&self) -> usize {
        open_fds(self.running().pid())
    }

    /// Resident memory of the process the proxy runs in, in bytes.
    pub fn rss(&self) -> u64 {
        rss_bytes(self.running().pid())
    }

    /// Whether the proxy runs in the test process.
    pub fn in_process(&self) -> bool {
        self.in_process
    }

    /// Waits until every session ended (where observable) and the proxy's process holds no more
    /// file descriptors than `baseline_fds` (taken with [`open_fds`](Self::open_fds) while idle).
    pub fn assert_settles(&self, baseline_fds: usize, what: &str) {
        let settled = wait_until(PATIENCE, || {
            self.open_sessions().unwrap_or(0) == 0 && self.open_fds() <= baseline_fds
        });
        assert!(
            settled,
            "{}: {what}: did not settle: open sessions {:?}, open fds {} (baseline {baseline_fds})",
            self.name,
            self.open_sessions(),
            self.open_fds(),
        );
    }

    /// Waits until no session is open (no-op where not observable).
    pub fn assert_no_sessions(&self, what: &str) {
        let settled = wait_until(PATIENCE, || self.open_sessions().unwrap_or(0) == 0);
        assert!(
            settled,
            "{}: {what}: sessions still open: {:?}",
            self.name,
            self.open_sessions()
        );
    }

    /// Waits until exactly `expected` sessions are open (no-op where not observable): the
    /// proxy has accepted what the scenario set up.
    pub fn assert_open_sessions(&self, expected: usize, what: &str) {
        let reached = wait_until(PATIENCE, || {
            self.open_sessions().map_or(true, |open| open == expected)
        });
        assert!(
            reached,
            "{}: {what}: {:?} sessions open, expected {expected}",
            self.name,
            self.open_sessions()
        );
    }

    /// Stops the proxy, asserting a clean stop.
    pub fn shutdown(self) {
        drop(self.stop());
    }

    /// Stops the proxy, asserting a clean stop, and hands back the suite-wide lock it held, for
    /// the next proxy of the same scenario ([`start_holding`](Self::start_holding)).
    pub fn stop(mut self) -> Isolation {
        if let Some(running) = self.running.take() {
            running.shutdown();
        }
        self.isolation.take().expect("the lock is held until stop")
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            if std::thread::panicking() {
                // Stop it, but do not pile a second panic on the first.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    running.shutdown();
                }));
            } else {
                running.shutdown();
            }
        }
    }
}

/// Polls `condition` every 10 ms until it holds (true) or `limit` passes (false).
pub fn wait_until(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The cargo target directory the running test executable was built into
/// (`<target-dir>/<profile>/deps/<test executable>`).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.ancestors()
        .nth(3)
        .expect("test executable under <target-dir>/<profile>/deps")
        .to_path_buf()
}

/// Open file descriptors of process `pid` (Linux `/proc`).
pub fn open_fds(pid: u32) -> usize {
    let dir = format!("/proc/{pid}/fd");
    std::fs::read_dir(Path::new(&dir))
        .map(|entries| entries.count())
        .unwrap_or_else(|e| panic!("cannot list {dir}: {e}"))
}

/// Threads of process `pid` (Linux `/proc`).
pub fn threads(pid: u32) -> usize {
    let dir = format!("/proc/{pid}/task");
    std::fs::read_dir(Path::new(&dir))
        .map(|entries| entries.count())
        .unwrap_or_else(|e| panic!("cannot list {dir}: {e}"))
}

/// Resident set size of process `pid` in bytes (Linux `/proc`).
pub fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kib| kib * 1024)
}
