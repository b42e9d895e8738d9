//! The `request_head` target, and the checks of every upstream request the proxy writes.
//!
//! `parse_request_head` runs on the raw input under two configurations. Whatever it accepts must
//! be clean (token method, no CR/LF/NUL anywhere, one `Host`, framing that matches the fields),
//! and the upstream request written from it must re-parse with httparse and carry exactly what
//! [`rewrite`](switchyard_proto::rewrite) documents: one `Host`, no hop-by-hop field, one framing
//! field matching the decided framing, `Upgrade` + `Connection: upgrade` only for an accepted
//! offer, the client's end-to-end fields in order, regenerated `X-Forwarded-*`, and the output of
//! the header rules (see [`expected_fields`]). The same bytes then go through a `Session`, whose
//! scanner must agree with the parser.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use switchyard_proto::head::request::{parse_request_head, RequestHead};
use switchyard_proto::head::{BodyFraming, Headers, Version};
use switchyard_proto::rewrite::write_upstream_request;
use switchyard_proto::rules::{HeaderAction, HeaderRule, RuleContext};
use switchyard_proto::upgrade::client_offer;
use switchyard_proto::{ClientInfo, Config, Event, HostHeader, IpNet, Session, Side};

use super::wire::{self, clean, is_token, show, Parsed, Span};
use super::Checked;

/// Field names the rewriting treats specially; checked on their own, not by the field model.
const SPECIAL: &[&str] = &[
    "host",
    "connection",
    "upgrade",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "content-length",
];

/// The client address every target uses.
pub(crate) fn client_info() -> ClientInfo {
    ClientInfo {
        addr: Some(SocketAddr::from(([192, 0, 2, 7], 50000))),
        secure: false,
    }
}

/// The configuration that exercises most of the rewriting: trusted client, underscores kept,
/// `Host` from the upstream, rules with variables.
pub(crate) fn busy_config() -> Config {
    let mut config = Config::default();
    config.underscores_in_headers = true;
    config.host_header = HostHeader::Upstream;
    config.upstream_authority = "backend.internal:8080".to_owned();
    config.trusted_proxies = vec![IpNet {
        addr: [192, 0, 2, 0].into(),
        prefix: 24,
    }];
    config.upgrade_protocols = vec!["websocket".to_owned(), "foo".to_owned()];
    config.header_rules = [
        HeaderRule::set("X-Real-IP", "$remote_addr"),
        HeaderRule::add("X-Via", "switchyard $server_protocol $http_x_a"),
        HeaderRule::remove("Cookie"),
        HeaderRule::set("Host", "$host"),
    ]
    .into_iter()
    .flatten()
    .collect();
    config
}

/// The `request_head` fuzz target.
pub(crate) fn run(data: &[u8]) -> Checked {
    let client = client_info();
    for config in [Config::default(), busy_config()] {
        if let Ok(request) = parse_request_head(Bytes::copy_from_slice(data), &config) {
            wire::same_fields(
                "request_head.same-fields",
                wire::request(data, "request_head.same-fields"),
                fields_of(&request.headers),
                !config.underscores_in_headers,
            )?;
            check_request_head(&request, &config)?;
            let out = upstream_head(&request, &config, &client);
            check_upstream_request(&out, &request, &config, &client)?;
        }
    }
    session_agrees(data)
}

/// The fields of a parsed head, as copies.
pub(crate) fn fields_of(headers: &Headers) -> impl Iterator<Item = (Vec<u8>, Vec<u8>)> + '_ {
    headers.iter().map(|f| (f.name.to_vec(), f.value.to_vec()))
}

/// The upstream head the proxy writes for `request`.
pub(crate) fn upstream_head(
    request: &RequestHead,
    config: &Config,
    client: &ClientInfo,
) -> Vec<u8> {
    let offer = client_offer(request, config);
    let mut out = BytesMut::new();
    write_upstream_request(
        request,
        offer.as_ref(),
        request.framing,
        client,
        config,
        &mut out,
    );
    out.to_vec()
}

