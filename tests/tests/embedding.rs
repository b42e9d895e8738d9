//! The embedding API of each adapter, which [`ProxyUnderTest`](switchyard_tests::ProxyUnderTest)
//! does not reach: `proxy_connection` driving one client stream handed over by the caller —
//! a stream that is not TCP for the async adapters (a Unix socket pair: what a TLS stream or an
//! in-memory pipe looks like to them), a `TcpStream` on the calling thread for the blocking
//! one — `Context::shutdown` ending such a session, and async-std's `serve` ending its sessions
//! when dropped. Everything else about proxying is the conformance suite's.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::thread;

use switchyard_proto::{ClientInfo, Config, Summary};
use switchyard_tests::harness::{wait_until, PATIENCE};
use switchyard_tests::peers::http::{self, echo_server, MessageReader};
use switchyard_tests::peers::raw::{self, closed_by_peer, read_to_eof};
use switchyard_tests::peers::Upstream;
use switchyard_tests::rng::Rng;

/// One adapter's embedding API, as the tests below use it.
trait Embedding {
    /// The adapter's shared per-listener state.
    type Context: Send + Sync + 'static;
    /// The client's end of the connection handed to `proxy_connection`.
    type Client: Duplex;
    /// A context proxying to `upstream`.
    fn context(upstream: &Upstream) -> Arc<Self::Context>;
    fn open_sessions(ctx: &Self::Context) -> usize;
    fn shutdown(ctx: &Self::Context);
    /// Starts `proxy_connection` on a new connection; returns the client's end and a function
    /// that waits for the session's summary.
    fn embed(ctx: &Arc<Self::Context>) -> (Self::Client, Box<dyn FnOnce() -> Summary>);
}

/// A client stream whose halves can be used from two threads.
trait Duplex: Read + Write + Send + Sized + 'static {
    fn clone_handle(&self) -> io::Result<Self>;
    fn shutdown_write(&self) -> io::Result<()>;
}

impl Duplex for TcpStream {
    fn clone_handle(&self) -> io::Result<Self> {
        self.try_clone()
    }
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
}

impl Duplex for UnixStream {
    fn clone_handle(&self) -> io::Result<Self> {
        self.try_clone()
    }
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
}

/// Bytes echoed through the tunnel of [`embedded_session_proxies`].
const PAYLOAD: usize = 256 * 1024;

/// An embedded session serves a GET, then an upgrade on the same client connection whose
/// tunnel echoes random bytes and ends with both directions closed; the upgrade reuses the
/// GET's upstream connection (the context's pool), and the summary tells what happened.
fn embedded_session_proxies<E: Embedding>() {
    let upstream = Upstream::spawn(echo_server);
    let ctx = E::context(&upstream);
    let (client, session) = E::embed(&ctx);
    let mut reader = MessageReader::new(client);
    reader.send(&http::request("GET", "/embedded", None));
    let answer = reader.expect_response();
    assert_eq!(answer.head.status, 200);
    assert_eq!(answer.head.header("x-target"), Some("/embedded"));

    let mut client = reader.into_inner();
    client.write_all(&raw::upgrade_request("")).unwrap();
    let (head, mut echoed) = raw::read_head(&mut client).unwrap().expect("a 101");
    assert_eq!(raw::parse_response(&head).status, 101);
    let payload = Rng::new(0xe3be_dded).bytes(PAYLOAD);
    let writer = {
        let (mut half, payload) = (client.clone_handle().unwrap(), payload.clone());
        thread::spawn(move || {
            half.write_all(&payload).unwrap();
            half.shutdown_write().unwrap();
        })
    };
    assert!(read_to_eof(&mut client, &mut echoed), "the tunnel ends");
    writer.join().unwrap();
    assert!(echoed == payload, "the echo differs");

    let summary = session();
    assert!(summary.tunnelled, "{summary}");
    assert_eq!(summary.counters.tunnel_to_upstream, PAYLOAD as u64);
    assert_eq!(E::open_sessions(&ctx), 0);
    assert_eq!(
        upstream.accepted(),
        1,
        "the GET's connection served the upgrade"
    );
}

/// `Context::shutdown` ends a live embedded session: its client sees the connection close and
/// `proxy_connection` returns.
fn context_shutdown_ends_the_session<E: Embedding>() {
    let upstream = Upstream::spawn(echo_server);
    let ctx = E::context(&upstream);
    let (mut client, session) = E::embed(&ctx);
    client.write_all(&raw::upgrade_request("")).unwrap();
    let (head, _) = raw::read_head(&mut client).unwrap().expect("a 101");
    assert_eq!(raw::parse_response(&head).status, 101);
    assert!(wait_until(PATIENCE, || E::open_sessions(&ctx) == 1));
    E::shutdown(&ctx);
    // Before waiting for the session: a session that does not end fails here, not hangs.
    assert!(
        closed_by_peer(&mut client),
        "the shutdown closed the tunnel"
    );
    assert!(session().tunnelled);
    assert_eq!(E::open_sessions(&ctx), 0);
}

/// A Unix socket pair with timeouts on the client's end: (client, the proxy's end).
fn socket_pair() -> (UnixStream, UnixStream) {
    let (client, server) = UnixStream::pair().unwrap();
    client.set_read_timeout(Some(PATIENCE)).unwrap();
    client.set_write_timeout(Some(PATIENCE)).unwrap();
    server.set_nonblocking(true).unwrap();
    (client, server)
}

