//! The processes of the race: the backend and the proxies, started from their binaries and
//! generated configurations, and what `/proc` says about them (CPU time, resident memory, open
//! descriptors).
//!
//! Every proxy is read as a process tree (nginx is a master and a worker; switchyard and
//! HAProxy are one process), so "the proxy's CPU" and "the proxy's memory" mean the same thing
//! for all three. Nothing here touches a system service: nginx runs with `-p` a prefix of our
//! own and `-c` a configuration rendered from `benches/e2e/nginx.conf.in`, HAProxy in the
//! foreground (`-db`) with `haproxy.cfg.in`.

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// How long a process may take to start listening.
const START_LIMIT: Duration = Duration::from_secs(15);

/// How long a process may take to exit after SIGTERM before it is killed.
const STOP_LIMIT: Duration = Duration::from_secs(10);

/// The proxies of the race.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Kind {
    Switchyard,
    Nginx,
    Haproxy,
    /// nginx with `''` instead of `close` in the `Connection` map: upstream keep-alive works for
    /// plain requests. Only the keep-alive test runs against it.
    NginxKeepalive,
    /// The same core behind the tokio adapter (`race-switchyard-tokio`); only when asked for.
    SwitchyardTokio,
}

impl Kind {
    /// Every proxy, in the order they take turns.
    pub(crate) const ALL: [Self; 5] = [
        Self::Switchyard,
        Self::Nginx,
        Self::Haproxy,
        Self::NginxKeepalive,
        Self::SwitchyardTokio,
    ];

    /// The proxies of a race unless `--proxies` says otherwise.
    pub(crate) const DEFAULT: [Self; 4] = [
        Self::Switchyard,
        Self::Nginx,
        Self::Haproxy,
        Self::NginxKeepalive,
    ];

    pub(crate) fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Switchyard => "switchyard",
            Self::Nginx => "nginx",
            Self::Haproxy => "haproxy",
            Self::NginxKeepalive => "nginx-ka",
            Self::SwitchyardTokio => "switchyard-tokio",
        }
    }
}

/// Where the binaries and templates are, and how to pin.
#[derive(Clone, Debug)]
pub(crate) struct Tools {
    pub(crate) switchyard: PathBuf,
    /// `race-switchyard-tokio`.
    pub(crate) switchyard_tokio: PathBuf,
    pub(crate) nginx: PathBuf,
    pub(crate) haproxy: PathBuf,
    pub(crate) backend: PathBuf,
    pub(crate) templates: PathBuf,
    /// Scratch directory: configurations, prefixes, logs.
    pub(crate) work: PathBuf,
    /// Run the proxies under `taskset -c CPU`.
    pub(crate) proxy_cpu: Option<String>,
    /// The descriptor limit the proxies inherit (nginx's `worker_connections`, HAProxy's
    /// `maxconn` are sized from it).
    pub(crate) fd_limit: u64,
}

/// A started process, listening.
#[derive(Debug)]
pub(crate) struct Running {
    pub(crate) name: &'static str,
    pub(crate) addr: SocketAddr,
    pub(crate) pid: u32,
    child: Child,
}

/// A started proxy.
#[derive(Debug)]
pub(crate) struct Proxy {
    pub(crate) kind: Kind,
    pub(crate) process: Running,
}

/// Starts the backend (on the caller's CPUs: the race runs it beside the load generator).
pub(crate) fn start_backend(tools: &Tools) -> io::Result<Running> {
    let mut cmd = Command::new(&tools.backend);
    cmd.args(["--listen", "127.0.0.1:0"]);
    spawn_announcing("race-backend", cmd, &tools.work.join("backend.log"))
}

/// Starts one proxy in front of `backend`.
pub(crate) fn start_proxy(kind: Kind, tools: &Tools, backend: SocketAddr) -> io::Result<Proxy> {
    let process = start(kind, tools, backend)?;
    Ok(Proxy { kind, process })
}

