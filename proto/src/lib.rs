//! Switchyard's sans-IO core (docs being written).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod body;
pub mod config;
pub mod error;
pub mod head;
pub mod rewrite;
pub mod rules;
pub mod upgrade;

pub use config::{Config, HalfClose, HostHeader, IpNet, Limits, Timeouts};
pub use error::{Error, RequestError, ResponseError, StatusCode, Timeout, UpstreamError};
