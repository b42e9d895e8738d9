//! What the peers of a fuzzed session received, checked at the end of the run.
//!
//! The client's bytes are re-read independently (scanner rules, `parse_request_head`, the
//! reference chunked decoder) into the list of requests the proxy should have seen. Then:
//!
//! * **upstream, per use of a connection** — what was written starts with exactly the rewritten
//!   head of one of those requests (nothing unvalidated is ever forwarded), followed by its body
//!   data re-framed (same data, valid framing), and by nothing else unless that use became the
//!   tunnel; before the switch nothing past the body was written; a connection released as
//!   reusable carried exactly one complete request and exactly complete responses;
//! * **tunnel** — it opened only on a 101 that parses and passes `accept_switch` against the
//!   offer of a request with `Connection: upgrade` and `Upgrade`; the bytes after the switch are
//!   delivered in order and unmodified in both directions (and completely, if the session is
//!   still open after the final flush);
//! * **client** — every head it got parses with httparse and is CRLF-only, every body is
//!   correctly framed, and nothing follows a response that announced `Connection: close`.

use bytes::Bytes;
use switchyard_proto::head::request::{parse_request_head, RequestHead};
use switchyard_proto::head::response::parse_response_head;
use switchyard_proto::head::BodyFraming;
use switchyard_proto::upgrade::{accept_switch, client_offer};
use switchyard_proto::Side;

use super::reference::{self, Stop};
use super::request::{check_upstream_request, upstream_head};
use super::session::Driver;
use super::wire::{self, find_head, show, Head, Span};
use super::{Checked, Violation};

/// A request the client sent, as an independent reading of its bytes finds it.
#[derive(Debug)]
struct Sent {
    head: RequestHead,
    /// The upstream head the proxy must write for it.
    upstream: Vec<u8>,
    /// Its body data (complete or not).
    body: Vec<u8>,
    /// Offset just past its body in the client's bytes, if complete.
    end: Option<usize>,
}

/// Reads the client's bytes as a sequence of requests, stopping at the first one that is
/// incomplete or refused.
fn requests(driver: &Driver) -> Vec<Sent> {
    let bytes = &driver.client_taken;
    let config = &driver.config;
    let mut out = Vec::new();
    let mut at = 0;
    while let Span::Complete { start, end } = find_head(&bytes[at..]) {
        let Ok(head) =
            parse_request_head(Bytes::copy_from_slice(&bytes[at + start..at + end]), config)
        else {
            break;
        };
        let body_start = at + end;
        let rest = &bytes[body_start..];
        let (body, len) = match head.framing {
            BodyFraming::Length(n) => {
                let take = usize::try_from(n).map_or(rest.len(), |n| n.min(rest.len()));
                (rest[..take].to_vec(), (take as u64 == n).then_some(take))
            }
            BodyFraming::Chunked => {
                let decoded = reference::decode(rest, config.limits.max_chunk_line);
                (decoded.data, decoded.end.ok())
            }
            BodyFraming::None | BodyFraming::CloseDelimited => (Vec::new(), Some(0)),
        };
        let upstream = upstream_head(&head, config, &driver.client);
        let end = len.map(|len| body_start + len);
        out.push(Sent {
            head,
            upstream,
            body,
            end,
        });
        match end {
            Some(end) => at = end,
            None => break,
        }
    }
    out
}

