//! No session, socket or thread outlives what it served: the client leaves at every stage of a
//! session, and the proxy is shut down with sessions live. Counts `open_sessions()`, the
//! process's file descriptors (`/proc/self/fd`) and threads (`/proc/self/task`).
//!
//! One test function, so that nothing else runs in this process while descriptors are counted.

mod support;

use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use switchyard_proto::PoolConfig;

use support::*;

const SETTLE: Duration = Duration::from_secs(10);

/// What a stage leaves the client holding when it disconnects.
type Stage = fn(std::net::SocketAddr) -> TcpStream;

fn idle_before_any_byte(proxy: std::net::SocketAddr) -> TcpStream {
    connect(proxy)
}

fn partial_request_head(proxy: std::net::SocketAddr) -> TcpStream {
    let mut s = connect(proxy);
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    s
}

fn awaiting_the_response(proxy: std::net::SocketAddr) -> TcpStream {
    let mut s = connect(proxy);
    s.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    s
}

fn inside_the_response_body(proxy: std::net::SocketAddr) -> TcpStream {
    let mut s = connect(proxy);
    s.write_all(b"GET /partial HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = Vec::new();
    read_head(&mut s, &mut buf).unwrap().expect("head");
    s
}

fn kept_alive_between_requests(proxy: std::net::SocketAddr) -> TcpStream {
    let mut s = connect(proxy);
    let mut buf = Vec::new();
    assert_eq!(get(&mut s, &mut buf, "/").status, 200);
    s
}

fn after_a_502(proxy: std::net::SocketAddr) -> TcpStream {
    let mut s = connect(proxy);
    let mut buf = Vec::new();
    assert_eq!(get(&mut s, &mut buf, "/").status, 502);
    s
}

fn inside_a_tunnel(proxy: std::net::SocketAddr) -> TcpStream {
    let (s, _) = open_tunnel(proxy, "/echo", b"");
    assert!(echo_through(&s, b"some bytes", 3) == b"some bytes");
    s
}

fn tunnel_half_closed_by_the_client(proxy: std::net::SocketAddr) -> TcpStream {
    let (s, _) = open_tunnel(proxy, "/echo", b"");
    s.shutdown(Shutdown::Write).unwrap();
    s
}

fn tunnel_half_closed_by_the_upstream(proxy: std::net::SocketAddr) -> TcpStream {
    let (mut s, mut got) = open_tunnel(proxy, "/close-first", b"");
    got.extend(read_to_eof(&mut s));
    assert_eq!(got, b"bye");
    s
}

#[test]
fn nothing_outlives_the_client_or_the_proxy() {
    let upstream = Upstream::start();
    let mut no_pool = PoolConfig::default();
    no_pool.max_idle_per_upstream = 0;

    // Warm up what lives for the whole process (async-io's reactor and its thread).
    proxy(&[upstream.addr]).shutdown();
    let (fds_before_proxy, threads_before_proxy) = (fd_count(), thread_count());

    let stages: [(&str, Stage, bool); 9] = [
        ("idle before any byte", idle_before_any_byte, true),
        ("partial request head", partial_request_head, true),
        ("awaiting the response", awaiting_the_response, true),
        ("inside the response body", inside_the_response_body, true),
        (
            "kept alive between requests",
            kept_alive_between_requests,
            true,
        ),
        ("after a 502", after_a_502, false),
        ("inside a tunnel", inside_a_tunnel, true),
        (
            "tunnel half-closed by the client",
            tunnel_half_closed_by_the_client,
            true,
        ),
        (
            "tunnel half-closed by the upstream",
            tunnel_half_closed_by_the_upstream,
            true,
        ),
    ];
    let live = proxy_with(&[upstream.addr], no_pool.clone());
    let dead = proxy_with(&[dead_addr()], no_pool);
    let baseline = fd_count();
    for (name, stage, to_live) in stages {
        let handle = if to_live { &live } else { &dead };
        let client = stage(handle.local_addr());
        assert!(
            wait_until(SETTLE, || handle.open_sessions() == 1),
            "{name}: the session is counted"
        );
        drop(client);
        assert!(
            wait_until(SETTLE, || handle.open_sessions() == 0),
            "{name}: the session did not end"
        );
        assert!(
            wait_until(SETTLE, || fd_count() == baseline && upstream.live() == 0),
            "{name}: {} descriptors open, {baseline} before; upstream connections left: {}",
            fd_count(),
            upstream.live()
        );
    }
    live.shutdown();
    dead.shutdown();

    // Shut down with sessions live at several stages, and idle pooled connections.
    let handle = proxy(&[upstream.addr]);
    let mut pooled = connect(handle.local_addr());
    let mut buf = Vec::new();
    assert_eq!(get(&mut pooled, &mut buf, "/").status, 200);
    // The tunnel takes the pooled connection; the next request pools a new one.
    let (mut tunnel, _) = open_tunnel(handle.local_addr(), "/echo", b"");
    assert_eq!(get(&mut pooled, &mut buf, "/").status, 200);
    assert_eq!(handle.idle_upstream_connections(), 1);
    let mut waiting = partial_request_head(handle.local_addr());
    assert!(wait_until(SETTLE, || handle.open_sessions() == 3));
    handle.shutdown();
    for (name, client) in [
        ("kept alive", &mut pooled),
        ("tunnel", &mut tunnel),
        ("partial head", &mut waiting),
    ] {
        assert!(closed(client), "{name}: the proxy closed it");
    }
    drop((pooled, tunnel, waiting));
    assert!(
        wait_until(SETTLE, || fd_count() == fds_before_proxy
            && upstream.live() == 0),
        "after shutdown: {} descriptors open, {fds_before_proxy} before the proxy",
        fd_count()
    );
    assert!(
        wait_until(SETTLE, || thread_count()
            <= threads_before_proxy + upstream_threads(&upstream)),
        "after shutdown: {} threads, {threads_before_proxy} before the proxy",
        thread_count()
    );
}

/// Threads the test upstream may still be running (its accept thread is counted already).
fn upstream_threads(upstream: &Upstream) -> usize {
    upstream.live()
}
