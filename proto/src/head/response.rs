//! Upstream response heads: parsing with httparse and validation (STUB: being written).

use bytes::Bytes;

use super::{BodyFraming, ConnectionOptions, HeaderField, Version};
use crate::config::Config;
use crate::error::ResponseError;

/// A validated upstream response head.
#[derive(Debug, Clone)]
pub struct ResponseHead {
    /// The protocol version of the status line.
    pub version: Version,
    /// The status code.
    pub status: u16,
    /// The reason phrase, as received (may be empty).
    pub reason: Bytes,
    /// The received fields in order.
    pub headers: Vec<HeaderField>,
    /// The `Content-Length`, if any (validated).
    pub content_length: Option<u64>,
    /// `Transfer-Encoding: chunked` (validated as the single, final coding).
    pub chunked: bool,
    /// The options of the `Connection` fields.
    pub connection: ConnectionOptions,
}

impl ResponseHead {
    /// Whether this is an interim (1xx) response other than 101.
    pub fn is_interim(&self) -> bool {
        (100..200).contains(&self.status) && self.status != 101
    }

    /// How the body of this response is delimited, given whether the request was `HEAD`.
    pub fn framing(&self, request_was_head: bool) -> BodyFraming {
        if request_was_head || self.status < 200 || self.status == 204 || self.status == 304 {
            BodyFraming::None
        } else if self.chunked {
            BodyFraming::Chunked
        } else if let Some(n) = self.content_length {
            BodyFraming::Length(n)
        } else {
            BodyFraming::CloseDelimited
        }
    }
}

/// Parses and validates a complete response head (status line through the blank line).
pub fn parse_response_head(head: Bytes, config: &Config) -> Result<ResponseHead, ResponseError> {
    let _ = (head, config);
    Err(ResponseError::InvalidHead)
}
