//! One request/response exchange inside a session: the upstream request, the response head,
//! the 101 switch and the relayed response body.
//!
//! The request body and the response travel independently (an upstream may answer before the
//! request body is complete), so an [`Exchange`] carries both: the request body relay, and a
//! [`Stage`] for the response side.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::{Bytes, BytesMut};

use super::{Event, Phase, Session, Tunnel};
use crate::body::{BodyChunk, BodyDecoder, BodyEncoder};
use crate::error::{Error, RequestError, ResponseError};
use crate::head::request::RequestHead;
use crate::head::response::{parse_response_head, ResponseHead};
use crate::head::scan::{HeadLimits, HeadScanner, ScanError};
use crate::head::{BodyFraming, Version};
use crate::rewrite;
use crate::timer::Timer;
use crate::upgrade::{accept_switch, client_offer, UpgradeAccepted, UpgradeOffer};
use crate::upstream::ConnectReason;

/// The response side of an exchange.
#[derive(Debug)]
enum Stage {
    /// Waiting for the upstream connection.
    Connecting,
    /// The request is being sent; the response head is awaited (1xx relayed meanwhile).
    AwaitingHead(HeadScanner),
    /// A final response head was sent to the client; its body is being relayed.
    RelayingBody(BodyRelay, Reuse),
}

/// What was decided, when the final response head was written, about the two connections.
#[derive(Debug, Clone, Copy)]
struct Reuse {
    /// The client connection stays open for another request (no `Connection: close` was sent).
    client: bool,
    /// The upstream allowed reuse and the body is self-delimited.
    upstream: bool,
}

/// A body being decoded from one peer and re-encoded for the other.
#[derive(Debug)]
struct BodyRelay {
    decoder: BodyDecoder,
    encoder: BodyEncoder,
    done: bool,
}

impl BodyRelay {
    fn new(from: BodyFraming, to: BodyFraming, max_chunk_line: usize) -> Self {
        Self {
            decoder: BodyDecoder::new(from, max_chunk_line),
            encoder: BodyEncoder::new(to),
            done: false,
        }
    }
}

/// What moving a body forward produced.
enum Relayed {
    /// Nothing could move.
    Stalled,
    /// Some bytes moved.
    Moved,
    /// The body is complete.
    Finished,
    /// The framing is broken.
    Invalid,
    /// The body grew past the limit.
    TooLarge,
}

/// A request in flight.
#[derive(Debug)]
pub(super) struct Exchange {
    request: RequestHead,
    offer: Option<UpgradeOffer>,
    request_body: BodyRelay,
    stage: Stage,
    /// A final (or 101) response head was queued to the client: errors can no longer be answered.
    response_started: bool,
    /// The proxy answered `100 Continue` itself.
    sent_continue: bool,
    /// An interim response was relayed to the client.
    interim_relayed: bool,
    /// The upstream request head, kept to send it again on a retry.
    upstream_head: Bytes,
    /// `Counters::upstream_received` when the current upstream connection was given.
    upstream_base: u64,
}

impl Exchange {
    pub(super) fn stage_name(&self) -> &'static str {
        match self.stage {
            Stage::Connecting => "connecting",
            Stage::AwaitingHead(_) => "awaiting-response-head",
            Stage::RelayingBody(..) => "relaying-response-body",
        }
    }

    pub(super) fn awaiting_head(&self) -> bool {
        matches!(self.stage, Stage::AwaitingHead(_) | Stage::Connecting)
    }

    pub(super) fn response_started(&self) -> bool {
        self.response_started
    }

    /// The request is a `HEAD`: no response to it has a body, not even the proxy's own.
    pub(super) fn is_head_request(&self) -> bool {
        self.request.method_is("HEAD")
    }
}