/// Runs every end-of-run check.
pub(crate) fn check(driver: &Driver) -> Checked {
    let sent = requests(driver);
    let client_switch = check_client(driver, &sent)?;
    let mut served: Option<usize> = None;
    for (i, u) in driver.uses.iter().enumerate() {
        let conn = &driver.conns[u.conn];
        let to_end = driver.uses[i + 1..]
            .iter()
            .find(|later| later.conn == u.conn)
            .map_or(conn.to.len(), |later| later.to_start);
        let from_end = driver.uses[i + 1..]
            .iter()
            .find(|later| later.conn == u.conn)
            .map_or(conn.from.len(), |later| later.from_start);
        let to = &conn.to[u.to_start..to_end];
        let from = &conn.from[u.from_start..from_end];
        let tunnel = driver.tunnel.as_ref().filter(|t| t.use_index == i);
        // The request this use serves is the exchange the driver noted at `Connect` (see
        // `finals_queued`); a use that did not get its whole head (the upstream answered first,
        // or the request failed) is checked for a prefix.
        let matched =
            Some(u.exchange).filter(|&k| sent.get(k).is_some_and(|s| to.starts_with(&s.upstream)));
        let k = match (matched, tunnel) {
            (Some(k), _) => k,
            (None, Some(mark)) => {
                let k = u.exchange;
                let Some(k) =
                    Some(k).filter(|&k| sent.get(k).is_some_and(|s| s.upstream.starts_with(to)))
                else {
                    return Err(Violation::new(
                        "session.forwards-validated",
                        format!(
                            "tunnel on use {i} after {:?}, which is no request's head",
                            show(to)
                        ),
                    ));
                };
                check_tunnel(
                    driver,
                    client_switch,
                    u.from_start,
                    &sent[k],
                    mark,
                    &[],
                    from,
                )?;
                continue;
            }
            (None, None) => {
                ensure!(
                    !u.reusable,
                    "session.reuse-clean",
                    "use {i} released as reusable after writing only {:?}",
                    show(to)
                );
                let prefix = sent
                    .get(u.exchange)
                    .is_some_and(|s| s.upstream.starts_with(to));
                ensure!(
                    prefix,
                    "session.forwards-validated",
                    "use {i} of connection {} (exchange {}) got {:?}, which is no prefix of that \
                     request's rewritten head; heads: {:?}",
                    u.conn,
                    u.exchange,
                    show(to),
                    sent.iter().map(|s| show(&s.upstream)).collect::<Vec<_>>()
                );
                continue;
            }
        };
        if served == Some(k) {
            let s = &sent[k];
            ensure!(
                s.head.is_idempotent() && s.head.framing == BodyFraming::None,
                "session.retry",
                "request {k} was sent on a second connection but has a body or is not idempotent"
            );
        }
        served = Some(k);
        let s = &sent[k];
        check_upstream_request(&s.upstream, &s.head, &driver.config, &driver.client)?;
        let after_head = &to[s.upstream.len()..];
        let (body_wire_len, complete) = check_body(after_head, s, i)?;
        let rest = &after_head[body_wire_len..];
        let request_len = s.upstream.len() + body_wire_len;
        match tunnel {
            Some(mark) => {
                ensure!(
                    !complete || mark.to_len - u.to_start <= request_len,
                    "session.tunnel-exact",
                    "before the switch, {} bytes were written on the tunnel's connection, \
                     beyond the request's {request_len}",
                    mark.to_len - u.to_start
                );
                check_tunnel(driver, client_switch, u.from_start, s, mark, rest, from)?;
            }
            None => ensure!(
                rest.is_empty(),
                "session.no-early-bytes",
                "use {i} got {:?} after request {k} without a tunnel",
                show(rest)
            ),
        }
        if u.reusable {
            ensure!(
                complete && rest.is_empty(),
                "session.reuse-clean",
                "use {i} released as reusable with an incomplete request {k}"
            );
            let ends_clean = responses_end(driver, &s.head, from)?;
            ensure!(
                ends_clean,
                "session.reuse-clean",
                "use {i} released as reusable after reading {:?}, not exactly complete responses",
                show(from)
            );
        }
    }
    Ok(())
}

/// The body written after request `s`'s head: its data is a prefix of the client's, with valid
/// framing. Returns the framed length and whether the body is complete.
fn check_body(after_head: &[u8], s: &Sent, use_index: usize) -> Result<(usize, bool), Violation> {
    match s.head.framing {
        BodyFraming::Length(n) => {
            let take = usize::try_from(n).map_or(after_head.len(), |n| n.min(after_head.len()));
            ensure!(
                s.body.starts_with(&after_head[..take]),
                "session.body-exact",
                "use {use_index}: body {:?} is not the client's {:?}",
                show(&after_head[..take]),
                show(&s.body)
            );
            Ok((take, take as u64 == n))
        }
        BodyFraming::Chunked => {
            let decoded = reference::decode(after_head, usize::MAX);
            ensure!(
                decoded.end != Err(Stop::Bad) && s.body.starts_with(&decoded.data),
                "session.body-exact",
                "use {use_index}: chunked body {:?} (data {:?}) is not a valid re-framing of {:?}",
                show(after_head),
                show(&decoded.data),
                show(&s.body)
            );
            Ok(match decoded.end {
                Ok(end) => (end, true),
                Err(_) => (after_head.len(), false),
            })
        }
        BodyFraming::None | BodyFraming::CloseDelimited => Ok((0, true)),
    }
}

