//! The embedding API: `serve` inside async-std, and `proxy_connection` over a generic
//! futures-io stream from one's own accept loop.

mod support;

use std::net::Shutdown;
use std::sync::Arc;
use std::time::Duration;

use switchyard_async_std::{proxy_connection, serve, Context, ProxyConfig};
use switchyard_proto::{ClientInfo, Config};

use support::*;

fn config(upstream: std::net::SocketAddr) -> ProxyConfig {
    ProxyConfig::new(Config::default(), vec![upstream.to_string()])
}

#[test]
fn proxy_connection_drives_any_futures_io_stream() {
    let upstream = Upstream::start();
    let ctx = Arc::new(Context::new(config(upstream.addr)));
    let listener =
        async_std::task::block_on(async_std::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    let accept_ctx = Arc::clone(&ctx);
    async_std::task::spawn(async move {
        loop {
            let (stream, peer) = listener.accept().await.unwrap();
            let ctx = Arc::clone(&accept_ctx);
            async_std::task::spawn(async move {
                let info = ClientInfo {
                    addr: Some(peer),
                    secure: false,
                };
                proxy_connection(stream, info, &ctx).await
            });
        }
    });

    let mut stream = connect(addr);
    let mut buf = Vec::new();
    for i in 0..3 {
        assert_eq!(get(&mut stream, &mut buf, &format!("/{i}")).status, 200);
    }
    drop(stream);

    let (stream, _) = open_tunnel(addr, "/echo", b"");
    let data = Rng::new(5).bytes(256 * 1024);
    assert!(echo_through(&stream, &data, 9) == data);
    stream.shutdown(Shutdown::Write).unwrap();
    let mut stream = stream;
    assert!(
        read_to_eof(&mut stream).is_empty(),
        "the FIN went through both ways"
    );
    assert!(wait_until(Duration::from_secs(10), || ctx.open_sessions() == 0));

    // Shutdown ends live sessions.
    let (mut tunnel, _) = open_tunnel(addr, "/echo", b"");
    assert!(wait_until(Duration::from_secs(10), || ctx.open_sessions() == 1));
    ctx.shutdown();
    assert!(closed(&mut tunnel));
    assert!(wait_until(Duration::from_secs(10), || ctx.open_sessions() == 0));
}

#[test]
fn serve_runs_inside_async_std_and_dropping_it_ends_its_sessions() {
    let upstream = Upstream::start();
    let listener =
        async_std::task::block_on(async_std::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    let server = async_std::task::spawn(serve(listener, config(upstream.addr)));
    let (mut tunnel, _) = open_tunnel(addr, "/echo", b"");
    assert!(echo_through(&tunnel, b"hello", 2) == b"hello");
    async_std::task::block_on(server.cancel());
    assert!(closed(&mut tunnel), "cancelling serve closed the tunnel");
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "the listener is closed"
    );
}