/// Everything an accepted request head must satisfy.
pub(crate) fn check_request_head(head: &RequestHead, config: &Config) -> Checked {
    let shown = || format!("{head:?}");
    ensure!(
        is_token(&head.method),
        "request_head.token-method",
        "{}",
        shown()
    );
    let all_clean = clean(&head.method)
        && clean(&head.target)
        && clean(&head.path)
        && head.host.as_deref().map_or(true, clean)
        && head.headers.iter().all(|f| clean(f.name) && clean(f.value));
    ensure!(
        all_clean,
        "request_head.clean",
        "CR, LF or NUL in {}",
        shown()
    );
    ensure!(
        head.headers.iter().all(|f| is_token(f.name)),
        "request_head.token-names",
        "{}",
        shown()
    );
    ensure!(
        head.path.first() == Some(&b'/') || (&head.path[..] == b"*" && head.method_is("OPTIONS")),
        "request_head.origin-form",
        "path {:?}",
        show(&head.path)
    );
    ensure!(
        !head.method_is("CONNECT") && !head.method_is("TRACE"),
        "request_head.method-policy",
        "{}",
        shown()
    );
    let count = |name: &str| head.headers.iter().filter(|f| f.is(name)).count();
    ensure!(count("host") <= 1, "request_head.one-host", "{}", shown());
    ensure!(
        head.version == Version::Http10 || head.host.is_some(),
        "request_head.one-host",
        "HTTP/1.1 without an effective host: {}",
        shown()
    );
    if !config.underscores_in_headers {
        ensure!(
            head.headers.iter().all(|f| !f.name.contains(&b'_')),
            "request_head.underscores",
            "{}",
            shown()
        );
    }
    let (cl, te) = (count("content-length"), count("transfer-encoding"));
    let framing_ok = match head.framing {
        BodyFraming::None => cl == 0 && te == 0,
        BodyFraming::Length(n) => {
            te == 0
                && cl == 1
                && head
                    .header("content-length")
                    .is_some_and(|v| digits_are(v, n))
        }
        BodyFraming::Chunked => cl == 0 && te == 1 && head.version == Version::Http11,
        BodyFraming::CloseDelimited => false,
    };
    ensure!(
        framing_ok,
        "request_head.framing",
        "framing {:?} for {}",
        head.framing,
        shown()
    );
    Ok(())
}

/// Whether `value` is `1*DIGIT` worth `n`.
fn digits_are(value: &[u8], n: u64) -> bool {
    !value.is_empty()
        && value.iter().all(u8::is_ascii_digit)
        && std::str::from_utf8(value)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            == Some(n)
}

