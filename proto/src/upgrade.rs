//! The upgrade decision: what the client offered, and whether a 101 may start a tunnel
//! (STUB: being written).

use bytes::Bytes;

use crate::config::Config;
use crate::error::ResponseError;
use crate::head::request::RequestHead;
use crate::head::response::ResponseHead;

/// The protocols a client offered to switch to that the proxy is willing to tunnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeOffer {
    /// The allowed `Upgrade` tokens, as the client wrote them, in its order.
    pub protocols: Vec<Bytes>,
    /// The client's `Sec-WebSocket-Key`, for strict WebSocket mode.
    pub websocket_key: Option<Bytes>,
}

/// Proof that a 101 was validated against the client's offer. Only [`accept_switch`] makes one,
/// and entering the tunnel requires one, so tunnelling an unvalidated 101 does not compile.
#[derive(Debug)]
pub struct UpgradeAccepted {
    protocol: Bytes,
}

impl UpgradeAccepted {
    /// The protocol switched to, as the upstream named it.
    pub fn protocol(&self) -> &[u8] {
        &self.protocol
    }
}

/// What the client offered, filtered by the allow-list. `None`: this is not an upgrade request.
pub fn client_offer(request: &RequestHead, config: &Config) -> Option<UpgradeOffer> {
    let _ = (request, config);
    None
}

/// Validates a 101 against the offer.
pub fn accept_switch(
    offer: Option<&UpgradeOffer>,
    response: &ResponseHead,
    config: &Config,
) -> Result<UpgradeAccepted, ResponseError> {
    let _ = (offer, response, config);
    Err(ResponseError::UnsolicitedSwitch)
}
