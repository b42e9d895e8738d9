//! Everything a session can be told, with the defaults a production proxy wants.
//!
//! One [`Config`] is shared (behind an `Arc`) by all sessions of a listener. Each default names its
//! precedent: most mirror nginx; the tunnel timeouts deliberately do not (nginx's 60 s
//! `proxy_read_timeout` silently kills idle WebSockets).

use std::net::IpAddr;
use std::time::Duration;

use crate::rules::HeaderRule;

/// Size bounds. Every buffer the session holds is bounded by one of these.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Longest request line accepted; longer gets 414. nginx: one large header buffer, 8 KiB.
    pub max_request_line: usize,
    /// Largest request head (request line + fields) accepted; larger gets 431.
    /// nginx: 4 × 8 KiB large header buffers.
    pub max_head_bytes: usize,
    /// Most header fields accepted in a request head; more gets 431.
    pub max_headers: usize,
    /// Largest upstream response head accepted; larger gets 502. nginx: `proxy_buffer_size`.
    pub max_response_head_bytes: usize,
    /// Most header fields accepted in a response head; more gets 502.
    pub max_response_headers: usize,
    /// Longest chunk-size line (size + extensions) accepted in a chunked body.
    pub max_chunk_line: usize,
    /// Largest request body accepted (413 before reading it). `None`: no limit (streamed anyway).
    pub max_body_size: Option<u64>,
    /// Bytes buffered per direction (tunnel and bodies): the read window never exceeds it.
    pub buffer_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_request_line: 8 * 1024,
            max_head_bytes: 32 * 1024,
            max_headers: 100,
            max_response_head_bytes: 32 * 1024,
            max_response_headers: 100,
            max_chunk_line: 4 * 1024,
            max_body_size: None,
            buffer_size: 16 * 1024,
        }
    }
}

/// Every deadline the session keeps. All of them are inactivity timeouts except `client_header`,
/// which (like nginx's `client_header_timeout`) is armed once and not pushed back by slow bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timeouts {
    /// Time for the whole client request head to arrive (408). nginx: 60 s.
    pub client_header: Duration,
    /// Time between two reads of a request body (408). nginx `client_body_timeout`: 60 s.
    pub client_body: Duration,
    /// Time to establish the upstream connection (504). nginx: 60 s.
    pub connect: Duration,
    /// Time for the upstream response head, and between two reads of its body (504). nginx: 60 s.
    pub upstream_response: Duration,
    /// A tunnel with no byte in either direction is closed after this. nginx: 60 s (on upstream
    /// reads only); ours: 1 hour, reset by traffic in either direction.
    pub tunnel_idle: Duration,
    /// A tunnel with one direction closed is closed after this much inactivity (HAProxy's
    /// `timeout client-fin`/`server-fin`).
    pub half_closed: Duration,
    /// A peer that accepts no byte we write for this long is given up. nginx `send_timeout`: 60 s.
    pub send_stall: Duration,
    /// A kept-alive client connection with no new request is closed after this. nginx: 75 s.
    pub keepalive_idle: Duration,
    /// After the proxy's last response on a connection it closes, how long it keeps reading and
    /// discarding client input so that the response is not destroyed by a TCP reset. nginx
    /// `lingering_timeout`: 5 s.
    pub linger: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            client_header: Duration::from_secs(60),
            client_body: Duration::from_secs(60),
            connect: Duration::from_secs(60),
            upstream_response: Duration::from_secs(60),
            tunnel_idle: Duration::from_secs(3600),
            half_closed: Duration::from_secs(60),
            send_stall: Duration::from_secs(60),
            keepalive_idle: Duration::from_secs(75),
            linger: Duration::from_secs(5),
        }
    }
}

/// What the `Host` field of the upstream request carries.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum HostHeader {
    /// The client's `Host` (or the authority of its absolute-form target). The default.
    #[default]
    Preserve,
    /// [`Config::upstream_authority`], as nginx's default `$proxy_host`.
    Upstream,
}

/// What a FIN from one side of the tunnel does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum HalfClose {
    /// Shut down the write side of the other peer and keep relaying the other direction; close when
    /// both directions have ended. The default (as HAProxy, tokio's `copy_bidirectional`).
    #[default]
    Propagate,
    /// nginx-compatible: deliver what is buffered from the closing side, then close both.
    CloseBoth,
}

/// An IP network (`addr/prefix`), used to list trusted proxies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    /// The network address.
    pub addr: IpAddr,
    /// Prefix length in bits.
    pub prefix: u8,
}

