//! # switchyard-async-std: the Switchyard driver over async-std I/O
//!
//! [`switchyard_proto`] decides everything about HTTP and owns no socket; this crate owns the
//! sockets, the timers and the tasks, and feeds the core what happened. It makes no protocol
//! decision of its own: every status code, header and deadline comes from
//! [`Session`](switchyard_proto::Session).
//!
//! One client connection is one task, driven by one hand-written future that polls both sockets'
//! reads and writes, the upstream connect and its deadline (no channels, no split streams). On TCP it
//! waits for readiness before lending the session a receive buffer, so an idle tunnel holds no
//! data buffer at all; tunnelled bytes are copied once in user space (read into the session's
//! buffer, written from it with vectored writes).
//!
//! ## Three ways in
//!
//! * [`spawn`]: a proxy on its own executor threads, with a [`ProxyHandle`] to stop it.
//! * [`serve`]: an accept loop to `.await` inside your own async-std program.
//! * [`proxy_connection`]: one client connection, from your own accept loop, over any
//!   `futures-io` stream (TLS streams, smol's or async-std's `TcpStream`). For plain TCP,
//!   [`proxy_tcp_connection`] is the fast path that [`serve`] and [`spawn`] use.
//!
//! ## Embedding `proxy_connection` in your own accept loop
//!
//! ```no_run
//! use std::sync::Arc;
//! use async_std::net::TcpListener;
//! use switchyard_async_std::{proxy_connection, Context, ProxyConfig};
//! use switchyard_proto::{ClientInfo, Config};
//!
//! async_std::task::block_on(async {
//!     let config = ProxyConfig::new(Config::default(), vec!["127.0.0.1:9000".to_owned()]);
//!     let ctx = Arc::new(Context::new(config));
//!     // Closes pooled upstream connections as they expire, until `ctx.shutdown()`.
//!     async_std::task::spawn({
//!         let ctx = Arc::clone(&ctx);
//!         async move { ctx.run_pool_expiry().await }
//!     });
//!     let listener = TcpListener::bind("127.0.0.1:8080").await?;
//!     loop {
//!         let (stream, peer) = listener.accept().await?;
//!         stream.set_nodelay(true)?;
//!         let ctx = Arc::clone(&ctx);
//!         async_std::task::spawn(async move {
//!             let info = ClientInfo { addr: Some(peer), secure: false };
//!             // Any futures-io stream works here: a TLS stream would set `secure: true`.
//!             let summary = proxy_connection(stream, info, &ctx).await;
//!             println!("{peer}: {:?}", summary.status);
//!         });
//!     }
//!     #[allow(unreachable_code)]
//!     Ok::<(), std::io::Error>(())
//! })?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! ## Where things live
//!
//! | module | concept |
//! |---|---|
//! | `driver` | the per-connection future: the drive loop of the contract |
//! | `io` | reading into and writing from a session: TCP with readiness, any futures-io stream |
//! | `upstream` | the failover order over the upstream group, dialling |
//! | `context` | shared per-listener state: config, upstream pool, session count, shutdown |
//! | `deadlines` | every session's next deadline, fired by one thread per context |
//! | `accept` | the accept loop and [`serve`] |
//! | `runtime` | [`spawn`]: own executor threads and the [`ProxyHandle`] |
//! | `bin/switchyard.rs` | the quick-mode binary |

mod accept;
mod context;
mod deadlines;
mod driver;
mod io;
mod runtime;
mod upstream;

pub use accept::serve;
pub use context::Context;
pub use driver::{proxy_connection, proxy_tcp_connection};
pub use runtime::{spawn, spawn_many, ProxyHandle};

/// Everything one listener needs (the core's configuration, upstreams and pool limits).
pub use switchyard_proto::ProxyConfig;
