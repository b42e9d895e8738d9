//! The scenarios, each a function generic over the proxy under test. [`conformance_suite!`]
//! (crate root) turns every one of them into a `#[test]` per proxy.
//!
//! | module | what |
//! |---|---|
//! | [`websocket`] | tungstenite client and server through the proxy: messages, fragments, control frames, close paths, subprotocol, deflate negotiation |
//! | [`tunnel`] | raw upgrade and tunnel: 16 MiB echo, early data, refused upgrades, half-close, idle timeout, slow reader |
//! | [`http`] | plain HTTP: bodies, keep-alive and upstream reuse, pipelining, 502, 504 |
//! | [`upstreams`] | round-robin, failover, the pool: stale idle connections, connections lost under a request, the idle limit |
//! | [`disconnect`] | clients leaving at every stage, shutdown with live sessions: no leaked session, fd or thread |
//! | [`load`] | 1,000 concurrent tunnels |
//! | [`interop`] | Python `websockets` on both sides; the Autobahn cases (kosoku) direct vs. proxied |
//!
//! [`conformance_suite!`]: crate::conformance_suite

pub mod disconnect;
pub mod http;
pub mod interop;
pub mod load;
pub mod tunnel;
pub mod upstreams;
pub mod websocket;