/// The upstream request written for `request` re-parses and carries exactly the documented
/// fields.
pub(crate) fn check_upstream_request(
    out: &[u8],
    request: &RequestHead,
    config: &Config,
    client: &ClientInfo,
) -> Checked {
    let parsed = wire::whole(out, true, "upstream.reparses")?;
    check_upstream_shape(out, &parsed)?;
    ensure!(
        parsed.method == request.method && parsed.path == request.path && parsed.minor == 1,
        "upstream.request-line",
        "request line of {:?} for {:?}",
        show(out),
        request
    );
    let offer = client_offer(request, config);
    let context = || format!("upstream {:?} for {request:?}", show(out));
    match &offer {
        Some(offer) => {
            let protocols: Vec<&[u8]> = offer.protocols.iter().map(|p| &p[..]).collect();
            let joined = protocols.join(&b", "[..]);
            ensure!(
                parsed.single("connection") == Some(b"upgrade")
                    && parsed.single("upgrade") == Some(&joined[..]),
                "upstream.hop-by-hop",
                "upgrade offer {protocols:?} not carried exactly once: {}",
                context()
            );
        }
        None => ensure!(
            parsed.count("connection") == 0 && parsed.count("upgrade") == 0,
            "upstream.hop-by-hop",
            "Connection/Upgrade without an accepted offer: {}",
            context()
        ),
    }
    let framing_fields = (
        parsed.single("content-length"),
        parsed.count("content-length"),
        parsed.single("transfer-encoding"),
        parsed.count("transfer-encoding"),
    );
    let framing_ok = match request.framing {
        BodyFraming::None | BodyFraming::CloseDelimited => {
            framing_fields.1 == 0 && framing_fields.3 == 0
        }
        BodyFraming::Length(n) => {
            framing_fields
                .0
                .is_some_and(|v| v == n.to_string().as_bytes())
                && framing_fields.3 == 0
        }
        BodyFraming::Chunked => framing_fields.2 == Some(b"chunked") && framing_fields.1 == 0,
    };
    ensure!(
        framing_ok,
        "upstream.framing",
        "framing {:?} not written exactly once: {}",
        request.framing,
        context()
    );
    let want_host = expected_host(request, config, client);
    let trim = switchyard_proto::head::trim_ows;
    ensure!(
        parsed.single("host").map(trim) == Some(trim(&want_host)),
        "upstream.one-host",
        "want Host {:?}: {}",
        show(&want_host),
        context()
    );
    check_field_model(&parsed, request, config, client, offer.is_some(), out)
}

/// Properties of any head the proxy sends upstream, whatever it was written from.
pub(crate) fn check_upstream_shape(out: &[u8], parsed: &Parsed) -> Checked {
    wire::only_crlf(out, "upstream.crlf")?;
    ensure!(
        parsed.fields.iter().all(|(n, v)| is_token(n) && clean(v)),
        "upstream.clean",
        "{:?}",
        show(out)
    );
    ensure!(
        parsed.count("host") == 1,
        "upstream.one-host",
        "{} Host fields in {:?}",
        parsed.count("host"),
        show(out)
    );
    for name in ["keep-alive", "proxy-connection", "te", "trailer"] {
        ensure!(
            parsed.count(name) == 0,
            "upstream.hop-by-hop",
            "{name} in {:?}",
            show(out)
        );
    }
    let connection = parsed.count("connection");
    let upgrade = parsed.count("upgrade");
    ensure!(
        (connection == 0 && upgrade == 0)
            || (parsed.single("connection") == Some(b"upgrade") && upgrade == 1),
        "upstream.hop-by-hop",
        "Connection/Upgrade other than one upgrade offer: {:?}",
        show(out)
    );
    let (cl, te) = (
        parsed.count("content-length"),
        parsed.count("transfer-encoding"),
    );
    ensure!(
        cl + te <= 1 && (te == 0 || parsed.single("transfer-encoding") == Some(b"chunked")),
        "upstream.framing",
        "framing fields CL×{cl} TE×{te} in {:?}",
        show(out)
    );
    Ok(())
}

/// The `Host` value: a `Set Host` rule's value, else the preserved host, else our authority.
fn expected_host(request: &RequestHead, config: &Config, client: &ClientInfo) -> Vec<u8> {
    let ctx = RuleContext {
        request,
        client,
        config,
        upgrading: client_offer(request, config).is_some(),
    };
    let host_rule = config
        .header_rules
        .iter()
        .rev()
        .find(|r| r.name().eq_ignore_ascii_case("host"));
    let authority = config.upstream_authority.as_bytes().to_vec();
    match host_rule {
        Some(rule) => {
            let value = rule.evaluate(&ctx);
            if value.is_empty() {
                authority
            } else {
                value
            }
        }
        None => match (&config.host_header, &request.host) {
            (HostHeader::Preserve, Some(host)) => host.to_vec(),
            _ => authority,
        },
    }
}