impl Session {
    /// Whether the current request may be sent again on another upstream connection: the
    /// connection was never established, or it closed before sending anything back and the
    /// request is idempotent and has no body (so it cannot have had an effect that a second
    /// try would repeat). Never once a response byte reached the client.
    pub fn can_retry(&self) -> bool {
        let Phase::Exchange(x) = &self.phase else {
            return false;
        };
        if x.response_started || x.interim_relayed || !x.awaiting_head() {
            return false;
        }
        if !self.upstream_connected {
            return self.upstream_open;
        }
        self.counters.upstream_received == x.upstream_base
            && x.request.is_idempotent()
            && x.request.framing == BodyFraming::None
    }

    /// Abandons the current upstream connection and asks for another ([`Event::Connect`]) to
    /// send the request again. Drivers call this instead of
    /// [`handle_connect_failed`](Self::handle_connect_failed) or
    /// [`handle_error`](Self::handle_error) when another upstream server is available. Returns
    /// `false` (and does nothing) if [`can_retry`](Self::can_retry) is false.
    pub fn retry(&mut self, now: Instant) -> bool {
        if !self.can_retry() {
            return false;
        }
        self.reconnect(ConnectReason::Retry, now);
        true
    }

    /// Asks for a new upstream connection for the current request.
    fn reconnect(&mut self, reason: ConnectReason, now: Instant) {
        let Phase::Exchange(x) = &mut self.phase else {
            return;
        };
        if self.upstream_connected {
            // Nothing but the head was queued (no body): queue it again for the new connection.
            self.events
                .push_back(Event::ReleaseUpstream { reusable: false });
            self.to_upstream.clear();
            self.to_upstream.push(x.upstream_head.clone());
            self.from_upstream.clear();
            self.upstream_connected = false;
        }
        x.stage = Stage::Connecting;
        x.upstream_base = self.counters.upstream_received;
        self.upstream_open = true;
        self.upstream_eof = false;
        self.upstream_reused = false;
        self.timers.stop(Timer::UpstreamRead);
        self.timers.stop(Timer::UpstreamSend);
        self.timers
            .set(Timer::Connect, now + self.config.timeouts.connect);
        self.connect_reason = reason;
        self.events.push_back(Event::Connect);
    }

    /// The upstream failed (EOF or error) while the response head was awaited: a stale pooled
    /// connection is replaced transparently when that is safe; anything else is a 502.
    pub(super) fn upstream_failed_early(&mut self, error: Error, now: Instant) {
        if self.upstream_reused && self.stale_retries < MAX_STALE_RETRIES && self.can_retry() {
            self.stale_retries += 1;
            self.reconnect(ConnectReason::StaleConnection, now);
        } else {
            self.fail(error, now);
        }
    }
}

/// How many stale pooled connections one request may go through before it gets a 502.
const MAX_STALE_RETRIES: u32 = 8;

impl Session {
    /// A validated request head arrived: queue the upstream request and ask for a connection.
    pub(super) fn start_exchange(&mut self, request: RequestHead, now: Instant) {
        let offer = client_offer(&request, &self.config);
        let framing = request.framing;
        let mut head = BytesMut::with_capacity(512);
        rewrite::write_upstream_request(
            &request,
            offer.as_ref(),
            framing,
            &self.client,
            &self.config,
            &mut head,
        );
        let upstream_head = head.freeze();
        self.to_upstream.push(upstream_head.clone());
        let request_body = BodyRelay::new(framing, framing, self.config.limits.max_chunk_line);
        let mut sent_continue = false;
        if framing != BodyFraming::None {
            if request.expect_continue && request.version == Version::Http11 {
                // Like nginx: the proxy itself invites the body, and `Expect` is not forwarded.
                self.to_client
                    .push(Bytes::from_static(b"HTTP/1.1 100 Continue\r\n\r\n"));
                sent_continue = true;
            }
            self.timers
                .set(Timer::ClientBody, now + self.config.timeouts.client_body);
        }
        self.phase = Phase::Exchange(Box::new(Exchange {
            request,
            offer,
            request_body,
            stage: Stage::Connecting,
            response_started: false,
            sent_continue,
            interim_relayed: false,
            upstream_head,
            upstream_base: self.counters.upstream_received,
        }));
        self.upstream_open = true;
        self.upstream_connected = false;
        self.upstream_eof = false;
        self.upstream_reused = false;
        self.stale_retries = 0;
        self.connect_reason = ConnectReason::NewRequest;
        self.events.push_back(Event::Connect);
        self.timers
            .set(Timer::Connect, now + self.config.timeouts.connect);
    }

