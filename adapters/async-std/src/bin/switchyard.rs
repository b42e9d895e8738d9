//! `switchyard`: the quick-mode proxy.
//!
//! ```text
//! switchyard --listen 127.0.0.1:8080 --upstream 127.0.0.1:9000
//! ```
//!
//! proxies everything on that port (HTTP and WebSocket) to the upstreams with the core's
//! defaults. Once listening it prints `listening on ADDR` per listener on stdout (the real bound
//! address, so `--listen 127.0.0.1:0` works for scripts); logs go to stderr (`RUST_LOG`, default
//! `info`). SIGTERM or SIGINT stop it cleanly (exit status 0); a bad flag or address is a
//! one-line error and exit status 2.

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::num::NonZeroUsize;
use std::process::ExitCode;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::Parser;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use switchyard_async_std::{spawn_many, ProxyConfig};
use switchyard_proto::Config;

/// Exit status for a bad flag or address.
const USAGE_ERROR: u8 = 2;

/// An HTTP/1.1 and WebSocket reverse proxy.
#[derive(Debug, Parser)]
#[command(name = "switchyard", version)]
struct Cli {
    /// Address to listen on (repeatable), e.g. 127.0.0.1:8080; port 0 picks a free port.
    #[arg(long = "listen", value_name = "ADDR", required = true)]
    listen: Vec<SocketAddr>,
    /// Upstream server (repeatable): one round-robin group with failover on connect errors.
    #[arg(long = "upstream", value_name = "HOST:PORT", required = true, value_parser = parse_authority)]
    upstream: Vec<String>,
    /// Close a tunnel with no byte in either direction for this long (e.g. 1h, 90, 500ms).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    tunnel_idle_timeout: Option<Duration>,
    /// Time for the upstream response head, and between two reads of its body.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    read_timeout: Option<Duration>,
    /// Time to establish an upstream connection.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    connect_timeout: Option<Duration>,
    /// Time for the whole client request head to arrive.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    header_timeout: Option<Duration>,
    /// Executor threads (default: the number of cores).
    #[arg(long, value_name = "N")]
    workers: Option<NonZeroUsize>,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            print!("{e}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let message = e.to_string();
            let first = message.lines().next().unwrap_or("invalid arguments");
            eprintln!("switchyard: {}", first.trim_start_matches("error: "));
            return ExitCode::from(USAGE_ERROR);
        }
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("switchyard: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> std::io::Result<ExitCode> {
    let mut core = Config::default();
    let timeouts = &mut core.timeouts;
    if let Some(d) = cli.tunnel_idle_timeout {
        timeouts.tunnel_idle = d;
    }
    if let Some(d) = cli.read_timeout {
        timeouts.upstream_response = d;
    }
    if let Some(d) = cli.connect_timeout {
        timeouts.connect = d;
    }
    if let Some(d) = cli.header_timeout {
        timeouts.client_header = d;
    }
    // nginx's `$proxy_host`: the first upstream names the group.
    core.upstream_authority.clone_from(&cli.upstream[0]);
    if let Err(e) = core.validate() {
        eprintln!("switchyard: {e}");
        return Ok(ExitCode::from(USAGE_ERROR));
    }

    let mut listeners = Vec::with_capacity(cli.listen.len());
    for addr in &cli.listen {
        match TcpListener::bind(addr) {
            Ok(listener) => listeners.push(listener),
            Err(e) => {
                eprintln!("switchyard: cannot listen on {addr}: {e}");
                return Ok(ExitCode::from(USAGE_ERROR));
            }
        }
    }
    // Registered before the first line is printed: a script may signal as soon as it reads it.
    let mut signals = Signals::new([SIGTERM, SIGINT])?;
    let config = ProxyConfig::new(core, cli.upstream);
    let handle = spawn_many(listeners, config, cli.workers.map(NonZeroUsize::get))?;
    {
        let mut out = std::io::stdout().lock();
        for addr in handle.local_addrs() {
            writeln!(out, "listening on {addr}")?;
        }
        out.flush()?;
    }
    if let Some(signal) = signals.forever().next() {
        log::info!("signal {signal}: shutting down");
    }
    handle.shutdown();
    Ok(ExitCode::SUCCESS)
}

/// `HOST:PORT`, with a non-empty host and a port number.
fn parse_authority(value: &str) -> Result<String, String> {
    let bad = || format!("expected HOST:PORT, got {value:?}");
    let (host, port) = value.rsplit_once(':').ok_or_else(bad)?;
    if host.is_empty() || port.parse::<u16>().is_err() || value.contains('/') {
        return Err(bad());
    }
    Ok(value.to_owned())
}

/// A duration: `90` (seconds), `500ms`, `60s`, `2m`, `1h`. Zero is refused.
fn parse_duration(value: &str) -> Result<Duration, String> {
    let bad = || format!("expected a duration such as 90, 500ms, 60s, 2m or 1h, got {value:?}");
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let number: u64 = number.parse().map_err(|_| bad())?;
    let duration = match unit {
        "" | "s" => Duration::from_secs(number),
        "ms" => Duration::from_millis(number),
        "m" => Duration::from_secs(number.checked_mul(60).ok_or_else(bad)?),
        "h" => Duration::from_secs(number.checked_mul(3600).ok_or_else(bad)?),
        _ => return Err(bad()),
    };
    if duration.is_zero() {
        return Err(format!("a duration must be more than zero, got {value:?}"));
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_the_documented_units() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        for bad in ["", "s", "1.5s", "-1", "10x", "0", "1 h", "ms500"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn upstreams_need_a_host_and_a_port() {
        assert!(parse_authority("127.0.0.1:9000").is_ok());
        assert!(parse_authority("backend.internal:80").is_ok());
        assert!(parse_authority("[::1]:80").is_ok());
        for bad in ["127.0.0.1", ":80", "host:", "host:99999", "http://host:80"] {
            assert!(parse_authority(bad).is_err(), "{bad:?} accepted");
        }
    }
}
