//! The `switchyard` binary as a proxy under test: found (and built once), started as a child
//! process, stopped with SIGTERM.
//!
//! # Finding the binary
//!
//! `CARGO_BIN_EXE_<name>` only exists for binaries of the package under test, and the binary
//! belongs to `switchyard-async-std`. So, once per test process:
//!
//! 1. if `SWITCHYARD_BIN` is set, that file is used as is (e.g. a release build);
//! 2. otherwise the suite runs `cargo build -p switchyard-async-std --bin switchyard` with the
//!    profile and target directory of the running test executable (found from its own path,
//!    `<target-dir>/<profile>/deps/<test>`), and uses `<target-dir>/<profile>/switchyard`.
//!
//! Step 2 is a no-op when `cargo test --workspace` already built the binary, and it makes
//! `cargo test -p switchyard-tests` test the current source instead of a stale binary.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, JoinHandle};

use crate::harness::{wait_until, ProxyUnderTest, Running, Setup, PATIENCE};

/// The `switchyard` binary of `switchyard-async-std`, run as a child process.
#[derive(Debug, Clone, Copy)]
pub struct Binary;

impl ProxyUnderTest for Binary {
    const NAME: &'static str = "binary";
    const IN_PROCESS: bool = false;

    fn start(setup: &Setup) -> Box<dyn Running> {
        let mut args = vec!["--listen".to_owned(), "127.0.0.1:0".to_owned()];
        args.extend(setup.flags());
        Box::new(Process::start(&args))
    }
}

/// The path of the `switchyard` binary (built on first use, see the module docs).
pub fn binary_path() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        if let Some(path) = std::env::var_os("SWITCHYARD_BIN") {
            return PathBuf::from(path);
        }
        let exe = std::env::current_exe().expect("current_exe");
        // <target-dir>/<profile>/deps/<test executable>
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test executable under <target>/<profile>/deps");
        let target_dir = profile_dir.parent().expect("target dir");
        let profile = profile_dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("debug");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = Command::new(cargo);
        build
            .args([
                "build",
                "--quiet",
                "-p",
                "switchyard-async-std",
                "--bin",
                "switchyard",
            ])
            .env("CARGO_TARGET_DIR", target_dir)
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        match profile {
            "debug" => {}
            "release" => {
                build.arg("--release");
            }
            other => {
                build.args(["--profile", other]);
            }
        }
        let status = build
            .status()
            .expect("run cargo build for the switchyard binary");
        assert!(
            status.success(),
            "cargo build of the switchyard binary failed: {status}"
        );
        let path = profile_dir.join("switchyard");
        assert!(
            path.exists(),
            "{} missing after cargo build",
            path.display()
        );
        path
    })
}

/// A running `switchyard` child process.
pub struct Process {
    child: Child,
    addrs: Vec<SocketAddr>,
    /// The child's stderr (logs), kept for failure messages.
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl Process {
    /// Starts the binary with `args`, waits for its `listening on ADDR` lines (one per
    /// `--listen`) and returns it.
    pub fn start(args: &[String]) -> Self {
        let listeners = args.iter().filter(|a| *a == "--listen").count();
        let mut child = Command::new(binary_path())
            .args(args)
            .env(
                "RUST_LOG",
                std::env::var("SWITCHYARD_LOG").unwrap_or_else(|_| "warn".to_owned()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the switchyard binary");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        collect(child.stderr.take().expect("stderr"), Arc::clone(&stderr));
        let stdout = child.stdout.take().expect("stdout");
        let (lines_tx, lines_rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut process = Self {
            child,
            addrs: Vec::new(),
            stderr,
        };
        while process.addrs.len() < listeners {
            let Ok(line) = lines_rx.recv_timeout(PATIENCE) else {
                panic!(
                    "switchyard {args:?} printed no `listening on` line; stderr:\n{}",
                    process.stderr_text()
                );
            };
            let addr = line
                .strip_prefix("listening on ")
                .and_then(|a| a.trim().parse().ok())
                .unwrap_or_else(|| panic!("unexpected stdout line from switchyard: {line:?}"));
            process.addrs.push(addr);
        }
        process
    }

    /// The addresses it printed, in order.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Everything the process wrote to stderr so far.
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }

    /// Sends signal `name` (`TERM`, `INT`...) with kill(1).
    pub fn signal(&self, name: &str) {
        let _ = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status();
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> Option<ExitStatus> {
        self.signal("TERM");
        self.wait_exit()
    }

    /// Waits (at most [`PATIENCE`]) for the process to exit.
    pub fn wait_exit(&mut self) -> Option<ExitStatus> {
        let mut status = None;
        wait_until(PATIENCE, || {
            status = self.child.try_wait().ok().flatten();
            status.is_some()
        });
        status
    }
}

impl Running for Process {
    fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    fn open_sessions(&self) -> Option<usize> {
        None
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn shutdown(mut self: Box<Self>) {
        let status = self.terminate();
        let clean = status.is_some_and(|s| s.code() == Some(0));
        if !clean {
            let _ = self.child.kill();
            let _ = self.child.wait();
            panic!(
                "switchyard did not exit with status 0 on SIGTERM within {PATIENCE:?} (status {status:?}); stderr:\n{}",
                self.stderr_text()
            );
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Copies `source` into `sink` on a thread until EOF, keeping the last 256 KiB.
fn collect(mut source: impl Read + Send + 'static, sink: Arc<Mutex<Vec<u8>>>) -> JoinHandle<()> {
    const KEEP: usize = 256 * 1024;
    thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = source.read(&mut buf) {
            if n == 0 {
                break;
            }
            let mut sink = sink.lock().unwrap_or_else(|e| e.into_inner());
            sink.extend_from_slice(&buf[..n]);
            if sink.len() > KEEP {
                let excess = sink.len() - KEEP;
                sink.drain(..excess);
            }
        }
    })
}

/// Runs the binary with `args` to completion (for `--help`, `--version`, bad flags), at most
/// [`PATIENCE`]; returns its status, stdout and stderr.
pub fn run_to_completion(args: &[&str]) -> (ExitStatus, String, String) {
    let mut child = Command::new(binary_path())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the switchyard binary");
    let stdout = Arc::new(Mutex::new(Vec::new()));
    let stderr = Arc::new(Mutex::new(Vec::new()));
    let collectors = [
        collect(child.stdout.take().expect("stdout"), Arc::clone(&stdout)),
        collect(child.stderr.take().expect("stderr"), Arc::clone(&stderr)),
    ];
    let mut status = None;
    wait_until(PATIENCE, || {
        status = child.try_wait().ok().flatten();
        status.is_some()
    });
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("switchyard {args:?} did not exit within {PATIENCE:?}");
    };
    for collector in collectors {
        let _ = collector.join();
    }
    let text = |buf: &Arc<Mutex<Vec<u8>>>| {
        String::from_utf8_lossy(&buf.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    };
    (status, text(&stdout), text(&stderr))
}