    /// One step of the exchange; returns whether anything changed.
    pub(super) fn step_exchange(&mut self, now: Instant) -> bool {
        let mut progressed = match self.forward_request_body() {
            Relayed::Stalled => false,
            Relayed::Moved => true,
            Relayed::Finished => {
                self.timers.stop(Timer::ClientBody);
                true
            }
            Relayed::Invalid => {
                self.fail(Error::Request(RequestError::InvalidChunkedBody), now);
                return true;
            }
            Relayed::TooLarge => {
                self.fail(Error::Request(RequestError::BodyTooLarge), now);
                return true;
            }
        };
        let Phase::Exchange(x) = &mut self.phase else {
            return progressed;
        };
        if !x.request_body.done && self.client_eof && self.from_client.is_empty() {
            // The client left mid-body (T024): the upstream connection is closed, never reused.
            self.close(None);
            return true;
        }
        match &mut x.stage {
            Stage::Connecting if self.upstream_connected => {
                x.stage = Stage::AwaitingHead(HeadScanner::default());
                progressed = true;
            }
            Stage::Connecting => {}
            Stage::AwaitingHead(_) => progressed |= self.read_response_head(now),
            Stage::RelayingBody(..) => progressed |= self.relay_response_body(now),
        }
        progressed
    }

    /// Moves request body bytes from the client to the upstream queue, up to the buffer size.
    fn forward_request_body(&mut self) -> Relayed {
        let limit = self.config.limits.buffer_size;
        let max_body = self.config.limits.max_body_size;
        let Phase::Exchange(x) = &mut self.phase else {
            return Relayed::Stalled;
        };
        let relay = &mut x.request_body;
        let to_upstream = &mut self.to_upstream;
        // A finished body moves nothing: skip lending the inbox (splitting it would promote its
        // buffer to shared storage, an allocation, on every later step of the exchange).
        let outcome = if relay.done {
            Relayed::Stalled
        } else {
            self.from_client
                .with_data(|input| move_body(relay, input, to_upstream, limit))
        };
        // Checked against what the chunk-size lines announce, so a too-large chunked body is
        // refused before its data arrives (T042).
        if max_body.is_some_and(|max| relay.decoder.announced_bytes() > max) {
            return Relayed::TooLarge;
        }
        outcome
    }

    /// Scans, parses and acts on the upstream response head.
    fn read_response_head(&mut self, now: Instant) -> bool {
        let limits = &self.config.limits;
        if self.to_client.len() >= limits.buffer_size {
            // Relayed 1xx heads wait for the client: parse no more until it reads them.
            return false;
        }
        if !matches!(&self.phase, Phase::Exchange(x) if matches!(x.stage, Stage::AwaitingHead(_))) {
            return false;
        }
        if let Some(response) = self.take_plain_response_head() {
            self.on_response_head(response, now);
            return true;
        }
        let limits = &self.config.limits;
        let head_limits = HeadLimits {
            max_first_line: limits.max_response_head_bytes,
            max_bytes: limits.max_response_head_bytes,
            max_fields: limits.max_response_headers,
        };
        let Phase::Exchange(x) = &mut self.phase else {
            return false;
        };
        let Stage::AwaitingHead(scanner) = &mut x.stage else {
            return false;
        };
        let scanned = scanner.scan(self.from_upstream.data(), &head_limits);
        match scanned {
            Ok(Some(span)) => {
                let mut head = self.from_upstream.take(span.end);
                let head = head.split_off(span.start);
                match parse_response_head(head, &self.config) {
                    Ok(response) => self.on_response_head(response, now),
                    Err(e) => self.fail(Error::Response(e), now),
                }
                true
            }
            Ok(None) if self.upstream_eof => {
                self.upstream_failed_early(Error::Response(ResponseError::PrematureClose), now);
                true
            }
            Ok(None) => false,
            Err(e) => {
                let e = match e {
                    ScanError::TooManyFields => ResponseError::TooManyHeaders,
                    ScanError::FirstLineTooLong | ScanError::TooLarge => {
                        ResponseError::HeadTooLarge
                    }
                };
                self.fail(Error::Response(e), now);
                true
            }
        }
    }

