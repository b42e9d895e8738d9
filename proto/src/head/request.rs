//! Client request heads: parsing with httparse and validation (STUB: being written).

use bytes::Bytes;

use super::{BodyFraming, ConnectionOptions, HeaderField, Version};
use crate::config::Config;
use crate::error::RequestError;

/// A validated client request head.
#[derive(Debug, Clone)]
pub struct RequestHead {
    /// The method, as received (a valid token).
    pub method: Bytes,
    /// The request target, as received.
    pub target: Bytes,
    /// The target to send upstream, in origin-form (`/path?query`), or `*` for `OPTIONS *`.
    pub path: Bytes,
    /// The protocol version.
    pub version: Version,
    /// The received fields in order (minus fields dropped by policy, such as `_` in names).
    pub headers: Vec<HeaderField>,
    /// The effective authority: an absolute-form target's authority, else the `Host` value.
    pub host: Option<Bytes>,
    /// How the request body is delimited: `None`, `Length` or `Chunked`.
    pub framing: BodyFraming,
    /// The options of the `Connection` fields.
    pub connection: ConnectionOptions,
    /// `Expect: 100-continue` was sent.
    pub expect_continue: bool,
}

impl RequestHead {
    /// Whether the method is `name` (methods are case-sensitive).
    pub fn method_is(&self, name: &str) -> bool {
        self.method.as_ref() == name.as_bytes()
    }
}

/// Parses and validates a complete request head (first line through the blank line).
pub fn parse_request_head(head: Bytes, config: &Config) -> Result<RequestHead, RequestError> {
    let _ = (head, config);
    Err(RequestError::MalformedRequestLine)
}
