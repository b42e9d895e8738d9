//! Typed errors and their one mapping to the wire.
//!
//! Every way a session can fail is a variant here, grouped by who is at fault: the client
//! ([`RequestError`]), the upstream ([`ResponseError`], [`UpstreamError`]) or the clock
//! ([`Timeout`]). [`Error::status`] is the only place where a failure is turned into an HTTP status
//! code, so the choice between 400, 408, 413, 414, 431, 501, 502, 504 and 505 can be read in one
//! screen.

use std::fmt;

/// A failure of one proxied exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The client sent a request the proxy refuses; it is answered with a 4xx/5xx and closed.
    Request(RequestError),
    /// The upstream sent a response the proxy refuses; the client gets a 502 (or a close).
    Response(ResponseError),
    /// Connecting to or talking with the upstream failed.
    Upstream(UpstreamError),
    /// A deadline expired.
    Timeout(Timeout),
}

/// Why a client request was refused. Each variant names the rule that was broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestError {
    /// The request line is not `method SP target SP HTTP/x.y` (includes HTTP/0.9-style lines).
    MalformedRequestLine,
    /// The method is not a valid token.
    InvalidMethod,
    /// The request target holds a control character, a space, or is otherwise unusable.
    InvalidTarget,
    /// `*` as the target of a method other than `OPTIONS`.
    AsteriskForm,
    /// `CONNECT` (this is a reverse proxy, not a forward proxy) or `TRACE`.
    MethodNotAllowed,
    /// The version is syntactically valid but not HTTP/1.0 or HTTP/1.1.
    UnsupportedVersion,
    /// The request line is longer than [`Limits::max_request_line`](crate::Limits).
    RequestLineTooLong,
    /// The head is larger than [`Limits::max_head_bytes`](crate::Limits).
    HeadTooLarge,
    /// The head has more fields than [`Limits::max_headers`](crate::Limits).
    TooManyHeaders,
    /// A field name is empty or holds whitespace or a non-token byte (includes `Name :`).
    InvalidHeaderName,
    /// A field value holds NUL, CR, LF or another forbidden control byte.
    InvalidHeaderValue,
    /// A field line starts with whitespace (obs-fold, RFC 9112 §5.2).
    ObsFold,
    /// A CR not followed by LF in the head.
    BareCr,
    /// HTTP/1.1 without a `Host` field.
    MissingHost,
    /// More than one `Host` field.
    DuplicateHost,
    /// `Host` (or the authority of an absolute-form target) is not a valid `host[:port]`.
    InvalidHost,
    /// More than one `Content-Length` (identical values and comma lists included).
    DuplicateContentLength,
    /// `Content-Length` is not `1*DIGIT` or overflows u64.
    InvalidContentLength,
    /// Both `Content-Length` and `Transfer-Encoding`.
    ContentLengthWithTransferEncoding,
    /// `Transfer-Encoding` on an HTTP/1.0 request.
    TransferEncodingOnHttp10,
    /// `Transfer-Encoding` lists `chunked` but not as the final coding, or twice.
    ChunkedNotFinal,
    /// `Transfer-Encoding` with a coding other than `chunked`.
    UnsupportedTransferCoding,
    /// The chunked request body is malformed.
    InvalidChunkedBody,
    /// The body is larger than the configured maximum.
    BodyTooLarge,
    /// A request arrived in a state where none is allowed (e.g. bytes after `Connection: close`).
    UnexpectedData,
}

