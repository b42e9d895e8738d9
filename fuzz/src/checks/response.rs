//! The `response_head` target: upstream response heads, and the heads relayed to the client.
//!
//! Whatever `parse_response_head` accepts must be clean and carry consistent framing; each head
//! the proxy writes from it (final, interim, 101) must re-parse with httparse, hold the
//! upstream's end-to-end fields in order and nothing hop-by-hop, and exactly the framing and
//! `Connection` fields the caller decided. A 101 must pass `accept_switch` only when it names
//! exactly one offered protocol (and, in strict mode, carries the right `Sec-WebSocket-Accept`).

use bytes::{Bytes, BytesMut};
use switchyard_proto::head::response::{parse_response_head, ResponseHead};
use switchyard_proto::head::{list_elements, trim_ows, BodyFraming, Version};
use switchyard_proto::rewrite::{
    write_final_response, write_interim_response, write_switch_response,
};
use switchyard_proto::upgrade::{accept_switch, UpgradeOffer};
use switchyard_proto::Config;

use super::wire::{self, clean, is_token, show, Parsed};
use super::{Checked, Violation};

/// The client key of the WebSocket offer used for 101s.
pub(crate) const WS_KEY: &[u8] = b"dGhlIHNhbXBsZSBub25jZQ==";

/// Field kinds never relayed as received (hop-by-hop and framing).
const NOT_RELAYED: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "content-length",
    "upgrade",
];

/// The `response_head` fuzz target.
pub(crate) fn run(data: &[u8]) -> Checked {
    let config = Config::default();
    let Ok(response) = parse_response_head(Bytes::copy_from_slice(data), &config) else {
        return Ok(());
    };
    wire::same_fields(
        "response_head.same-fields",
        wire::response(data, "response_head.same-fields"),
        super::request::fields_of(&response.headers),
        false,
    )?;
    check_response_head(&response)?;
    if response.is_interim() {
        let mut out = BytesMut::new();
        write_interim_response(&response, &mut out);
        let parsed = check_relayed(&out, &response)?;
        ensure!(
            parsed.count("content-length")
                + parsed.count("transfer-encoding")
                + parsed.count("connection")
                == 0,
            "response_head.interim",
            "framing or Connection in a relayed 1xx: {:?}",
            show(&out)
        );
    } else if response.status == 101 {
        check_switch(&response)?;
    } else {
        for request_was_head in [false, true] {
            for version in [Version::Http10, Version::Http11] {
                for keep_alive in [false, true] {
                    check_final(&response, request_was_head, version, keep_alive)?;
                }
            }
        }
    }
    Ok(())
}

/// Everything an accepted response head must satisfy.
pub(crate) fn check_response_head(head: &ResponseHead) -> Checked {
    let shown = || format!("{head:?}");
    ensure!(
        (100..=599).contains(&head.status),
        "response_head.status",
        "{}",
        shown()
    );
    ensure!(
        !head
            .reason
            .iter()
            .any(|&b| b == b'\r' || b == b'\n' || b == 0 || b == 0x7f)
            && head
                .headers
                .iter()
                .all(|f| is_token(f.name) && clean(f.value)),
        "response_head.clean",
        "{}",
        shown()
    );
    ensure!(
        head.version == Version::Http11 || head.status >= 200 || head.status == 101,
        "response_head.http10-interim",
        "{}",
        shown()
    );
    let count = |name: &str| head.headers.iter().filter(|f| f.is(name)).count();
    let (cl, te) = (count("content-length"), count("transfer-encoding"));
    let framing_ok = if head.chunked {
        cl == 0 && te == 1 && head.content_length.is_none() && head.version == Version::Http11
    } else {
        te == 0 && (cl == usize::from(head.content_length.is_some()))
    };
    ensure!(framing_ok, "response_head.framing", "{}", shown());
    Ok(())
}

/// The end-to-end fields of `response` (in order, names lower-cased, values trimmed).
fn end_to_end(response: &ResponseHead) -> Vec<(String, Vec<u8>)> {
    response
        .headers
        .iter()
        .map(|f| (String::from_utf8_lossy(f.name).to_ascii_lowercase(), f))
        .filter(|(n, f)| {
            !NOT_RELAYED.contains(&n.as_str()) && !response.connection.nominates(f.name)
        })
        .map(|(n, f)| (n, trim_ows(f.value).to_vec()))
        .collect()
}

/// A written response head re-parses, keeps status and reason, is CRLF-only, carries nothing
/// hop-by-hop (but `Connection`/`Upgrade`, checked by callers) and exactly the end-to-end fields.
fn check_relayed(out: &[u8], response: &ResponseHead) -> Result<Parsed, Violation> {
    wire::only_crlf(out, "client.crlf")?;
    let parsed = wire::whole(out, false, "client.reparses")?;
    ensure!(
        parsed.status == response.status && parsed.minor == 1,
        "client.status-line",
        "{:?} for {response:?}",
        show(out)
    );
    let reason_start = b"HTTP/1.1 200 ".len();
    let reason = out
        .get(reason_start..)
        .and_then(|r| r.split(|&b| b == b'\r').next())
        .unwrap_or_default();
    ensure!(
        reason == &response.reason[..],
        "client.status-line",
        "reason {:?} became {:?}",
        show(&response.reason),
        show(reason)
    );
    for name in ["keep-alive", "proxy-connection", "te", "trailer"] {
        ensure!(
            parsed.count(name) == 0,
            "client.hop-by-hop",
            "{name} in {:?}",
            show(out)
        );
    }
    let got: Vec<(String, Vec<u8>)> = parsed
        .fields
        .iter()
        .map(|(n, v)| {
            (
                String::from_utf8_lossy(n).to_ascii_lowercase(),
                trim_ows(v).to_vec(),
            )
        })
        .filter(|(n, _)| !NOT_RELAYED.contains(&n.as_str()))
        .collect();
    let want = end_to_end(response);
    ensure!(
        got == want,
        "client.fields",
        "relayed fields {:?} != end-to-end fields {:?} of {response:?}",
        show(out),
        want.iter()
            .map(|(n, v)| format!("{n}: {}", show(v)))
            .collect::<Vec<_>>()
    );
    Ok(parsed)
}