fn start(kind: Kind, tools: &Tools, backend: SocketAddr) -> io::Result<Running> {
    let mut cmd = match &tools.proxy_cpu {
        Some(cpu) => {
            let mut cmd = Command::new("taskset");
            cmd.args(["-c", cpu]);
            cmd
        }
        None => Command::new("env"),
    };
    let log = tools.work.join(format!("{}.log", kind.name()));
    match kind {
        Kind::Switchyard => {
            cmd.arg(&tools.switchyard).args([
                "--listen",
                "127.0.0.1:0",
                "--upstream",
                &backend.to_string(),
                "--workers",
                "1",
                "--tunnel-idle-timeout",
                "1h",
            ]);
            // nginx runs with `access_log off`: no per-connection log line here either.
            cmd.env("RUST_LOG", "warn");
            spawn_announcing(kind.name(), cmd, &log)
        }
        Kind::SwitchyardTokio => {
            cmd.arg(&tools.switchyard_tokio).args([
                "--listen",
                "127.0.0.1:0",
                "--upstream",
                &backend.to_string(),
            ]);
            cmd.env("RUST_LOG", "warn");
            spawn_announcing(kind.name(), cmd, &log)
        }
        Kind::Nginx | Kind::NginxKeepalive => {
            let prefix = tools.work.join(kind.name());
            fs::create_dir_all(prefix.join("logs"))?;
            let port = free_port()?;
            let no_upgrade = if kind == Kind::Nginx { "close" } else { "''" };
            let conf = render(
                &tools.templates.join("nginx.conf.in"),
                &[
                    ("PORT", port.to_string()),
                    ("BACKEND", backend.to_string()),
                    ("PREFIX", prefix.display().to_string()),
                    ("CONNECTION_WITHOUT_UPGRADE", no_upgrade.to_owned()),
                    ("FD_LIMIT", tools.fd_limit.to_string()),
                    // Twice the descriptors: nginx starts closing connections ("not enough,
                    // reusing connections") when 15/16 of its connection slots are taken, and
                    // a tunnel takes two. The descriptor limit stays the binding one.
                    ("WORKER_CONNECTIONS", (tools.fd_limit * 2).to_string()),
                ],
            )?;
            let conf_path = prefix.join("nginx.conf");
            fs::write(&conf_path, conf)?;
            cmd.arg(&tools.nginx)
                .arg("-p")
                .arg(&prefix)
                .arg("-c")
                .arg(&conf_path)
                .arg("-e")
                .arg(prefix.join("logs/error.log"));
            spawn_on_port(kind.name(), cmd, &log, port)
        }
        Kind::Haproxy => {
            let port = free_port()?;
            let conf = render(
                &tools.templates.join("haproxy.cfg.in"),
                &[
                    ("PORT", port.to_string()),
                    ("BACKEND", backend.to_string()),
                    // HAProxy refuses to start if 2 x maxconn + its own descriptors exceed the
                    // limit it cannot raise.
                    (
                        "MAXCONN",
                        (tools.fd_limit.saturating_sub(100) / 2).to_string(),
                    ),
                ],
            )?;
            let conf_path = tools.work.join("haproxy.cfg");
            fs::write(&conf_path, conf)?;
            cmd.arg(&tools.haproxy).arg("-db").arg("-f").arg(&conf_path);
            spawn_on_port(kind.name(), cmd, &log, port)
        }
    }
}

/// Replaces every `{{NAME}}` of the template with its value; a name left over is an error.
fn render(template: &Path, values: &[(&str, String)]) -> io::Result<String> {
    let mut text = fs::read_to_string(template)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", template.display())))?;
    for (name, value) in values {
        text = text.replace(&format!("{{{{{name}}}}}"), value);
    }
    if let Some(at) = text.find("{{") {
        let rest: String = text[at..].chars().take(40).collect();
        return Err(io::Error::other(format!(
            "{}: unknown placeholder at {rest:?}",
            template.display()
        )));
    }
    Ok(text)
}

/// A port nothing listens on right now (bound and released: another process could take it in
/// between, which the start check would then report).
fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Spawns a process that prints `listening on ADDR` on stdout once bound.
fn spawn_announcing(name: &'static str, mut cmd: Command, log: &Path) -> io::Result<Running> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(File::create(log)?);
    let mut child = cmd.spawn()?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next();
        let _ = tx.send(first);
        // Keep reading so that the process never writes into a closed pipe.
        for _ in lines {}
    });
    let Ok(Some(Ok(line))) = rx.recv_timeout(START_LIMIT) else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(failed_start(name, log));
    };
    let addr = line
        .strip_prefix("listening on ")
        .and_then(|a| a.trim().parse().ok())
        .ok_or_else(|| io::Error::other(format!("{name}: unexpected first line {line:?}")))?;
    Ok(Running {
        name,
        addr,
        pid: child.id(),
        child,
    })
}

