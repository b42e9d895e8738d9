//! The tokio adapter end to end, on real sockets on 127.0.0.1: tunnels, early data, keep-alive
//! and pooling, failover and 502, half-close, and no leaked session or file descriptor.

mod support;

use std::io::Write;
use std::net::{Shutdown, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use support::*;
use switchyard_proto::{ClientInfo, Config, PoolConfig};
use switchyard_tokio::{proxy_connection, spawn, Context, ProxyConfig, ProxyHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn proxy_to(upstreams: Vec<String>, pool: PoolConfig) -> ProxyHandle {
    proxy_with(Config::default(), upstreams, pool)
}

fn proxy_with(core: Config, upstreams: Vec<String>, pool: PoolConfig) -> ProxyHandle {
    let mut config = ProxyConfig::new(core, upstreams);
    config.pool = pool;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    spawn(listener, config, Some(2)).unwrap()
}

fn no_pool() -> PoolConfig {
    let mut pool = PoolConfig::default();
    pool.max_idle_per_upstream = 0;
    pool
}

fn wait_closed(proxy: &ProxyHandle) {
    wait_for("open_sessions() == 0", || proxy.open_sessions() == 0);
}

#[test]
fn a_tunnel_echoes_one_mebibyte_of_random_bytes_exactly() {
    let _serial = serial();
    let upstream = Upstream::start();
    let proxy = proxy_to(vec![upstream.addr.to_string()], PoolConfig::default());
    let data = Rng::new(7).bytes(1 << 20);
    let (stream, early) = open_tunnel(proxy.local_addr(), "/echo", b"");
    assert!(early.is_empty());
    let back = echo_through(stream, &data, 11);
    assert_eq!(back.len(), data.len());
    assert!(back == data, "the echo differs from what was sent");
    wait_closed(&proxy);
    proxy.shutdown();
}

#[test]
fn early_data_crosses_the_switch_in_both_directions() {
    let _serial = serial();
    let upstream = Upstream::start();
    let proxy = proxy_to(vec![upstream.addr.to_string()], PoolConfig::default());
    let (mut stream, mut got) = open_tunnel(proxy.local_addr(), "/early", b"held-by-the-proxy");
    let want = [EARLY_UPSTREAM, b"held-by-the-proxy"].concat();
    stream.shutdown(Shutdown::Write).unwrap();
    got.extend(read_to_eof(&mut stream));
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&want)
    );
    wait_closed(&proxy);
}

#[test]
fn keep_alive_requests_reuse_pooled_upstream_connections() {
    let _serial = serial();
    let upstream = Upstream::start();
    let proxy = proxy_to(vec![upstream.addr.to_string()], PoolConfig::default());
    let mut client = connect(proxy.local_addr());
    for _ in 0..5 {
        assert_eq!(get(&mut client, "/"), (200, b"hello".to_vec()));
    }
    drop(client);
    for _ in 0..3 {
        let mut client = connect(proxy.local_addr());
        assert_eq!(get(&mut client, "/"), (200, b"hello".to_vec()));
    }
    assert_eq!(
        upstream.requests.load(std::sync::atomic::Ordering::SeqCst),
        8
    );
    assert_eq!(
        upstream.connections(),
        1,
        "every request after the first reused the pool"
    );
    assert_eq!(proxy.context().idle_upstreams(), 1);
    wait_closed(&proxy);
}

#[test]
fn a_pooled_connection_the_upstream_closed_is_not_reused() {
    let _serial = serial();
    let upstream = Upstream::start();
    let proxy = proxy_to(vec![upstream.addr.to_string()], PoolConfig::default());
    let mut client = connect(proxy.local_addr());
    for _ in 0..3 {
        assert_eq!(get(&mut client, "/once"), (200, b"hello".to_vec()));
    }
    assert_eq!(upstream.connections(), 3);
    drop(client);
    wait_closed(&proxy);
}