    /// The usual case, taken without the scanner: everything received from the upstream is one
    /// whole, plain, valid head (see `take_plain_request_head`, the same reasoning with the
    /// response's limits). Anything else is put back (`None`) for the scanner and the full
    /// parser, so every limit and error stays theirs.
    fn take_plain_response_head(&mut self) -> Option<ResponseHead> {
        let config = &self.config;
        self.from_upstream
            .take_whole_head(config.limits.max_response_head_bytes, |head| {
                crate::head::response::parse_plain_response_head(head, config)
            })
    }

    /// A complete, valid response head arrived.
    fn on_response_head(&mut self, response: ResponseHead, now: Instant) {
        let Phase::Exchange(x) = &mut self.phase else {
            return;
        };
        if response.is_interim() {
            let own_continue = response.status == 100 && x.sent_continue;
            // RFC 9110 §15.2: 1xx are forwarded, but never to HTTP/1.0 clients.
            if !own_continue && x.request.version == Version::Http11 {
                let mut head = BytesMut::with_capacity(256);
                rewrite::write_interim_response(&response, &mut head);
                self.to_client.push(head.freeze());
                x.interim_relayed = true;
            }
            x.stage = Stage::AwaitingHead(HeadScanner::default());
            return;
        }
        if response.status == 101 {
            if !x.request_body.done {
                // T100: never reinterpret the rest of a declared body as tunnel data.
                self.fail(Error::Response(ResponseError::SwitchBeforeBodyEnd), now);
                return;
            }
            match accept_switch(x.offer.as_ref(), &response, &self.config) {
                Ok(accepted) => self.switch(&response, accepted, now),
                Err(e) => self.fail(Error::Response(e), now),
            }
            return;
        }
        let framing = response.framing(x.request.method_is("HEAD"));
        let client_framing = match (framing, x.request.version) {
            // A close-delimited body is chunked to an HTTP/1.1 client (so the end is explicit);
            // an HTTP/1.0 client cannot read chunks, so it gets the body delimited by the close.
            (BodyFraming::CloseDelimited, Version::Http11) => BodyFraming::Chunked,
            (BodyFraming::Chunked, Version::Http10) => BodyFraming::CloseDelimited,
            (f, _) => f,
        };
        let reuse = Reuse {
            client: x.request.wants_keep_alive()
                && x.request_body.done
                && client_framing != BodyFraming::CloseDelimited
                && self.requests + 1 < self.config.max_requests_per_connection
                && !self.client_eof,
            upstream: response.allows_reuse() && framing != BodyFraming::CloseDelimited,
        };
        let mut head = BytesMut::with_capacity(512);
        rewrite::write_final_response(
            &response,
            client_framing,
            x.request.version,
            reuse.client,
            &mut head,
        );
        self.to_client.push(head.freeze());
        self.status = Some(response.status);
        x.response_started = true;
        x.stage = Stage::RelayingBody(
            BodyRelay::new(framing, client_framing, self.config.limits.max_chunk_line),
            reuse,
        );
    }

    /// The switch: the 101 head, then the upstream's early bytes, go to the client; the held
    /// client bytes go to the upstream first. From here on the session is a tunnel.
    fn switch(&mut self, response: &ResponseHead, accepted: UpgradeAccepted, now: Instant) {
        let mut head = BytesMut::with_capacity(512);
        rewrite::write_switch_response(response, &accepted, &mut head);
        self.to_client.push(head.freeze());
        let protocol = accepted.protocol_bytes();
        let early = self.from_upstream.take_all();
        let held = self.from_client.take_all();
        let (early_len, held_len) = (early.len(), held.len());
        self.counters.tunnel_to_client += early_len as u64;
        self.counters.tunnel_to_upstream += held_len as u64;
        self.to_client.push(early);
        self.to_upstream.push(held);
        self.status = Some(101);
        self.tunnelled = true;
        self.phase = Phase::Tunnel(Tunnel::new(accepted));
        self.timers.stop(Timer::UpstreamRead);
        self.timers.stop(Timer::ClientBody);
        self.timers
            .set(Timer::TunnelIdle, now + self.config.timeouts.tunnel_idle);
        self.events.push_back(Event::TunnelEstablished {
            protocol,
            held_client_bytes: held_len,
            early_upstream_bytes: early_len,
        });
    }