/// Whether `from` is exactly complete responses to `request`: interim heads, then a final head
/// and its whole body.
fn responses_end(driver: &Driver, request: &RequestHead, from: &[u8]) -> Result<bool, Violation> {
    let mut at = 0;
    loop {
        let Span::Complete { start, end } = find_head(&from[at..]) else {
            return Ok(false);
        };
        let Ok(response) = parse_response_head(
            Bytes::copy_from_slice(&from[at + start..at + end]),
            &driver.config,
        ) else {
            return Ok(false);
        };
        at += end;
        if response.is_interim() {
            continue;
        }
        let rest = &from[at..];
        return Ok(match response.framing(request.method_is("HEAD")) {
            BodyFraming::None => rest.is_empty(),
            BodyFraming::Length(n) => rest.len() as u64 == n,
            BodyFraming::Chunked => {
                reference::decode(rest, driver.config.limits.max_chunk_line).end == Ok(rest.len())
            }
            BodyFraming::CloseDelimited => false,
        });
    }
}

/// The tunnel opened on a valid 101 to a real offer, and carried bytes exactly.
fn check_tunnel(
    driver: &Driver,
    client_switch: Option<usize>,
    from_start: usize,
    s: &Sent,
    mark: &super::session::TunnelMark,
    upstream_got: &[u8],
    from: &[u8],
) -> Checked {
    let offered = s.head.connection.upgrade && s.head.header("upgrade").is_some();
    let offer = client_offer(&s.head, &driver.config);
    ensure!(
        offered && offer.is_some(),
        "session.tunnel-solicited",
        "tunnel for a request without an accepted upgrade offer: {:?}",
        s.head
    );
    // The upstream's heads before the tunnel data: interim responses, then the 101.
    let mut at = 0;
    let switch_end = loop {
        let Span::Complete { start, end } = find_head(&from[at..]) else {
            return Err(Violation::new(
                "session.tunnel-solicited",
                format!(
                    "tunnel without a complete 101 from the upstream: {:?}",
                    show(from)
                ),
            ));
        };
        let head = Bytes::copy_from_slice(&from[at + start..at + end]);
        at += end;
        let response = parse_response_head(head.clone(), &driver.config).map_err(|e| {
            Violation::new(
                "session.tunnel-solicited",
                format!("tunnel after a refused head ({e:?}): {:?}", show(&head)),
            )
        })?;
        if response.is_interim() {
            continue;
        }
        ensure!(
            response.status == 101
                && accept_switch(offer.as_ref(), &response, &driver.config).is_ok(),
            "session.tunnel-solicited",
            "tunnel after {:?}",
            show(&head)
        );
        break at;
    };
    let client_start = s.end.unwrap_or(usize::MAX).min(driver.client_taken.len());
    let held = mark.client_taken.checked_sub(client_start);
    let early = mark.from_len.checked_sub(from_start + switch_end);
    ensure!(
        held == Some(mark.held) && early == Some(mark.early),
        "session.tunnel-exact",
        "held {} / early {} bytes announced, {held:?} / {early:?} measured",
        mark.held,
        mark.early
    );
    let client_sent = &driver.client_taken[client_start..];
    ensure!(
        client_sent.starts_with(upstream_got),
        "session.tunnel-exact",
        "the upstream got {:?} through the tunnel, the client sent {:?}",
        show(upstream_got),
        show(client_sent)
    );
    let upstream_sent = &from[switch_end..];
    let client_got = client_switch.map_or(&[][..], |at| &driver.client_got[at..]);
    ensure!(
        upstream_sent.starts_with(client_got),
        "session.tunnel-exact",
        "the client got {:?} through the tunnel, the upstream sent {:?}",
        show(client_got),
        show(upstream_sent)
    );
    if !driver.closed {
        ensure!(
            client_sent == upstream_got && upstream_sent == client_got,
            "session.tunnel-exact",
            "open tunnel after the final flush: client sent {} bytes, upstream got {}; upstream \
             sent {}, client got {}",
            client_sent.len(),
            upstream_got.len(),
            upstream_sent.len(),
            client_got.len()
        );
    }
    Ok(())
}

