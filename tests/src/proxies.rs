//! The four proxies under test: the three library adapters, started with their `spawn`, and the
//! `switchyard` binary, started as a child process.
//!
//! The adapters expose the same API (`ProxyConfig`, `spawn`, `ProxyHandle`) from three crates,
//! so one macro writes the three implementations.

use std::net::{SocketAddr, TcpListener};

use crate::harness::{ProxyUnderTest, Running, Setup};

pub use crate::binary::Binary;

macro_rules! library_adapter {
    ($(#[$doc:meta])* $name:ident, $handle:ident, $krate:ident, $label:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub struct $name;

        impl ProxyUnderTest for $name {
            const NAME: &'static str = $label;
            const IN_PROCESS: bool = true;

            fn start(setup: &Setup) -> Box<dyn Running> {
                let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy listener");
                let config = $krate::ProxyConfig::new(setup.core(), setup.upstream_strings());
                let handle = $krate::spawn(listener, config, Some(setup.workers))
                    .unwrap_or_else(|e| panic!("{}: spawn failed: {e}", $label));
                Box::new($handle(handle))
            }
        }

        /// A running proxy of this adapter.
        struct $handle($krate::ProxyHandle);

        impl Running for $handle {
            fn addr(&self) -> SocketAddr {
                self.0.local_addr()
            }

            fn open_sessions(&self) -> Option<usize> {
                Some(self.0.open_sessions())
            }

            fn pid(&self) -> u32 {
                std::process::id()
            }

            fn shutdown(self: Box<Self>) {
                self.0.shutdown();
            }
        }
    };
}

library_adapter!(
    /// `switchyard-async-std`, started with its `spawn`.
    AsyncStd,
    AsyncStdHandle,
    switchyard_async_std,
    "async-std"
);
library_adapter!(
    /// `switchyard-tokio`, started with its `spawn`.
    Tokio,
    TokioHandle,
    switchyard_tokio,
    "tokio"
);
library_adapter!(
    /// `switchyard-blocking`, started with its `spawn`.
    Blocking,
    BlockingHandle,
    switchyard_blocking,
    "blocking"
);
