//! The `switchyard` binary: the listening line, proxying, signals, exit statuses.

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::*;

fn switchyard(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    command.args(args).env("RUST_LOG", "warn");
    command
}

/// Starts the binary and reads its `listening on` lines.
fn start(args: &[&str], listeners: usize) -> (Child, Vec<SocketAddr>) {
    let mut child = switchyard(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addrs = (0..listeners)
        .map(|_| {
            let line = lines.next().expect("a line on stdout").unwrap();
            let addr = line
                .strip_prefix("listening on ")
                .unwrap_or_else(|| panic!("unexpected line {line:?}"));
            addr.parse().unwrap()
        })
        .collect();
    (child, addrs)
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([format!("-{name}"), child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits for the child to exit; kills it and fails after 10 s.
fn exit_code(mut child: Child) -> Option<i32> {
    let exited = wait_until(Duration::from_secs(10), || {
        child.try_wait().unwrap().is_some()
    });
    if !exited {
        child.kill().unwrap();
        panic!("switchyard did not exit");
    }
    child.wait().unwrap().code()
}

#[test]
fn listens_on_a_free_port_proxies_and_exits_zero_on_sigterm() {
    let upstream = Upstream::start();
    let upstream_arg = upstream.addr.to_string();
    let (child, addrs) = start(
        &[
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            &upstream_arg,
            "--workers",
            "2",
        ],
        1,
    );
    assert!(addrs[0].ip().is_loopback() && addrs[0].port() != 0);
    let mut stream = connect(addrs[0]);
    let mut buf = Vec::new();
    let response = get(&mut stream, &mut buf, "/via-binary");
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"hello /via-binary");
    let (tunnel, _) = open_tunnel(addrs[0], "/echo", b"");
    assert!(echo_through(&tunnel, b"through the binary", 1) == b"through the binary");
    signal(&child, "TERM");
    assert_eq!(exit_code(child), Some(0));
    assert!(closed(&mut stream), "the client connection was closed");
}

#[test]
fn sigint_stops_it_too_and_every_listener_is_announced() {
    let upstream = Upstream::start();
    let upstream_arg = upstream.addr.to_string();
    let (child, addrs) = start(
        &[
            "--listen",
            "127.0.0.1:0",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            &upstream_arg,
            "--tunnel-idle-timeout",
            "1h",
            "--read-timeout",
            "90",
            "--connect-timeout",
            "500ms",
            "--header-timeout",
            "2m",
        ],
        2,
    );
    assert_ne!(addrs[0], addrs[1]);
    for addr in &addrs {
        let mut stream = connect(*addr);
        assert_eq!(get(&mut stream, &mut Vec::new(), "/").status, 200);
    }
    signal(&child, "INT");
    assert_eq!(exit_code(child), Some(0));
}

#[test]
fn a_bad_flag_or_address_is_one_line_on_stderr_and_status_two() {
    for args in [
        &[
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            "127.0.0.1:9",
            "--bogus",
        ][..],
        &["--listen", "not-an-address", "--upstream", "127.0.0.1:9"],
        &["--listen", "127.0.0.1:0", "--upstream", "no-port"],
        &[
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            "127.0.0.1:9",
            "--read-timeout",
            "soon",
        ],
        &[
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            "127.0.0.1:9",
            "--workers",
            "0",
        ],
        &["--upstream", "127.0.0.1:9"],
    ] {
        let output = switchyard(args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr:?}");
        assert!(output.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn an_address_in_use_is_status_two() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = switchyard(&["--listen", &addr, "--upstream", "127.0.0.1:9"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(String::from_utf8(output.stderr).unwrap().lines().count(), 1);
}

#[test]
fn version_and_help_exit_zero() {
    let version = switchyard(&["--version"]).output().unwrap();
    assert_eq!(version.status.code(), Some(0));
    assert!(String::from_utf8(version.stdout)
        .unwrap()
        .starts_with("switchyard "));
    let help = switchyard(&["--help"]).output().unwrap();
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8(help.stdout)
        .unwrap()
        .contains("--upstream"));
}
