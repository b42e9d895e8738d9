//! # switchyard-tokio: the Switchyard proxy over tokio
//!
//! A thin driver: it owns the sockets, the timer and the upstream connection pool, and makes no
//! protocol decision. Every byte, status code and deadline comes from
//! [`switchyard_proto::Session`]; this crate only moves bytes between the session and the
//! sockets, following the drive rule of the core (drain events, write what is offered, read what
//! the window allows, sleep until the next deadline).
//!
//! * **One task per client connection.** The whole session is one hand-written future
//!   (`driver.rs`): it polls the client, the upstream, the pending connect, the single timer
//!   and the shutdown signal, with no extra task, channel or lock per connection.
//! * **Readiness before buffers.** For TCP the driver waits for `poll_read_ready` and only then
//!   reads, so an idle connection holds no data buffer (the session frees an empty receive
//!   buffer after a short read, and every empty buffer a second after the last read). A short read or write clears tokio's readiness, so the next
//!   one waits for the reactor instead of failing with `EAGAIN`: an upgrade with one echo
//!   costs no system call that returns `EAGAIN`. Generic client streams (TLS, in-memory pipes)
//!   are read with `poll_read`.
//! * **One copy per tunnelled byte**, vectored writes of up to 16 queued chunks, `TCP_NODELAY`
//!   on every socket, half-close with `shutdown(Write)`.
//! * **Pooled upstreams and failover.** Idle upstream connections wait in the core's
//!   [`Pool`](switchyard_proto::Pool) (checked with a non-blocking one-byte `MSG_PEEK` before
//!   reuse); servers are tried in [`UpstreamGroup`](switchyard_proto::UpstreamGroup) order, the
//!   next one when connecting fails and the session agrees to retry.
//!
//! ## Running a proxy
//!
//! [`spawn`] runs a listener on its own multi-thread runtime; [`ProxyHandle::shutdown`] stops it
//! and waits until every session, socket and thread is gone. Inside an existing runtime use
//! [`serve`] (or [`serve_with`] to keep a handle on the [`Context`]).
//!
//! ## Embedding: [`proxy_connection`]
//!
//! Any `AsyncRead + AsyncWrite + Unpin` stream can be proxied, e.g. one accepted by your own
//! server or a TLS stream; TCP streams get the readiness fast path with
//! [`proxy_tcp_connection`].
//!
//! ```no_run
//! use std::sync::Arc;
//! use switchyard_proto::{ClientInfo, Config};
//! use switchyard_tokio::{proxy_connection, Context, ProxyConfig};
//!
//! #[tokio::main]
//! async fn main() -> std::io::Result<()> {
//!     let config = ProxyConfig::new(Config::default(), vec!["127.0.0.1:9000".to_owned()]);
//!     let ctx = Arc::new(Context::new(config));
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//!     loop {
//!         let (stream, peer) = listener.accept().await?;
//!         let ctx = Arc::clone(&ctx);
//!         tokio::spawn(async move {
//!             // Here `stream` could as well be a TLS stream (then `secure: true`).
//!             let info = ClientInfo { addr: Some(peer), secure: false };
//!             let summary = proxy_connection(stream, info, &ctx).await;
//!             println!("{peer}: {summary:?}");
//!         });
//!     }
//! }
//! ```
//!
//! Everything must run on a tokio runtime with IO and time enabled.

mod context;
mod driver;
mod peer;
mod server;

pub use context::Context;
pub use driver::{proxy_connection, proxy_tcp_connection};
pub use server::{serve, serve_with, spawn, ProxyHandle};
/// The protocol core this adapter drives.
pub use switchyard_proto as proto;

/// Everything one listener needs (the core's configuration, upstreams and pool limits).
pub use switchyard_proto::ProxyConfig;