/// Spawns a process configured to listen on `port` and waits until it accepts.
fn spawn_on_port(
    name: &'static str,
    mut cmd: Command,
    log: &Path,
    port: u16,
) -> io::Result<Running> {
    cmd.stdin(Stdio::null())
        .stdout(File::create(log)?)
        .stderr(File::create(log.with_extension("err"))?);
    let mut child = cmd.spawn()?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + START_LIMIT;
    loop {
        if TcpStream::connect(addr).is_ok() {
            break;
        }
        if child.try_wait()?.is_some() || Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(failed_start(name, &log.with_extension("err")));
        }
        thread::sleep(Duration::from_millis(50));
    }
    Ok(Running {
        name,
        addr,
        pid: child.id(),
        child,
    })
}

fn failed_start(name: &str, log: &Path) -> io::Error {
    let tail = fs::read_to_string(log).unwrap_or_default();
    let tail: Vec<&str> = tail.lines().rev().take(5).collect();
    io::Error::other(format!(
        "{name} did not start (log {}): {}",
        log.display(),
        tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
    ))
}

impl Running {
    /// The process and its descendants (nginx's worker).
    pub(crate) fn pids(&self) -> Vec<u32> {
        process_tree(self.pid)
    }

    /// SIGTERM, then SIGKILL to the whole tree after [`STOP_LIMIT`].
    pub(crate) fn stop(mut self) {
        let tree = self.pids();
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let deadline = Instant::now() + STOP_LIMIT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
        if let Ok(None) = self.child.try_wait() {
            eprintln!("race: {} ignored SIGTERM; killing it", self.name);
        }
        for pid in tree.iter().filter(|&&pid| pid != self.pid) {
            if Path::new(&format!("/proc/{pid}")).exists() {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `pid` and every process below it.
fn process_tree(root: u32) -> Vec<u32> {
    let mut parents = Vec::new();
    if let Ok(dir) = fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some(ppid) = stat_fields(pid).and_then(|f| f.get(1)?.parse::<u32>().ok()) {
                parents.push((pid, ppid));
            }
        }
    }
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(parents.iter().filter(|p| p.1 == parent).map(|p| p.0));
        i += 1;
    }
    tree
}

/// The fields of `/proc/PID/stat` after the command name: `[state, ppid, ...]`.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    Some(after.split_whitespace().map(str::to_owned).collect())
}

/// CPU time of the processes, in clock ticks, split as the kernel accounts it.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CpuTicks {
    /// In user space (the proxy's own code and its libraries).
    pub(crate) user: u64,
    /// In the kernel on the processes' behalf (system calls, and on the loopback most of the
    /// TCP work of both ends of each connection).
    pub(crate) system: u64,
}

impl CpuTicks {
    /// User plus system time.
    pub(crate) fn total(self) -> u64 {
        self.user + self.system
    }

    /// What was used since `earlier`.
    pub(crate) fn since(self, earlier: Self) -> Self {
        Self {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }
}

/// CPU time of the processes so far.
pub(crate) fn cpu_ticks(pids: &[u32]) -> CpuTicks {
    pids.iter()
        .filter_map(|&pid| {
            let fields = stat_fields(pid)?;
            // utime and stime are fields 14 and 15 of stat; the state is field 3.
            let user: u64 = fields.get(11)?.parse().ok()?;
            let system: u64 = fields.get(12)?.parse().ok()?;
            Some(CpuTicks { user, system })
        })
        .fold(CpuTicks::default(), |sum, t| CpuTicks {
            user: sum.user + t.user,
            system: sum.system + t.system,
        })
}

/// Resident memory of the processes (`VmRSS`), in bytes.
pub(crate) fn rss_bytes(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|&pid| {
            let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024)
        })
        .sum()
}

/// Open file descriptors of the processes.
pub(crate) fn open_fds(pids: &[u32]) -> usize {
    pids.iter()
        .filter_map(|&pid| Some(fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count()))
        .sum()
}

/// This process's soft limit on open descriptors (`/proc/self/limits`), which its children
/// inherit; 1024 if it cannot be read.
pub(crate) fn fd_limit() -> u64 {
    fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
            line.split_whitespace().nth(3)?.parse().ok()
        })
        .unwrap_or(1024)
}

/// Clock ticks per second of the `/proc` CPU times (`getconf CLK_TCK`, 100 if that fails).
pub(crate) fn clock_ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100)
}

/// Waits until the proxy's open descriptors fall to `baseline + slack` (its sockets of a
/// finished test are closed), for at most `limit`. Returns whether they did.
pub(crate) fn wait_for_fds(pids: &[u32], baseline: usize, slack: usize, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if open_fds(pids) <= baseline + slack {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(100));
    }
}
