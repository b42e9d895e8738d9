//! The `rewrite` target: upstream requests written from structured, validated request heads
//! under arbitrary configurations and user header rules.
//!
//! The input chooses a request (method, target, version, fields from a vocabulary of the
//! interesting names and values or raw bytes), the configuration (forwarded headers, `Host`
//! policy, trusted proxies, underscores, allowed upgrades), the client and up to eight rules
//! built with `HeaderRule::new` (refused rules are skipped, and must have deserved it). The head
//! is validated by `parse_request_head`; whatever it accepts must rewrite into a request that
//! passes every check of [`super::request`], the field model included: no CR/LF injection,
//! exactly one `Host`, framing never duplicated, rules applied as documented.

use std::net::SocketAddr;

use bytes::Bytes;
use switchyard_proto::head::request::parse_request_head;
use switchyard_proto::rules::{HeaderAction, HeaderRule, RuleContext, RuleError};
use switchyard_proto::upgrade::client_offer;
use switchyard_proto::{ClientInfo, Config, HostHeader, IpNet};

use super::input::Source;
use super::request::{check_request_head, check_upstream_request, upstream_head};
use super::wire::{is_token, show};
use super::{Checked, Violation};

const METHODS: &[&str] = &["GET", "POST", "HEAD", "OPTIONS", "PUT", "DELETE", "PATCH"];
const TARGETS: &[&str] = &[
    "/",
    "/a/b?c=d&e",
    "http://b.example/x?y",
    "https://[::1]:8443",
    "*",
    "/%2e%2e/x",
    "http://b?q",
];
const NAMES: &[&str] = &[
    "Host",
    "Connection",
    "Upgrade",
    "TE",
    "Transfer-Encoding",
    "Content-Length",
    "X-Forwarded-For",
    "X-Forwarded-Proto",
    "X-Forwarded-Host",
    "Keep-Alive",
    "Proxy-Connection",
    "Trailer",
    "Expect",
    "Cookie",
    "X-A",
    "x_a",
    "Sec-WebSocket-Key",
    "X-Real-IP",
];
const VALUES: &[&str] = &[
    "a",
    "websocket",
    "Upgrade",
    "upgrade, X-A",
    "close, X-Forwarded-For",
    "keep-alive",
    "chunked",
    "5",
    "0",
    "1.2.3.4, 5.6.7.8",
    "100-continue",
    "h2c",
    "websocket, foo/1, WebSocket",
    "https",
    "b.example:80",
    "",
];
const TEMPLATE_PIECES: &[&str] = &[
    "$remote_addr",
    "$remote_port",
    "$host",
    "$http_host",
    "$scheme",
    "$request_method",
    "$request_uri",
    "$uri",
    "$args",
    "$server_protocol",
    "$proxy_host",
    "$proxy_add_x_forwarded_for",
    "$connection_upgrade",
    "$http_x_a",
    "${http_cookie}",
    "$http_",
    "$nope",
    "${",
    "$",
    " ",
    "\t",
    "\r\n",
    "é",
];
const AUTHORITIES: &[&str] = &["localhost", "backend:8080", "[::1]:9000", "10.0.0.1"];

/// A vocabulary word or raw bytes (as lossy text).
fn word(src: &mut Source<'_>, vocabulary: &[&str], raw_max: usize) -> String {
    let i = src.below(vocabulary.len() + 1);
    match vocabulary.get(i) {
        Some(w) => (*w).to_owned(),
        None => String::from_utf8_lossy(src.string(raw_max)).into_owned(),
    }
}