#[test]
fn a_pooled_connection_that_dies_under_a_request_is_replaced_transparently() {
    let _serial = serial();
    let upstream = Upstream::start();
    let proxy = proxy_to(vec![upstream.addr.to_string()], PoolConfig::default());
    let mut client = connect(proxy.local_addr());
    assert_eq!(get(&mut client, "/flaky"), (200, b"hello".to_vec()));
    // Reuses the pooled connection, which closes on this request: the core asks for a new one.
    assert_eq!(get(&mut client, "/"), (200, b"hello".to_vec()));
    assert_eq!(upstream.connections(), 2);
    drop(client);
    wait_closed(&proxy);
}

#[test]
fn an_unreachable_upstream_is_a_502_and_failover_finds_a_live_one() {
    let _serial = serial();
    let dead = dead_address().to_string();
    let proxy = proxy_to(vec![dead.clone()], PoolConfig::default());
    let mut client = connect(proxy.local_addr());
    let (status, _) = get(&mut client, "/");
    assert_eq!(status, 502);
    drop(client);
    wait_closed(&proxy);
    proxy.shutdown();

    let upstream = Upstream::start();
    let proxy = proxy_to(vec![dead, upstream.addr.to_string()], no_pool());
    for _ in 0..4 {
        // Round-robin starts on the dead server every other time: failover covers it.
        let mut client = connect(proxy.local_addr());
        assert_eq!(get(&mut client, "/"), (200, b"hello".to_vec()));
    }
    wait_closed(&proxy);
}

#[test]
fn half_close_is_propagated_in_both_directions() {
    let _serial = serial();
    let upstream = Upstream::start();
    let proxy = proxy_to(vec![upstream.addr.to_string()], PoolConfig::default());

    // The client finishes first; the upstream still answers after seeing the EOF.
    let (mut stream, mut got) = open_tunnel(proxy.local_addr(), "/late", b"");
    stream.write_all(b"client-bytes").unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    got.extend(read_to_eof(&mut stream));
    assert_eq!(got, [&b"client-bytes"[..], AFTER_EOF].concat());

    // The upstream finishes first; the client still sends after seeing the EOF.
    let (mut stream, mut got) = open_tunnel(proxy.local_addr(), "/fin-first", b"");
    got.extend(read_to_eof(&mut stream));
    assert_eq!(got, BYE);
    stream.write_all(b"still-talking").unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    wait_for("the upstream to record the late bytes", || {
        upstream.recorded.lock().unwrap().as_slice() == b"still-talking"
    });
    wait_closed(&proxy);
}

