//! # switchyard-proto: a sans-IO HTTP/1.1 upgrade-aware reverse proxy core
//!
//! This crate proxies one client connection at a time as a deterministic state machine: client
//! request → rewritten upstream request → the upstream's `101 Switching Protocols` → a byte
//! tunnel, plus ordinary HTTP/1.1 requests. It mirrors nginx's `ngx_http_upstream_upgrade` where
//! nginx is right and does better where it is weak (see [`manual`]).
//!
//! It contains **no networking code, no threads, no async and no clock reads**. A driver (the
//! adapters in this workspace, or your own server) owns the sockets and the timer, and talks to a
//! [`Session`] through four families of methods, in the style of quinn-proto:
//!
//! * **getters** — [`Session::read_window`], [`Session::pending`], [`Session::counters`],
//!   [`Session::phase_name`], [`Session::is_closed`];
//! * **`handle_*` inputs** — bytes read ([`Session::read_buf`] + [`Session::handle_read`], or the
//!   copying [`Session::handle_data`]), [`Session::handle_eof`], [`Session::handle_error`],
//!   [`Session::handle_connected`], [`Session::handle_connect_failed`],
//!   [`Session::handle_written`], [`Session::handle_timeout`]; each takes `now: Instant`;
//! * **`poll_*` outputs** — [`Session::poll_event`] (connect, tunnel established, shut down a
//!   write side, release the upstream, close), [`Session::transmit`] /
//!   [`Session::transmit_vectored`] (bytes to write to each peer) and
//!   [`Session::poll_timeout`] (the next deadline).
//!
//! **The rule:** after any input, drain `poll_event`, write what `transmit` offers, read at most
//! `read_window` bytes from each peer, and sleep until `poll_timeout`.
//!
//! ```no_run
//! use std::io::{Read, Write};
//! use std::net::{Shutdown, TcpListener, TcpStream};
//! use std::sync::Arc;
//! use std::time::Instant;
//! use switchyard_proto::{ClientInfo, Config, Event, Session, Side};
//!
//! let listener = TcpListener::bind("127.0.0.1:8080")?;
//! let (mut client, addr) = listener.accept()?;
//! client.set_nonblocking(true)?;
//! let info = ClientInfo { addr: Some(addr), secure: false };
//! let mut session = Session::new(Arc::new(Config::default()), info, Instant::now());
//! let mut upstream: Option<TcpStream> = None;
//! while !session.is_closed() {
//!     let now = Instant::now();
//!     while let Some(event) = session.poll_event() {
//!         match event {
//!             Event::Connect => {
//!                 let stream = TcpStream::connect("127.0.0.1:9000")?;
//!                 stream.set_nonblocking(true)?;
//!                 upstream = Some(stream);
//!                 session.handle_connected(now);
//!             }
//!             Event::Shutdown(Side::Client) => client.shutdown(Shutdown::Write)?,
//!             Event::Shutdown(Side::Upstream) => {
//!                 if let Some(u) = &upstream { u.shutdown(Shutdown::Write)?; }
//!             }
//!             Event::ReleaseUpstream { .. } => upstream = None,
//!             Event::Close(summary) => eprintln!("done: {summary:?}"),
//!             _ => {}
//!         }
//!     }
//!     for (side, stream) in [(Side::Client, Some(&mut client)), (Side::Upstream, upstream.as_mut())] {
//!         let Some(stream) = stream else { continue };
//!         if let Some(bytes) = session.transmit(side) {
//!             if let Ok(n) = stream.write(bytes) { session.handle_written(side, n, now); }
//!         }
//!         if session.read_window(side) > 0 {
//!             match stream.read(session.read_buf(side)) {
//!                 Ok(0) => session.handle_eof(side, now),
//!                 Ok(n) => session.handle_read(side, n, now),
//!                 Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => session.handle_read(side, 0, now),
//!                 Err(_) => session.handle_error(side, now),
//!             }
//!         }
//!     }
//!     session.handle_timeout(Instant::now()); // a real driver sleeps until poll_timeout()
//! }
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! (A real driver waits for readiness instead of spinning; the adapters do.)
//!
//! ## Where things live
//!
//! | module | concept |
//! |---|---|
//! | [`session`] | the state machine and its diagram; the only place transitions happen |
//! | [`head`] | head scanning (O(n), bounded), request and response parsing and validation |
//! | [`upgrade`] | what the client offered and whether a 101 may start a tunnel |
//! | [`body`] | Content-Length and strict chunked decoding, canonical re-encoding |
//! | [`rewrite`], [`rules`] | the heads the proxy sends; user header rules with variables |
//! | [`pool`] | the upstream connection pool's policy (idle lists, caps, timeouts) |
//! | [`upstream`] | round-robin over upstream servers, with the failover order |
//! | [`timer`] | every deadline, as one table |
//! | [`error`] | typed errors and their one mapping to status codes |
//! | [`config`] | limits, timeouts and policies with their defaults |
//! | [`manual`] | where we follow nginx exactly, where we differ, and why |
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod body;
mod buffer;
pub mod config;
pub mod error;
pub mod head;
pub mod manual;
pub mod pool;
pub mod rewrite;
pub mod rules;
pub mod session;
pub mod timer;
pub mod upgrade;
pub mod upstream;

pub use config::{
    Config, ConfigError, HalfClose, HostHeader, IpNet, Limits, ProxyConfig, Timeouts,
};
pub use error::{Error, RequestError, ResponseError, StatusCode, Timeout, UpstreamError};
pub use pool::{Pool, PoolConfig, Pooled};
pub use rewrite::ClientInfo;
pub use session::{Counters, Event, Session, Side, Summary};
pub use timer::Timer;
pub use upstream::{ConnectReason, Failover, UpstreamGroup};