/// The client's stream: heads that parse, bodies correctly framed, nothing after a close.
/// Returns where the tunnel bytes start (just after the 101 head), if a 101 was received.
fn check_client(driver: &Driver, sent: &[Sent]) -> Result<Option<usize>, Violation> {
    let mut finals = 0;
    read_client(
        &driver.client_got,
        sent,
        driver.tunnel.is_some(),
        &mut finals,
    )
}

/// How many final responses the client has been sent or has queued for it: the index of the
/// exchange a `Connect` polled now is for (a retry comes before any final response of its
/// exchange; a new exchange only after the previous one's).
pub(crate) fn finals_queued(driver: &Driver) -> usize {
    let mut stream = driver.client_got.clone();
    let mut slices = [std::io::IoSlice::new(&[]); 1024];
    let n = driver.session.transmit_vectored(Side::Client, &mut slices);
    for slice in &slices[..n] {
        stream.extend_from_slice(slice);
    }
    let mut finals = 0;
    let _ = read_client(&stream, &requests(driver), true, &mut finals);
    finals
}

/// Reads a client stream (see [`check_client`]), counting final responses in `finals`.
fn read_client(
    got: &[u8],
    sent: &[Sent],
    tunnel: bool,
    finals: &mut usize,
) -> Result<Option<usize>, Violation> {
    let mut at = 0;
    while at < got.len() {
        let parsed = match wire::response(&got[at..], "client.reparses")? {
            Head::Complete(p) => p,
            Head::Partial => return Ok(None),
        };
        wire::only_crlf(&got[at..at + parsed.len], "client.crlf")?;
        at += parsed.len;
        if parsed.status == 101 {
            ensure!(
                tunnel,
                "client.switch",
                "a 101 reached the client without TunnelEstablished"
            );
            return Ok(Some(at));
        }
        if parsed.status < 200 {
            continue;
        }
        // A 408 answers a head that never completed: it belongs to no request the client sent
        // (bytes sent after it are discarded while the connection drains).
        let request = if parsed.status == 408 {
            None
        } else {
            sent.get(*finals)
        };
        *finals += 1;
        let close = parsed
            .values("connection")
            .any(|v| v.eq_ignore_ascii_case(b"close"));
        let rest = &got[at..];
        let no_body = request.is_some_and(|r| r.head.method_is("HEAD"))
            || parsed.status == 204
            || parsed.status == 304;
        let body_len = if let Some(cl) = parsed.single("content-length") {
            let n: usize = std::str::from_utf8(cl)
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(usize::MAX);
            let is_head = request.is_some_and(|r| r.head.method_is("HEAD"));
            ensure!(
                !(is_head && n > 0 && rest.len() >= n && !rest.starts_with(b"HTTP/")),
                "client.head-no-body",
                "a {} response to HEAD carries a {n}-byte body: {:?}",
                parsed.status,
                show(rest)
            );
            if no_body {
                0
            } else {
                n.min(rest.len())
            }
        } else if parsed.single("transfer-encoding") == Some(b"chunked") {
            let decoded = reference::decode(rest, usize::MAX);
            ensure!(
                decoded.end != Err(Stop::Bad),
                "client.body-framing",
                "invalid chunked body to the client: {:?}",
                show(rest)
            );
            decoded.end.unwrap_or(rest.len())
        } else if close && !no_body {
            rest.len()
        } else {
            0
        };
        at += body_len;
        if close {
            let after = &got[at..];
            ensure!(
                after.is_empty(),
                "client.after-close",
                "{} bytes after a response with Connection: close (request {:?}): {:?}",
                after.len(),
                request.map(|r| show(&r.head.method)),
                show(after)
            );
        }
    }
    Ok(None)
}
