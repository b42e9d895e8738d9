//! # switchyard-tests: one conformance suite, every driver
//!
//! Switchyard's protocol decisions live in `switchyard-proto`; the adapters only move bytes. This
//! crate checks that each way of running the proxy — `switchyard-async-std`,
//! `switchyard-tokio`, `switchyard-blocking` and the `switchyard` binary — behaves the same with
//! real peers on 127.0.0.1: WebSocket clients and servers (tungstenite, Python `websockets`),
//! raw sockets that count every byte, plain HTTP, the Autobahn cases, and clients that vanish
//! at every stage.
//!
//! A scenario is written once, as a function generic over [`ProxyUnderTest`]
//! (see [`scenarios`]); [`conformance_suite!`] instantiates every scenario for every proxy, so
//! `tests/conformance.rs` is one macro call and the test names read `tokio::tunnel::echo_16_mib`.
//! Next to it, `tests/binary_cli.rs` checks the binary's command line, and `tests/embedding.rs`
//! each adapter's embedding API (`proxy_connection`, `Context::shutdown`, `serve`), which no
//! [`ProxyUnderTest`] reaches; the adapter crates keep no end-to-end tests of their own.
//!
//! ```text
//! cargo test -p switchyard-tests                     # everything
//! cargo test -p switchyard-tests -- tokio::          # one proxy
//! cargo test -p switchyard-tests -- slow_reader      # one scenario, every proxy
//! bash tests/python/setup.sh                         # once: the Python peers (CI does it)
//! ```
//!
//! Environment: `SWITCHYARD_BIN` (use this binary instead of building it, see [`binary`]),
//! `SWITCHYARD_LOG` (`RUST_LOG` for the binary, default `warn`), `SWITCHYARD_PYTHON` and
//! `SWITCHYARD_REQUIRE_PYTHON` (see [`python`]).
//!
//! Linux only: leak checks read `/proc`.

pub mod binary;
pub mod harness;
pub mod peers;
pub mod proxies;
pub mod python;
pub mod rng;
pub mod scenarios;

pub use harness::{Proxy, ProxyUnderTest, Running, Setup};

/// Instantiates every scenario of [`scenarios`] as a `#[test]` for each proxy given, in a module
/// named after it:
///
/// ```ignore
/// switchyard_tests::conformance_suite! {
///     tokio => switchyard_tests::proxies::Tokio,
///     binary => switchyard_tests::proxies::Binary,
/// }
/// ```
///
/// A new scenario is added here once and runs against every proxy.
#[macro_export]
macro_rules! conformance_suite {
    ($($module:ident => $proxy:ty),+ $(,)?) => {
        $(
            mod $module {
                $crate::__scenario_tests! {
                    $proxy;
                    websocket {
                        text_and_binary, large_message, fragmentation, ping_pong,
                        close_client_initiated, close_server_initiated, close_abrupt_server,
                        close_abrupt_client, subprotocol, deflate_negotiation,
                    }
                    tunnel {
                        echo_16_mib, early_data_both_ways, non_101_answer, refused_101s,
                        half_close_from_client, half_close_from_upstream, idle_timeout,
                        slow_reader,
                    }
                    http {
                        content_length_bodies, chunked_bodies, large_response,
                        keep_alive_and_upstream_reuse, pipelining, upstream_down_is_502,
                        upstream_silent_is_504,
                    }
                    upstreams {
                        round_robin_across_upstreams, failover_to_next_upstream,
                        idle_connection_closed_by_upstream_is_not_reused,
                        connection_lost_under_a_request_is_replaced,
                        idle_connections_beyond_the_pool_limit_are_closed,
                    }
                    disconnect {
                        client_disconnects_at_every_stage, shutdown_with_live_sessions,
                    }
                    load {
                        thousand_concurrent_tunnels,
                    }
                    interop {
                        python_websockets, autobahn_differential,
                    }
                }
            }
        )+
    };
}

/// Implementation detail of [`conformance_suite!`]: one module per scenario group, one test per
/// scenario.
#[doc(hidden)]
#[macro_export]
macro_rules! __scenario_tests {
    ($proxy:ty; $($group:ident { $($scenario:ident),+ $(,)? })+) => {
        $(
            mod $group {
                $(
                    #[test]
                    fn $scenario() {
                        $crate::scenarios::$group::$scenario::<$proxy>();
                    }
                )+
            }
        )+
    };
}
