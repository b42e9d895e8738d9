//! `race-switchyard-tokio`: the switchyard core behind the tokio adapter, for the race.
//!
//! ```text
//! race-switchyard-tokio --listen 127.0.0.1:0 --upstream 127.0.0.1:9000
//! ```
//!
//! The `switchyard` binary runs the async-std adapter; this one serves the same core with the
//! same settings as the race gives that binary (`--workers 1`, `--tunnel-idle-timeout 1h`)
//! through `switchyard_tokio::serve` on a current-thread tokio runtime (one thread doing both
//! the I/O polling and the sessions), so the race can tell the core's cost from the
//! adapter's. Prints `listening on ADDR` once bound; SIGTERM ends it.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use switchyard_proto::Config;
use switchyard_tokio::{serve, ProxyConfig};

fn main() -> ExitCode {
    let mut listen: Option<SocketAddr> = None;
    let mut upstream: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match (flag.as_str(), args.next()) {
            ("--listen", Some(v)) => listen = v.parse().ok(),
            ("--upstream", Some(v)) => upstream = Some(v),
            _ => listen = None,
        }
    }
    let (Some(listen), Some(upstream)) = (listen, upstream) else {
        eprintln!("usage: race-switchyard-tokio --listen ADDR --upstream HOST:PORT");
        return ExitCode::from(2);
    };
    let mut core = Config::default();
    core.timeouts.tunnel_idle = Duration::from_secs(3600);
    core.upstream_authority.clone_from(&upstream);
    let config = ProxyConfig::new(core, vec![upstream]);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("race-switchyard-tokio: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        println!("listening on {}", listener.local_addr()?);
        serve(listener, config).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("race-switchyard-tokio: {e}");
            ExitCode::FAILURE
        }
    }
}