impl IpNet {
    /// Whether `ip` lies in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let bits = u32::from(self.prefix.min(32));
                let mask = if bits == 0 {
                    0
                } else {
                    u32::MAX << (32 - bits)
                };
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let bits = u32::from(self.prefix.min(128));
                let mask = if bits == 0 {
                    0
                } else {
                    u128::MAX << (128 - bits)
                };
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// The configuration shared by all sessions of a listener.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Size bounds.
    pub limits: Limits,
    /// Deadlines.
    pub timeouts: Timeouts,
    /// Upgrade protocols the proxy tunnels, compared case-insensitively with the protocol name
    /// (the part before any `/`). Default: `websocket`. `h2c` is never tunnelled, whatever this says.
    pub upgrade_protocols: Vec<String>,
    /// The upstream's authority (`host[:port]`), nginx's `$proxy_host`.
    pub upstream_authority: String,
    /// What the upstream request's `Host` carries.
    pub host_header: HostHeader,
    /// Peers whose `X-Forwarded-For` is trusted and appended to (instead of replaced).
    pub trusted_proxies: Vec<IpNet>,
    /// Send `X-Forwarded-For`, `X-Forwarded-Proto` and `X-Forwarded-Host` upstream. Default: on.
    pub forwarded_headers: bool,
    /// User rules applied to the upstream request, after the built-in rewriting.
    pub header_rules: Vec<HeaderRule>,
    /// Tunnel half-close behaviour.
    pub half_close: HalfClose,
    /// Verify `Sec-WebSocket-Accept` in a 101 against the client's key. With the
    /// `websocket-accept` feature the value is recomputed (SHA-1 of the key and the RFC 6455
    /// GUID); without it, strict mode only requires exactly one non-empty `Sec-WebSocket-Accept`.
    pub strict_websocket: bool,
    /// Forward client header fields whose names contain `_`. nginx drops them by default
    /// (`underscores_in_headers off`), because CGI-style backends confuse `X_A` with `X-A`.
    pub underscores_in_headers: bool,
    /// Most requests served on one client connection.
    pub max_requests_per_connection: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            timeouts: Timeouts::default(),
            upgrade_protocols: vec!["websocket".to_owned()],
            upstream_authority: "localhost".to_owned(),
            host_header: HostHeader::default(),
            trusted_proxies: Vec::new(),
            forwarded_headers: true,
            header_rules: Vec::new(),
            half_close: HalfClose::default(),
            strict_websocket: false,
            underscores_in_headers: false,
            max_requests_per_connection: 1000,
        }
    }
}

/// Everything one listener of a driver needs: the core's configuration, the upstream servers
/// and the pool limits. Cheap to clone (the shared parts are behind `Arc`s); every adapter
/// takes one.
#[derive(Clone, Debug)]
pub struct ProxyConfig {
    /// The core's limits, timeouts and policies, shared by every session.
    pub core: std::sync::Arc<Config>,
    /// The upstream servers, used round-robin with failover on connect errors.
    pub upstreams: std::sync::Arc<crate::upstream::UpstreamGroup>,
    /// Limits of the idle upstream connection pool.
    pub pool: crate::pool::PoolConfig,
}

impl ProxyConfig {
    /// A configuration proxying to `upstreams` (`host:port` each) with the default pool limits.
    pub fn new(core: Config, upstreams: Vec<String>) -> Self {
        Self {
            core: std::sync::Arc::new(core),
            upstreams: std::sync::Arc::new(crate::upstream::UpstreamGroup::new(upstreams)),
            pool: crate::pool::PoolConfig::default(),
        }
    }
}

/// Why a [`Config`] cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// [`Config::upstream_authority`] is not a valid `host[:port]` (it is written into `Host`).
    InvalidUpstreamAuthority,
    /// An entry of [`Config::upgrade_protocols`] is not a token.
    InvalidUpgradeProtocol,
    /// A limit is zero, or `max_request_line` exceeds `max_head_bytes`.
    InvalidLimits,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::InvalidUpstreamAuthority => "the upstream authority is not a valid host[:port]",
            Self::InvalidUpgradeProtocol => "an upgrade protocol is not a token",
            Self::InvalidLimits => {
                "a limit is zero, or the request line limit exceeds the head limit"
            }
        })
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Checks what sessions cannot check per request; call it once at startup. (Sessions also
    /// never write an invalid authority: see [`rewrite`](crate::rewrite).)
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !crate::head::request::is_valid_host(self.upstream_authority.as_bytes()) {
            return Err(ConfigError::InvalidUpstreamAuthority);
        }
        if !self.upgrade_protocols.iter().all(|p| {
            p.split('/')
                .all(|part| crate::head::is_token(part.as_bytes()))
        }) {
            return Err(ConfigError::InvalidUpgradeProtocol);
        }
        let l = &self.limits;
        if l.buffer_size == 0
            || l.max_headers == 0
            || l.max_response_headers == 0
            || l.max_chunk_line == 0
            || l.max_request_line > l.max_head_bytes
        {
            return Err(ConfigError::InvalidLimits);
        }
        Ok(())
    }

    /// Whether `protocol` (an `Upgrade` token, `name[/version]`) may be tunnelled.
    pub fn allows_upgrade(&self, protocol: &[u8]) -> bool {
        let name = protocol.split(|&b| b == b'/').next().unwrap_or(protocol);
        if name.eq_ignore_ascii_case(b"h2c") || name.is_empty() {
            return false;
        }
        self.upgrade_protocols
            .iter()
            .any(|p| p.as_bytes().eq_ignore_ascii_case(name))
    }

    /// Whether `ip` is a trusted proxy.
    pub fn is_trusted_proxy(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_refuses_what_would_break_every_request() {
        assert_eq!(Config::default().validate(), Ok(()));
        let c = Config {
            upstream_authority: "backend:8080\r\nX-Evil: 1".to_owned(),
            ..Config::default()
        };
        assert_eq!(c.validate(), Err(ConfigError::InvalidUpstreamAuthority));
        let mut c = Config::default();
        c.upgrade_protocols.push("web socket".to_owned());
        assert_eq!(c.validate(), Err(ConfigError::InvalidUpgradeProtocol));
        let mut c = Config::default();
        c.limits.buffer_size = 0;
        assert_eq!(c.validate(), Err(ConfigError::InvalidLimits));
    }
}