/// A request head on the wire, built from the input.
fn request_bytes(src: &mut Source<'_>) -> Vec<u8> {
    let eol: &[u8] = if src.flag() { b"\n" } else { b"\r\n" };
    let mut out = Vec::new();
    out.extend_from_slice(word(src, METHODS, 8).as_bytes());
    out.push(b' ');
    out.extend_from_slice(word(src, TARGETS, 24).as_bytes());
    out.extend_from_slice(if src.below(4) == 0 {
        b" HTTP/1.0"
    } else {
        b" HTTP/1.1"
    });
    out.extend_from_slice(eol);
    let fields = src.below(13);
    for _ in 0..fields {
        out.extend_from_slice(word(src, NAMES, 12).as_bytes());
        out.extend_from_slice(src.pick(&[&b": "[..], b":", b":\t", b" : "]));
        out.extend_from_slice(word(src, VALUES, 24).as_bytes());
        out.extend_from_slice(eol);
    }
    out.extend_from_slice(eol);
    out
}

/// A rule template built from variables, whitespace, control bytes and raw text.
fn template(src: &mut Source<'_>) -> String {
    let pieces = src.below(5);
    (0..pieces).map(|_| word(src, TEMPLATE_PIECES, 8)).collect()
}

/// Builds up to eight rules; a refused rule must have deserved it.
fn rules(src: &mut Source<'_>) -> Result<Vec<HeaderRule>, Violation> {
    let count = src.below(9);
    let mut rules = Vec::new();
    for _ in 0..count {
        let action = src.pick(&[HeaderAction::Set, HeaderAction::Add, HeaderAction::Remove]);
        let name = word(src, NAMES, 12);
        let template = template(src);
        match HeaderRule::new(action, &name, &template) {
            Ok(rule) => {
                ensure!(
                    is_token(name.as_bytes())
                        && !template
                            .bytes()
                            .any(|b| (b < 0x20 && b != b'\t') || b == 0x7f),
                    "rewrite.rule-validation",
                    "accepted {action:?} {name:?} {template:?}"
                );
                rules.push(rule);
            }
            Err(RuleError::InvalidName) => ensure!(
                !is_token(name.as_bytes()),
                "rewrite.rule-validation",
                "refused the token {name:?}"
            ),
            Err(_) => {}
        }
    }
    Ok(rules)
}

fn config(src: &mut Source<'_>) -> Config {
    let mut config = Config::default();
    let flags = src.byte();
    config.forwarded_headers = flags & 1 == 0;
    config.host_header = if flags & 2 == 0 {
        HostHeader::Preserve
    } else {
        HostHeader::Upstream
    };
    config.underscores_in_headers = flags & 4 != 0;
    if flags & 8 != 0 {
        config.trusted_proxies = vec![
            IpNet {
                addr: [192, 0, 2, 0].into(),
                prefix: 24,
            },
            IpNet {
                addr: std::net::Ipv6Addr::LOCALHOST.into(),
                prefix: 128,
            },
        ];
    }
    if flags & 16 != 0 {
        config.upgrade_protocols = vec!["websocket".to_owned(), "foo".to_owned(), "h2c".to_owned()];
    }
    config.upstream_authority = src.pick(AUTHORITIES).to_owned();
    config
}

fn client(src: &mut Source<'_>) -> ClientInfo {
    let addr = match src.below(3) {
        0 => Some(SocketAddr::from(([192, 0, 2, 7], 50000))),
        1 => Some(SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 1))),
        _ => None,
    };
    ClientInfo {
        addr,
        secure: src.flag(),
    }
}

/// The `rewrite` fuzz target.
pub(crate) fn run(data: &[u8]) -> Checked {
    let mut src = Source::new(data);
    let mut config = config(&mut src);
    let client = client(&mut src);
    config.header_rules = rules(&mut src)?;
    let wire = request_bytes(&mut src);
    let Ok(request) = parse_request_head(Bytes::from(wire), &config) else {
        return Ok(());
    };
    check_request_head(&request, &config)?;
    let ctx = RuleContext {
        request: &request,
        client: &client,
        config: &config,
        upgrading: client_offer(&request, &config).is_some(),
    };
    for rule in &config.header_rules {
        let value = rule.evaluate(&ctx);
        ensure!(
            !value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f),
            "rewrite.clean-values",
            "{rule:?} evaluated to {:?}",
            show(&value)
        );
    }
    let out = upstream_head(&request, &config, &client);
    check_upstream_request(&out, &request, &config, &client)
}