/// How the session frames a relayed final response for the client (see `on_response_head`).
pub(crate) fn client_framing(framing: BodyFraming, version: Version) -> BodyFraming {
    match (framing, version) {
        (BodyFraming::CloseDelimited, Version::Http11) => BodyFraming::Chunked,
        (BodyFraming::Chunked, Version::Http10) => BodyFraming::CloseDelimited,
        (f, _) => f,
    }
}

fn check_final(
    response: &ResponseHead,
    request_was_head: bool,
    version: Version,
    keep_alive: bool,
) -> Checked {
    let framing = client_framing(response.framing(request_was_head), version);
    if keep_alive && framing == BodyFraming::CloseDelimited {
        return Ok(()); // the session never keeps a connection whose body ends with the close
    }
    let mut out = BytesMut::new();
    write_final_response(response, framing, version, keep_alive, &mut out);
    let parsed = check_relayed(&out, response)?;
    let context = || {
        format!(
            "{:?} for framing {framing:?}, {version:?}, keep-alive {keep_alive}",
            show(&out)
        )
    };
    let want_connection: Option<&[u8]> = match (keep_alive, version) {
        (false, _) => Some(b"close"),
        (true, Version::Http10) => Some(b"keep-alive"),
        (true, Version::Http11) => None,
    };
    ensure!(
        parsed.count("upgrade") == 0
            && parsed.count("connection") == usize::from(want_connection.is_some())
            && parsed
                .single("connection")
                .map_or(true, |v| Some(v) == want_connection),
        "client.connection",
        "{}",
        context()
    );
    let length = |n: u64| Some(n.to_string().into_bytes());
    let want_length = match framing {
        BodyFraming::Length(n) => length(n),
        BodyFraming::None if response.status >= 200 && response.status != 204 => {
            response.content_length.and_then(length)
        }
        _ => None,
    };
    let chunked = framing == BodyFraming::Chunked;
    ensure!(
        parsed.count("content-length") == usize::from(want_length.is_some())
            && parsed.single("content-length").map(<[u8]>::to_vec) == want_length
            && parsed.count("transfer-encoding") == usize::from(chunked)
            && (!chunked || parsed.single("transfer-encoding") == Some(b"chunked")),
        "client.framing",
        "{}",
        context()
    );
    Ok(())
}

/// A 101: `accept_switch` against an offer of `websocket` and the 101's own first protocol, in
/// lax and strict mode; when accepted, the head written to the client.
fn check_switch(response: &ResponseHead) -> Checked {
    let named: Vec<&[u8]> = response.values("upgrade").flat_map(list_elements).collect();
    let mut protocols = vec![Bytes::from_static(b"websocket")];
    if let Some(first) = named.first() {
        protocols.push(Bytes::copy_from_slice(first));
    }
    let offer = UpgradeOffer {
        protocols,
        websocket_key: Some(Bytes::from_static(WS_KEY)),
    };
    for strict in [false, true] {
        let mut config = Config::default();
        config.strict_websocket = strict;
        let Ok(accepted) = accept_switch(Some(&offer), response, &config) else {
            continue;
        };
        let protocol = accepted.protocol().to_vec();
        ensure!(
            response.version == Version::Http11 && named.len() == 1 && offer.contains(&protocol),
            "response_head.switch",
            "accepted {:?} from {response:?}",
            show(&protocol)
        );
        if strict && protocol.eq_ignore_ascii_case(b"websocket") {
            let accept: Vec<&[u8]> = response.values("sec-websocket-accept").collect();
            ensure!(
                strict_accept_ok(&accept),
                "response_head.switch",
                "strict mode accepted Sec-WebSocket-Accept {accept:?}"
            );
        }
        let mut out = BytesMut::new();
        write_switch_response(response, &accepted, &mut out);
        let parsed = check_relayed(&out, response)?;
        ensure!(
            parsed.single("connection") == Some(b"upgrade")
                && parsed.single("upgrade") == Some(&protocol[..])
                && parsed.count("content-length") + parsed.count("transfer-encoding") == 0,
            "client.switch",
            "{:?}",
            show(&out)
        );
    }
    Ok(())
}

/// Strict mode with SHA-1: exactly one `Sec-WebSocket-Accept`, the one RFC 6455 computes.
#[cfg(feature = "websocket-accept")]
fn strict_accept_ok(accept: &[&[u8]]) -> bool {
    let want = switchyard_proto::upgrade::websocket_accept_value(WS_KEY);
    accept.len() == 1 && accept[0] == want.as_bytes()
}

/// Strict mode without SHA-1: exactly one non-empty `Sec-WebSocket-Accept`.
#[cfg(not(feature = "websocket-accept"))]
fn strict_accept_ok(accept: &[&[u8]]) -> bool {
    accept.len() == 1 && !accept[0].is_empty()
}
