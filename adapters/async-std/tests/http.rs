//! Plain HTTP through the proxy: keep-alive, upstream reuse, failover, 502.

mod support;

use std::time::Duration;

use switchyard_proto::PoolConfig;

use support::*;

#[test]
fn several_requests_on_one_kept_alive_connection() {
    let upstream = Upstream::start();
    let handle = proxy(&[upstream.addr]);
    let mut stream = connect(handle.local_addr());
    let mut buf = Vec::new();
    for i in 0..5 {
        let path = format!("/r{i}");
        let response = get(&mut stream, &mut buf, &path);
        assert_eq!(response.status, 200, "{}", response.head);
        assert_eq!(response.body, format!("hello {path}").as_bytes());
    }
    drop(stream);
    assert_sessions_end(&handle);
    assert_eq!(upstream.requests(), 5);
}

#[test]
fn pooled_upstream_connections_are_reused_across_clients() {
    let upstream = Upstream::start();
    let handle = proxy(&[upstream.addr]);
    for client in 0..3 {
        let mut stream = connect(handle.local_addr());
        let mut buf = Vec::new();
        for i in 0..3 {
            let response = get(&mut stream, &mut buf, &format!("/c{client}/r{i}"));
            assert_eq!(response.status, 200);
        }
        drop(stream);
        assert_sessions_end(&handle);
    }
    assert_eq!(upstream.requests(), 9);
    assert!(
        upstream.connections() < 9,
        "the upstream saw {} connections for 9 requests",
        upstream.connections()
    );
    assert!(handle.idle_upstream_connections() >= 1);
}

#[test]
fn without_a_pool_every_request_gets_its_own_upstream_connection() {
    let upstream = Upstream::start();
    let mut pool = PoolConfig::default();
    pool.max_idle_per_upstream = 0;
    let handle = proxy_with(&[upstream.addr], pool);
    let mut stream = connect(handle.local_addr());
    let mut buf = Vec::new();
    for i in 0..3 {
        assert_eq!(get(&mut stream, &mut buf, &format!("/{i}")).status, 200);
    }
    assert_eq!(upstream.connections(), 3);
    assert_eq!(handle.idle_upstream_connections(), 0);
}

#[test]
fn an_upstream_that_is_down_gets_a_502() {
    let handle = proxy(&[dead_addr()]);
    let mut stream = connect(handle.local_addr());
    let mut buf = Vec::new();
    let response = get(&mut stream, &mut buf, "/");
    assert_eq!(response.status, 502, "{}", response.head);
    drop(stream);
    assert_sessions_end(&handle);
}

#[test]
fn a_dead_upstream_fails_over_to_the_next_one() {
    let upstream = Upstream::start();
    let mut pool = PoolConfig::default();
    pool.max_idle_per_upstream = 0;
    let handle = proxy_with(&[dead_addr(), upstream.addr], pool);
    for i in 0..4 {
        // A new client each time: the round-robin start alternates between the two servers.
        let mut stream = connect(handle.local_addr());
        let mut buf = Vec::new();
        let response = get(&mut stream, &mut buf, &format!("/{i}"));
        assert_eq!(response.status, 200, "request {i}: {}", response.head);
    }
    assert_eq!(upstream.requests(), 4);
}

#[test]
fn requests_are_spread_round_robin() {
    let (a, b) = (Upstream::start(), Upstream::start());
    let mut pool = PoolConfig::default();
    pool.max_idle_per_upstream = 0;
    let handle = proxy_with(&[a.addr, b.addr], pool);
    let mut stream = connect(handle.local_addr());
    let mut buf = Vec::new();
    for i in 0..6 {
        assert_eq!(get(&mut stream, &mut buf, &format!("/{i}")).status, 200);
    }
    assert_eq!((a.requests(), b.requests()), (3, 3));
}

#[test]
fn a_pooled_connection_the_upstream_closed_while_idle_is_not_handed_out() {
    let upstream = Upstream::start();
    let handle = proxy(&[upstream.addr]);
    let mut stream = connect(handle.local_addr());
    let mut buf = Vec::new();
    assert_eq!(get(&mut stream, &mut buf, "/close-after").status, 200);
    // The upstream closed its side after answering; the proxy pooled the connection.
    assert!(wait_until(Duration::from_secs(5), || upstream.live() == 0));
    assert_eq!(handle.idle_upstream_connections(), 1);
    let response = get(&mut stream, &mut buf, "/second");
    assert_eq!(response.status, 200, "{}", response.head);
    assert_eq!(response.body, b"hello /second");
    assert_eq!(upstream.connections(), 2);
}

#[test]
fn a_pooled_connection_that_dies_under_a_request_is_replaced_transparently() {
    let upstream = Upstream::start();
    let handle = proxy(&[upstream.addr]);
    let mut stream = connect(handle.local_addr());
    let mut buf = Vec::new();
    assert_eq!(get(&mut stream, &mut buf, "/drop-next").status, 200);
    assert!(wait_until(Duration::from_secs(5), || {
        handle.idle_upstream_connections() == 1
    }));
    // The pooled connection looks alive, but the upstream closes it when the request arrives,
    // unanswered: the session asks for another connection, and the client never knows.
    let response = get(&mut stream, &mut buf, "/again");
    assert_eq!(response.status, 200, "{}", response.head);
    assert_eq!(response.body, b"hello /again");
    assert_eq!(upstream.connections(), 2);
    drop(stream);
    assert_sessions_end(&handle);
}
