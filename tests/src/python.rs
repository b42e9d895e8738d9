//! The Python peers: the `websockets` library on both sides of the proxy and the `kosoku`
//! Autobahn runner, from a virtualenv that `tests/python/setup.sh` installs.
//!
//! Where the virtualenv is: `SWITCHYARD_PYTHON` (a python executable) if set, else
//! `<target-dir>/switchyard-python/bin/python` (the setup script's default).
//!
//! When it is missing, the interop scenarios print a loud SKIPPED banner and pass — unless
//! `CI` is set (as in CI) or `SWITCHYARD_REQUIRE_PYTHON=1`, where they fail: CI must install the
//! peers and run them.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::thread;
use std::time::Duration;

use crate::harness::{target_dir, wait_until, PATIENCE};

/// The directory of the Python scripts.
pub fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("python")
}

fn default_python() -> PathBuf {
    target_dir()
        .join("switchyard-python")
        .join("bin")
        .join("python")
}

fn required() -> bool {
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    ci || std::env::var("SWITCHYARD_REQUIRE_PYTHON").is_ok_and(|v| v == "1")
}

/// The virtualenv's python, if the peers are installed. When they are not: panics if they are
/// required (CI), else prints a SKIPPED banner for `scenario` and returns `None`.
pub fn python(scenario: &str) -> Option<&'static Path> {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let found = PYTHON.get_or_init(|| {
        let python =
            std::env::var_os("SWITCHYARD_PYTHON").map_or_else(default_python, PathBuf::from);
        let probe = Command::new(&python)
            .args(["-c", "import websockets, kosoku"])
            .stdin(Stdio::null())
            .output();
        match probe {
            Ok(out) if out.status.success() => Ok(python),
            Ok(out) => Err(format!(
                "{} cannot import websockets and kosoku: {}",
                python.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            )),
            Err(e) => Err(format!("{} not runnable: {e}", python.display())),
        }
    });
    match found {
        Ok(python) => Some(python.as_path()),
        Err(why) if required() => panic!(
            "the Python interop peers are required here (CI or SWITCHYARD_REQUIRE_PYTHON=1) but missing: {why}. Run tests/python/setup.sh first."
        ),
        Err(why) => {
            // Straight to the stderr handle: libtest's capture (which hides the output of
            // passing tests) only intercepts the print macros.
            let _ = writeln!(
                std::io::stderr(),
                "\n{bar}\n!! SKIPPED {scenario}: Python interop peers missing ({why}).\n!! Run `bash tests/python/setup.sh` to install them (CI does).\n{bar}\n",
                bar = "!".repeat(78)
            );
            None
        }
    }
}

/// The `websockets` echo server (`ws_echo_server.py`), stopped when dropped.
pub struct EchoServer {
    child: Child,
    addr: SocketAddr,
}

impl EchoServer {
    /// Starts it and waits for its port.
    pub fn start(python: &Path) -> Self {
        let mut child = Command::new(python)
            .arg(scripts_dir().join("ws_echo_server.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start ws_echo_server.py");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(PATIENCE).unwrap_or_default();
        let port: u16 = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("ws_echo_server.py printed {line:?} instead of its port"));
        Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        // Closing stdin ends it; kill in case it hangs.
        drop(self.child.stdin.take());
        if !wait_until(Duration::from_secs(2), || {
            self.child.try_wait().ok().flatten().is_some()
        }) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Runs `script` with `args` to completion, at most `limit`; panics if it does not finish.
pub fn run_script(python: &Path, script: &str, args: &[String], limit: Duration) -> Output {
    let mut child = Command::new(python)
        .arg(scripts_dir().join(script))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {script}: {e}"));
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    thread::spawn(move || {
        let read = |mut r: Box<dyn std::io::Read + Send>| {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        };
        let err = thread::spawn(move || read(Box::new(stderr)));
        let out = read(Box::new(stdout));
        let _ = tx.send((out, err.join().unwrap_or_default()));
    });
    let Ok((stdout, stderr)) = rx.recv_timeout(limit) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{script} (pid {pid}) did not finish within {limit:?}");
    };
    let status = child.wait().expect("wait for the script");
    Output {
        status,
        stdout,
        stderr,
    }
}
