//! The `switchyard` binary's command line, as the adapter contract defines it: flags, duration
//! syntax, the `listening on ADDR` lines, exit statuses, signals. (Proxying itself is covered
//! by the conformance suite's `binary::` tests.)

use std::io::Write;
use std::net::TcpStream;

use switchyard_tests::binary::{run_to_completion, Process};
use switchyard_tests::harness::PATIENCE;
use switchyard_tests::peers::http::{self, echo_server, MessageReader};
use switchyard_tests::peers::{closed_port, Upstream};

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|a| (*a).to_owned()).collect()
}

/// Exit status 2 and exactly one line on stderr.
fn assert_usage_error(list: &[&str]) {
    let (status, stdout, stderr) = run_to_completion(list);
    assert_eq!(
        status.code(),
        Some(2),
        "switchyard {list:?}: exit status (stderr: {stderr})"
    );
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "switchyard {list:?}: expected a one-line error, got {stderr:?}"
    );
    assert!(
        stdout.is_empty(),
        "switchyard {list:?}: nothing on stdout, got {stdout:?}"
    );
}

#[test]
fn version_and_help() {
    let (status, stdout, _) = run_to_completion(&["--version"]);
    assert_eq!(status.code(), Some(0));
    assert!(
        stdout.starts_with("switchyard "),
        "--version printed {stdout:?}"
    );

    let (status, stdout, _) = run_to_completion(&["--help"]);
    assert_eq!(status.code(), Some(0));
    for flag in [
        "--listen",
        "--upstream",
        "--tunnel-idle-timeout",
        "--read-timeout",
        "--connect-timeout",
        "--header-timeout",
        "--workers",
        "--version",
        "--help",
    ] {
        assert!(stdout.contains(flag), "--help does not mention {flag}");
    }
}

#[test]
fn bad_flags_and_values_exit_2_with_one_line() {
    let upstream = closed_port().to_string();
    assert_usage_error(&["--bogus"]);
    assert_usage_error(&["--listen", "not-an-address", "--upstream", &upstream]);
    assert_usage_error(&["--listen", "127.0.0.1:0"]);
    assert_usage_error(&["--upstream", &upstream]);
    assert_usage_error(&["--listen", "127.0.0.1:0", "--upstream", "no-port"]);
    for (flag, value) in [
        ("--read-timeout", "5x"),
        ("--tunnel-idle-timeout", "-1"),
        ("--connect-timeout", "ms"),
        ("--header-timeout", ""),
        ("--workers", "many"),
        ("--workers", "0"),
    ] {
        assert_usage_error(&[
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            &upstream,
            flag,
            value,
        ]);
    }
}

#[test]
fn an_address_in_use_exits_2_with_one_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    assert_usage_error(&["--listen", &addr, "--upstream", &closed_port().to_string()]);
}

#[test]
fn every_duration_syntax_is_accepted() {
    let upstream = closed_port().to_string();
    let mut proxy = Process::start(&args(&[
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        &upstream,
        "--tunnel-idle-timeout",
        "1h",
        "--read-timeout",
        "500ms",
        "--connect-timeout",
        "90",
        "--header-timeout",
        "2m",
        "--workers",
        "1",
    ]));
    let status = proxy.terminate().expect("exit after SIGTERM");
    assert_eq!(status.code(), Some(0), "stderr:\n{}", proxy.stderr_text());
}

#[test]
fn listens_on_every_address_and_stops_on_sigint() {
    let upstream = Upstream::spawn(echo_server);
    let mut proxy = Process::start(&args(&[
        "--listen",
        "127.0.0.1:0",
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        &upstream.addr().to_string(),
    ]));
    let addrs = proxy.addrs().to_vec();
    assert_eq!(addrs.len(), 2);
    assert_ne!(addrs[0], addrs[1], "two listeners, two real ports");
    for addr in &addrs {
        assert_ne!(addr.port(), 0, "the printed address is the bound one");
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut reader = MessageReader::new(stream);
        reader
            .get_mut()
            .write_all(&http::request("GET", "/hello", None))
            .unwrap();
        let response = reader.response(false).unwrap().expect("a response");
        assert_eq!(response.head.status, 200, "through {addr}");
    }
    proxy.signal("INT");
    let status = proxy.wait_exit().expect("exit after SIGINT");
    assert_eq!(status.code(), Some(0), "stderr:\n{}", proxy.stderr_text());
}
