//! Serializing the heads the proxy sends (STUB: being written).

use std::net::SocketAddr;

use bytes::BytesMut;

use crate::config::Config;
use crate::error::StatusCode;
use crate::head::request::RequestHead;
use crate::head::response::ResponseHead;
use crate::head::{BodyFraming, Version};
use crate::upgrade::{UpgradeAccepted, UpgradeOffer};

/// Facts about the client connection that rewriting needs.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    /// The client's address (`$remote_addr`, `X-Forwarded-For`).
    pub addr: Option<SocketAddr>,
    /// Whether the client connection is TLS (`$scheme`, `X-Forwarded-Proto`).
    pub secure: bool,
}

/// Writes the upstream request head for `request`.
pub fn write_upstream_request(
    request: &RequestHead,
    offer: Option<&UpgradeOffer>,
    framing: BodyFraming,
    client: &ClientInfo,
    config: &Config,
    out: &mut BytesMut,
) {
    let _ = (request, offer, framing, client, config, out);
}

/// Writes the 101 head sent to the client.
pub fn write_switch_response(response: &ResponseHead, accepted: &UpgradeAccepted, out: &mut BytesMut) {
    let _ = (response, accepted, out);
}

/// Writes a relayed 1xx (other than 101) head.
pub fn write_interim_response(response: &ResponseHead, out: &mut BytesMut) {
    let _ = (response, out);
}

/// Writes a relayed final response head.
pub fn write_final_response(
    response: &ResponseHead,
    framing: BodyFraming,
    client_version: Version,
    keep_alive: bool,
    out: &mut BytesMut,
) {
    let _ = (response, framing, client_version, keep_alive, out);
}

/// Writes the proxy's own complete error response (head and body, `Connection: close`).
pub fn write_error_response(status: StatusCode, out: &mut BytesMut) {
    let _ = (status, out);
}