    /// Moves response body bytes to the client queue; finishes the exchange at the body's end.
    fn relay_response_body(&mut self, now: Instant) -> bool {
        let limit = self.config.limits.buffer_size;
        let Phase::Exchange(x) = &mut self.phase else {
            return false;
        };
        let Stage::RelayingBody(relay, reuse) = &mut x.stage else {
            return false;
        };
        let reuse = *reuse;
        let to_client = &mut self.to_client;
        let mut outcome = if relay.done {
            Relayed::Stalled
        } else {
            self.from_upstream
                .with_data(|input| move_body(relay, input, to_client, limit))
        };
        if matches!(outcome, Relayed::Stalled) && self.upstream_eof && self.from_upstream.is_empty()
        {
            outcome = match relay.decoder.eof() {
                Ok(_) => {
                    let mut tail = VecDeque::new();
                    relay.encoder.finish(&mut tail);
                    self.to_client.push_all(&mut tail);
                    relay.done = true;
                    // Ended by the close: `finish_exchange` sees the EOF and does not reuse it.
                    Relayed::Finished
                }
                Err(_) => {
                    // Never a truncated response that looks complete: close instead.
                    self.close(Some(Error::Response(ResponseError::PrematureClose)));
                    return true;
                }
            };
        }
        match outcome {
            Relayed::Stalled => false,
            Relayed::Moved => true,
            Relayed::Finished => {
                self.finish_exchange(reuse, now);
                true
            }
            Relayed::Invalid | Relayed::TooLarge => {
                self.close(Some(Error::Response(ResponseError::InvalidChunkedBody)));
                true
            }
        }
    }

    /// The response is complete: the upstream connection is released (to the pool if it ended
    /// cleanly) and the client connection either waits for its next request or is finished.
    fn finish_exchange(&mut self, reuse: Reuse, now: Instant) {
        let Phase::Exchange(x) = &self.phase else {
            return;
        };
        let clean = x.request_body.done
            && self.to_upstream.is_empty()
            && self.from_upstream.is_empty()
            && !self.upstream_eof;
        self.timers.stop(Timer::UpstreamRead);
        self.timers.stop(Timer::UpstreamSend);
        self.timers.stop(Timer::ClientBody);
        self.release_upstream(reuse.upstream && clean);
        self.requests += 1;
        if reuse.client {
            self.await_next_request(now);
        } else {
            self.enter_drain(now);
        }
    }
}

/// Decodes what `input` holds of `relay`'s body and queues it, re-encoded, to `out` while `out`
/// holds less than `limit` bytes.
fn move_body(
    relay: &mut BodyRelay,
    input: &mut BytesMut,
    out: &mut crate::buffer::Outbox,
    limit: usize,
) -> Relayed {
    if relay.done {
        return Relayed::Stalled;
    }
    let mut framed = VecDeque::new();
    let mut outcome = Relayed::Stalled;
    while out.len() < limit {
        match relay.decoder.decode(input) {
            Ok(Some(BodyChunk::Data(data))) => {
                let rest = relay.decoder.remaining_in_chunk();
                relay.encoder.chunk_data(data, rest, &mut framed);
                out.push_all(&mut framed);
                outcome = Relayed::Moved;
            }
            Ok(Some(BodyChunk::End)) => {
                relay.encoder.finish(&mut framed);
                out.push_all(&mut framed);
                relay.done = true;
                return Relayed::Finished;
            }
            Ok(None) => break,
            Err(_) => return Relayed::Invalid,
        }
    }
    outcome
}