#[test]
fn sessions_and_file_descriptors_return_to_baseline_at_every_stage() {
    let _serial = serial();
    let upstream = Upstream::start();
    let dead = dead_address().to_string();
    let before_proxy = open_fds();
    // A client that leaves while the response head is awaited does not end the session: the
    // core waits for the response (or this timeout) and then finds the client gone.
    let mut core = Config::default();
    core.timeouts.upstream_response = Duration::from_millis(300);
    let proxy = proxy_with(core, vec![upstream.addr.to_string()], no_pool());
    let down = proxy_to(vec![dead], no_pool());
    std::thread::sleep(Duration::from_millis(50));
    let baseline = open_fds();
    let settle = |stage: &str| {
        wait_closed(&proxy);
        wait_closed(&down);
        wait_for_fds(baseline, stage);
    };

    drop(connect(proxy.local_addr()));
    settle("connected, nothing sent");

    let mut client = connect(proxy.local_addr());
    client.write_all(b"GET / HTTP/1.1\r\nHost: x").unwrap();
    drop(client);
    settle("half a request head");

    let mut client = connect(proxy.local_addr());
    client
        .write_all(b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    wait_for("the upstream to get the request", || {
        upstream.requests.load(std::sync::atomic::Ordering::SeqCst) == 1
    });
    drop(client);
    settle("awaiting the response head");

    let (client, _) = open_tunnel(proxy.local_addr(), "/echo", b"");
    drop(client);
    settle("idle tunnel");

    let mut client = connect(proxy.local_addr());
    assert_eq!(get(&mut client, "/").0, 200);
    drop(client);
    settle("keep-alive, between requests");

    let mut client = connect(down.local_addr());
    assert_eq!(get(&mut client, "/").0, 502);
    drop(client);
    settle("after a 502");

    // Shutdown with sessions in every phase: each client sees its connection end.
    let idle = connect(proxy.local_addr());
    let mut hanging = connect(proxy.local_addr());
    hanging
        .write_all(b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (tunnel, _) = open_tunnel(proxy.local_addr(), "/echo", b"");
    wait_for("three open sessions", || proxy.open_sessions() == 3);
    let ctx = Arc::clone(proxy.context());
    proxy.shutdown();
    down.shutdown();
    assert_eq!(ctx.open_sessions(), 0);
    for mut client in [idle, hanging, tunnel] {
        read_to_eof(&mut client);
    }
    wait_for_fds(before_proxy, "after shutdown");
}

#[test]
fn proxy_connection_drives_any_async_stream() {
    let _serial = serial();
    let upstream = Upstream::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let config = ProxyConfig::new(Config::default(), vec![upstream.addr.to_string()]);
    let ctx = Arc::new(Context::new(config));
    runtime.block_on(async {
        let (mut client, server) = tokio::io::duplex(4096);
        let session = tokio::spawn({
            let ctx = Arc::clone(&ctx);
            async move {
                let info = ClientInfo {
                    addr: None,
                    secure: true,
                };
                proxy_connection(server, info, &ctx).await
            }
        });
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut response = vec![0u8; 4096];
        let mut got = Vec::new();
        while !got.ends_with(b"hello") {
            let n = client.read(&mut response).await.unwrap();
            assert!(n > 0);
            got.extend_from_slice(&response[..n]);
        }
        assert!(got.starts_with(b"HTTP/1.1 200 OK\r\n"));

        let payload = Rng::new(3).bytes(256 * 1024);
        client.write_all(&upgrade_request("/echo")).await.unwrap();
        let mut got = Vec::new();
        let head_end = loop {
            if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = client.read(&mut response).await.unwrap();
            assert!(n > 0);
            got.extend_from_slice(&response[..n]);
        };
        assert!(got.starts_with(b"HTTP/1.1 101 "));
        let mut back = got.split_off(head_end);
        let (mut reader, mut writer) = tokio::io::split(client);
        let sent = payload.clone();
        let writing = tokio::spawn(async move {
            writer.write_all(&sent).await.unwrap();
            writer.shutdown().await.unwrap();
        });
        reader.read_to_end(&mut back).await.unwrap();
        writing.await.unwrap();
        assert!(back == payload, "the echo differs");
        let summary = session.await.unwrap();
        assert!(summary.tunnelled);
        assert_eq!(summary.counters.tunnel_to_upstream, payload.len() as u64);
    });
    assert_eq!(ctx.open_sessions(), 0);
    assert_eq!(
        ctx.idle_upstreams(),
        0,
        "the GET's connection was reused by the upgrade"
    );
    assert_eq!(upstream.connections(), 1);
}

#[test]
fn shutdown_ends_an_embedded_session() {
    let _serial = serial();
    let upstream = Upstream::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let config = ProxyConfig::new(Config::default(), vec![upstream.addr.to_string()]);
    let ctx = Arc::new(Context::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let session = runtime.spawn({
        let ctx = Arc::clone(&ctx);
        async move {
            let (stream, peer) = tokio::task::spawn_blocking(move || listener.accept().unwrap())
                .await
                .unwrap();
            stream.set_nonblocking(true).unwrap();
            let stream = tokio::net::TcpStream::from_std(stream).unwrap();
            let info = ClientInfo {
                addr: Some(peer),
                secure: false,
            };
            switchyard_tokio::proxy_tcp_connection(stream, info, &ctx).await
        }
    });
    let (mut client, _) = open_tunnel(addr, "/echo", b"");
    wait_for("the session to open", || ctx.open_sessions() == 1);
    ctx.shutdown();
    let summary = runtime.block_on(session).unwrap();
    assert!(summary.tunnelled);
    assert_eq!(read_to_eof(&mut client), b"");
    assert_eq!(ctx.open_sessions(), 0);
}