/// Why an upstream response was refused. The client gets a 502 if nothing was sent to it yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResponseError {
    /// The status line or a field line does not parse.
    InvalidHead,
    /// The head is larger than the limit.
    HeadTooLarge,
    /// The head has more fields than the limit.
    TooManyHeaders,
    /// A field line starts with whitespace (obs-fold).
    ObsFold,
    /// More than one `Content-Length`.
    DuplicateContentLength,
    /// `Content-Length` is not `1*DIGIT` or overflows u64.
    InvalidContentLength,
    /// Both `Content-Length` and `Transfer-Encoding`.
    ContentLengthWithTransferEncoding,
    /// `Transfer-Encoding` other than a single final `chunked`.
    UnsupportedTransferCoding,
    /// A 101 to a request that did not offer an upgrade the proxy accepted.
    UnsolicitedSwitch,
    /// A 101 whose `Upgrade` names no protocol the client offered, or more than one.
    UpgradeMismatch,
    /// A 101 in an HTTP/1.0 status line.
    SwitchOnHttp10,
    /// Strict WebSocket mode: `Sec-WebSocket-Accept` does not match the client's key.
    WebSocketAcceptMismatch,
    /// A 101 arrived before the request body was completely sent.
    SwitchBeforeBodyEnd,
    /// The chunked response body is malformed.
    InvalidChunkedBody,
    /// The upstream closed the connection before the response was complete.
    PrematureClose,
}

/// Failures of the upstream connection itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UpstreamError {
    /// The connection to the upstream could not be established.
    ConnectFailed,
    /// A read or write on the upstream connection failed.
    Io,
}

/// Which deadline expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Timeout {
    /// The client request head did not arrive in time (408).
    ClientHeader,
    /// The client body stalled (408, or a close once the response started).
    ClientBody,
    /// The upstream connection was not established in time (504).
    Connect,
    /// The upstream response head did not arrive in time (504).
    UpstreamResponse,
    /// The upstream response body stalled.
    UpstreamRead,
    /// No byte moved through the tunnel in either direction for the idle timeout.
    TunnelIdle,
    /// One direction of the tunnel was closed and the other stayed idle too long.
    HalfClosed,
    /// The client stopped reading what the proxy writes to it (nginx `send_timeout`).
    SendStall,
    /// The upstream stopped reading the request the proxy writes to it (nginx
    /// `proxy_send_timeout`: 504).
    UpstreamSendStall,
    /// A kept-alive client connection stayed idle.
    KeepAliveIdle,
}

/// The HTTP status codes the proxy itself answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StatusCode(pub u16);

impl StatusCode {
    /// The standard reason phrase for the codes the proxy generates.
    pub fn reason(self) -> &'static str {
        match self.0 {
            100 => "Continue",
            400 => "Bad Request",
            405 => "Method Not Allowed",
            408 => "Request Timeout",
            413 => "Content Too Large",
            414 => "URI Too Long",
            431 => "Request Header Fields Too Large",
            500 => "Internal Server Error",
            501 => "Not Implemented",
            502 => "Bad Gateway",
            504 => "Gateway Timeout",
            505 => "HTTP Version Not Supported",
            _ => "Unknown",
        }
    }
}

impl Error {
    /// The status code to answer the client with, if a response can still be sent.
    ///
    /// This is the only place where errors become status codes.
    pub fn status(&self) -> StatusCode {
        use RequestError as R;
        let code = match self {
            Self::Request(e) => match e {
                R::RequestLineTooLong => 414,
                R::HeadTooLarge | R::TooManyHeaders => 431,
                R::UnsupportedVersion => 505,
                R::UnsupportedTransferCoding => 501,
                R::MethodNotAllowed => 405,
                R::BodyTooLarge => 413,
                _ => 400,
            },
            Self::Response(_) => 502,
            Self::Upstream(_) => 502,
            Self::Timeout(t) => match t {
                Timeout::ClientHeader | Timeout::ClientBody | Timeout::KeepAliveIdle => 408,
                Timeout::SendStall => 408,
                _ => 504,
            },
        };
        StatusCode(code)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Request(e) => write!(f, "client request refused: {e:?}"),
            Self::Response(e) => write!(f, "upstream response refused: {e:?}"),
            Self::Upstream(e) => write!(f, "upstream failure: {e:?}"),
            Self::Timeout(t) => write!(f, "timed out: {t:?}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<RequestError> for Error {
    fn from(e: RequestError) -> Self {
        Self::Request(e)
    }
}

impl From<ResponseError> for Error {
    fn from(e: ResponseError) -> Self {
        Self::Response(e)
    }
}