/// The values each (non-special) field name must have in the upstream request, per the
/// documented order: the client's end-to-end fields (unless hop-by-hop, nominated by
/// `Connection`, `Expect`, forwarded-and-regenerated, or named by a `Set`/`Remove` rule), then the
/// regenerated `X-Forwarded-*` (unless a `Set`/`Remove` rule names them), then every `Set`/`Add`
/// rule whose value is not empty and that no later `Set`/`Remove` rule of the same name replaces.
pub(crate) fn expected_fields(
    request: &RequestHead,
    config: &Config,
    client: &ClientInfo,
    upgrading: bool,
) -> Vec<(String, Vec<u8>)> {
    let rules = &config.header_rules;
    let replaced_after = |from: usize, name: &[u8]| {
        rules.iter().skip(from).any(|r| {
            r.action() != HeaderAction::Add && r.name().as_bytes().eq_ignore_ascii_case(name)
        })
    };
    let is_forwarded =
        |name: &str| ["x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"].contains(&name);
    let mut out = Vec::new();
    for field in &request.headers {
        let name = String::from_utf8_lossy(field.name).to_ascii_lowercase();
        let dropped = SPECIAL.contains(&name.as_str())
            || name == "expect"
            || (config.forwarded_headers && is_forwarded(&name))
            || request.connection.nominates(field.name)
            || replaced_after(0, field.name);
        if !dropped {
            out.push((name, field.value.to_vec()));
        }
    }
    if config.forwarded_headers {
        out.extend(forwarded_fields(request, config, client, |n| {
            replaced_after(0, n.as_bytes())
        }));
    }
    let ctx = RuleContext {
        request,
        client,
        config,
        upgrading,
    };
    for (i, rule) in rules.iter().enumerate() {
        let name = rule.name().to_ascii_lowercase();
        if rule.action() == HeaderAction::Remove
            || name == "host"
            || replaced_after(i + 1, rule.name().as_bytes())
        {
            continue;
        }
        let value = rule.evaluate(&ctx);
        if !value.is_empty() {
            out.push((name, value));
        }
    }
    out
}

/// `X-Forwarded-For`, `-Proto` and `-Host` as documented, minus the ones rules replace.
fn forwarded_fields(
    request: &RequestHead,
    config: &Config,
    client: &ClientInfo,
    replaced: impl Fn(&str) -> bool,
) -> Vec<(String, Vec<u8>)> {
    let trusted = client.addr.is_some_and(|a| config.is_trusted_proxy(a.ip()));
    let received = |name: &'static str| {
        request
            .headers
            .iter()
            .filter(move |f| {
                f.is(name) && !f.value.is_empty() && !request.connection.nominates(f.name)
            })
            .map(|f| f.value.to_vec())
    };
    let mut out = Vec::new();
    if let Some(addr) = client.addr.filter(|_| !replaced("X-Forwarded-For")) {
        let mut value = Vec::new();
        if trusted {
            for v in received("x-forwarded-for") {
                value.extend_from_slice(&v);
                value.extend_from_slice(b", ");
            }
        }
        value.extend_from_slice(addr.ip().to_string().as_bytes());
        out.push(("x-forwarded-for".to_owned(), value));
    }
    if !replaced("X-Forwarded-Proto") {
        let own = if client.secure {
            b"https".to_vec()
        } else {
            b"http".to_vec()
        };
        let value = trusted
            .then(|| received("x-forwarded-proto").next())
            .flatten()
            .unwrap_or(own);
        out.push(("x-forwarded-proto".to_owned(), value));
    }
    if !replaced("X-Forwarded-Host") {
        let value = trusted
            .then(|| received("x-forwarded-host").next())
            .flatten()
            .or_else(|| request.host.as_ref().map(|h| h.to_vec()));
        if let Some(value) = value {
            out.push(("x-forwarded-host".to_owned(), value));
        }
    }
    out
}

