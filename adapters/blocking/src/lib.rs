//! # switchyard-blocking: the Switchyard proxy without an async runtime
//!
//! A thin driver over `std::net` sockets: it owns the sockets, the timers and the upstream
//! connection pool, and makes no protocol decision. Every byte, status code and deadline comes
//! from [`switchyard_proto::Session`].
//!
//! ## Why readiness polling, not blocking reads
//!
//! One session waits on **two sockets at once** (the client and the upstream), in **both
//! directions** (readable for the bytes to relay, writable when a peer pushes back), and on a
//! **deadline** (the session's next timeout), while a connect may be in flight. With blocking
//! I/O and socket timeouts that needs two or three threads per connection that share the
//! session behind a lock, and still cannot wait for "readable *or* writable *or* the deadline".
//! Readiness polling waits for all of it in one call, so one thread can own the session with no
//! lock at all. It also keeps idle connections cheap: a thread per connection costs its stack
//! (tens of KiB of RSS), while an idle session in an event loop costs its state (about 1 KiB),
//! and with readiness known before reading, an idle connection holds no data buffer.
//!
//! So this crate runs event loops: [`spawn`] starts `workers` loops (each a thread that owns
//! many sessions) and one accepting thread; [`proxy_connection`] runs one session on the
//! calling thread with its own small loop, for embedding.
//!
//! The poller is [mio](https://docs.rs/mio) (epoll/kqueue), the crate under tokio: its
//! registration API is safe, which this workspace (`unsafe_code = "forbid"`) requires — the
//! `polling` crate's `Poller::add` is an `unsafe fn` since 3.0. Sockets are registered once,
//! edge-triggered, for both directions; the driver remembers readiness per socket and clears it
//! when an operation returns `WouldBlock`.
//!
//! ## The drive loop
//!
//! For every readiness change or deadline: drain the session's events, write what it offers
//! (vectored, up to 16 chunks) while the socket accepts, read each peer whose window is open
//! *and* which is readable (only then is the session's buffer lent), and re-arm the deadline.
//! Each tunnelled byte is copied once (read into the session's buffer, written from it), with no
//! allocation per read. `TCP_NODELAY` is set on every socket; half-close is `shutdown(Write)`.
//!
//! Upstream servers are resolved with `std` (`ToSocketAddrs`): give IP addresses, as a host
//! name is resolved by a blocking lookup on the event loop's thread.
//!
//! ## Embedding: [`proxy_connection`]
//!
//! ```no_run
//! use std::net::TcpListener;
//! use std::sync::Arc;
//! use switchyard_blocking::{proxy_connection, Context, ProxyConfig};
//! use switchyard_proto::{ClientInfo, Config};
//!
//! let config = ProxyConfig::new(Config::default(), vec!["127.0.0.1:9000".to_owned()]);
//! let ctx = Arc::new(Context::new(config));
//! let listener = TcpListener::bind("127.0.0.1:8080")?;
//! for stream in listener.incoming() {
//!     let stream = stream?;
//!     let ctx = Arc::clone(&ctx);
//!     std::thread::spawn(move || {
//!         let info = ClientInfo { addr: stream.peer_addr().ok(), secure: false };
//!         let summary = proxy_connection(stream, info, &ctx);
//!         println!("{summary:?}");
//!     });
//! }
//! # Ok::<(), std::io::Error>(())
//! ```

mod conn;
mod context;
mod server;
mod single;
mod worker;

pub use context::Context;
pub use server::{spawn, ProxyHandle};
pub use single::proxy_connection;
/// The protocol core this adapter drives.
pub use switchyard_proto as proto;

/// Everything one listener needs (the core's configuration, upstreams and pool limits).
pub use switchyard_proto::ProxyConfig;