/// What an embedder tells the session about a client on a [`socket_pair`]: no IP address, and
/// (as for a TLS stream) secure.
const PIPE_CLIENT: ClientInfo = ClientInfo {
    addr: None,
    secure: true,
};

/// The upstream group of one server.
fn servers(upstream: &Upstream) -> Vec<String> {
    vec![upstream.addr().to_string()]
}

/// The [`Embedding`] methods that read the same in every adapter (whose `Context` and
/// `ProxyConfig` are in scope where this is used).
macro_rules! context_methods {
    () => {
        fn context(upstream: &Upstream) -> Arc<Context> {
            let config = ProxyConfig::new(Config::default(), servers(upstream));
            Arc::new(Context::new(config))
        }

        fn open_sessions(ctx: &Context) -> usize {
            ctx.open_sessions()
        }

        fn shutdown(ctx: &Context) {
            ctx.shutdown();
        }
    };
}

/// Writes the `#[test]`s of the generic tests above for one [`Embedding`].
macro_rules! embedding_tests {
    ($adapter:ty) => {
        #[test]
        fn embedded_session_proxies() {
            super::embedded_session_proxies::<$adapter>();
        }

        #[test]
        fn context_shutdown_ends_the_session() {
            super::context_shutdown_ends_the_session::<$adapter>();
        }
    };
}

/// `proxy_connection` over tokio's `AsyncRead + AsyncWrite` (a tokio `UnixStream`).
mod tokio_adapter {
    use super::*;
    use switchyard_tokio::{proxy_connection, Context, ProxyConfig};

    struct Tokio;

    impl Embedding for Tokio {
        type Context = Context;
        type Client = UnixStream;

        context_methods!();

        fn embed(ctx: &Arc<Context>) -> (UnixStream, Box<dyn FnOnce() -> Summary>) {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            let (client, server) = socket_pair();
            let ctx = Arc::clone(ctx);
            let session = runtime.spawn(async move {
                let stream = tokio::net::UnixStream::from_std(server).unwrap();
                proxy_connection(stream, PIPE_CLIENT, &ctx).await
            });
            (
                client,
                Box::new(move || runtime.block_on(session).expect("the session task")),
            )
        }
    }

    embedding_tests!(Tokio);
}

/// The blocking `proxy_connection`: one session on the calling thread.
mod blocking_adapter {
    use super::*;
    use switchyard_blocking::{proxy_connection, Context, ProxyConfig};

    struct Blocking;

    impl Embedding for Blocking {
        type Context = Context;
        type Client = TcpStream;

        context_methods!();

        fn embed(ctx: &Arc<Context>) -> (TcpStream, Box<dyn FnOnce() -> Summary>) {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            client.set_read_timeout(Some(PATIENCE)).unwrap();
            let ctx = Arc::clone(ctx);
            let session = thread::spawn(move || {
                let (stream, peer) = listener.accept().unwrap();
                let info = ClientInfo {
                    addr: Some(peer),
                    secure: false,
                };
                proxy_connection(stream, info, &ctx)
            });
            (
                client,
                Box::new(move || session.join().expect("the session thread")),
            )
        }
    }

    embedding_tests!(Blocking);
}

/// `proxy_connection` over a futures-io stream (an async-std `UnixStream`), and `serve`.
mod async_std_adapter {
    use super::*;
    use switchyard_async_std::{proxy_connection, serve, Context, ProxyConfig};

    struct AsyncStd;

    impl Embedding for AsyncStd {
        type Context = Context;
        type Client = UnixStream;

        context_methods!();

        fn embed(ctx: &Arc<Context>) -> (UnixStream, Box<dyn FnOnce() -> Summary>) {
            let (client, server) = socket_pair();
            let ctx = Arc::clone(ctx);
            let session = async_std::task::spawn(async move {
                let stream = async_std::os::unix::net::UnixStream::from(server);
                proxy_connection(stream, PIPE_CLIENT, &ctx).await
            });
            (client, Box::new(move || async_std::task::block_on(session)))
        }
    }

    embedding_tests!(AsyncStd);

    /// Dropping the `serve` future (here: cancelling its task) closes its listener and ends its
    /// sessions.
    #[test]
    fn serve_ends_its_sessions_and_its_listener_when_dropped() {
        let upstream = Upstream::spawn(echo_server);
        let bind = async_std::net::TcpListener::bind("127.0.0.1:0");
        let listener = async_std::task::block_on(bind).unwrap();
        let addr = listener.local_addr().unwrap();
        let config = ProxyConfig::new(Config::default(), servers(&upstream));
        let server = async_std::task::spawn(serve(listener, config));
        let mut client = TcpStream::connect(addr).unwrap();
        client.set_read_timeout(Some(PATIENCE)).unwrap();
        assert_eq!(raw::upgrade(&mut client, "", b"").0.status, 101);
        client.write_all(b"ping").unwrap();
        assert_eq!(raw::read_exact_n(&mut client, 4, "echo"), b"ping");
        async_std::task::block_on(server.cancel());
        assert!(
            closed_by_peer(&mut client),
            "cancelling serve closed the tunnel"
        );
        assert!(TcpStream::connect(addr).is_err(), "the listener is closed");
    }
}