/// The non-special fields of the written request are exactly [`expected_fields`], per name and
/// in order (values compared without surrounding whitespace, as httparse reports them).
fn check_field_model(
    parsed: &Parsed,
    request: &RequestHead,
    config: &Config,
    client: &ClientInfo,
    upgrading: bool,
    out: &[u8],
) -> Checked {
    let trim = |v: &[u8]| switchyard_proto::head::trim_ows(v).to_vec();
    let want: Vec<(String, Vec<u8>)> = expected_fields(request, config, client, upgrading)
        .into_iter()
        .map(|(n, v)| (n, trim(&v)))
        .collect();
    let got: Vec<(String, Vec<u8>)> = parsed
        .fields
        .iter()
        .map(|(n, v)| (String::from_utf8_lossy(n).to_ascii_lowercase(), trim(v)))
        .filter(|(n, _)| !SPECIAL.contains(&n.as_str()))
        .collect();
    let mut names: Vec<&String> = want.iter().chain(got.iter()).map(|(n, _)| n).collect();
    names.sort();
    names.dedup();
    for name in names {
        let of = |list: &[(String, Vec<u8>)]| -> Vec<String> {
            list.iter()
                .filter(|(n, _)| n == name)
                .map(|(_, v)| show(v))
                .collect()
        };
        let (w, g) = (of(&want), of(&got));
        ensure!(
            w == g,
            "upstream.fields",
            "field {name}: want {w:?}, got {g:?}; upstream {:?}; rules {:?}; request {request:?}",
            show(out),
            config.header_rules
        );
    }
    Ok(())
}

/// The session (scanner + parser + rewriting) and the parser alone agree on `data` sent at once:
/// the session asks for an upstream connection iff the first head parses within the scanner's
/// limits, and the upstream receives exactly the rewritten head first.
fn session_agrees(data: &[u8]) -> Checked {
    let config = Config::default();
    let client = client_info();
    let now = Instant::now();
    let mut session = Session::new(Arc::new(config.clone()), client.clone(), now);
    let mut offset = 0;
    let mut connected = false;
    let mut released = false;
    let mut upstream = Vec::new();
    for _ in 0..8 {
        let window = session.read_window(Side::Client);
        let n = session.handle_data(Side::Client, &data[offset..], now);
        ensure!(
            n <= window,
            "session.read-window",
            "took {n} of window {window}"
        );
        offset += n;
        while let Some(event) = session.poll_event() {
            match event {
                Event::Connect => {
                    connected = true;
                    session.handle_connected(now);
                }
                Event::ReleaseUpstream { .. } => released = true,
                _ => {}
            }
        }
        while let Some(bytes) = session.transmit(Side::Upstream) {
            let len = bytes.len();
            upstream.extend_from_slice(bytes);
            session.handle_written(Side::Upstream, len, now);
        }
        if n == 0 {
            break;
        }
    }
    let expected = match wire::find_head(&data[..offset]) {
        Span::Complete { start, end } => {
            let head = &data[start..end];
            let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
            let fields = head
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                .saturating_sub(2);
            let within = end <= config.limits.max_head_bytes
                && line.len() <= config.limits.max_request_line
                && fields <= config.limits.max_headers;
            let parsed = parse_request_head(Bytes::copy_from_slice(head), &config);
            match parsed {
                Ok(request) if within => Some(upstream_head(&request, &config, &client)),
                Ok(_) => return Ok(()), // at the limits: either answer is defensible
                Err(_) => None,
            }
        }
        Span::Partial | Span::Invalid => None,
    };
    match expected {
        Some(head) => ensure!(
            connected && (upstream.starts_with(&head) || (released && upstream.is_empty())),
            "request_head.session-agrees",
            "the parser accepts the head but the session sent {:?} (connected: {connected}) \
             instead of {:?}",
            show(&upstream),
            show(&head)
        ),
        None => ensure!(
            !connected && upstream.is_empty(),
            "request_head.session-agrees",
            "the session forwarded {:?} though no complete valid head was found",
            show(&upstream)
        ),
    }
    Ok(())
}
