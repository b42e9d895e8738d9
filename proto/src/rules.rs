//! User header rules for the upstream request, like nginx's `proxy_set_header`, with variables.
//!
//! Operators need to tell the upstream things the proxy knows (`X-Real-IP: $remote_addr`) or to
//! reshape the request (`Set Host $host`, `Remove Cookie`). This module parses those rules once,
//! at startup, into a template of literal pieces and typed variables, so that a typo (`$remote_adr`)
//! or a dangerous rule is refused when the configuration is built, never discovered per request.
//!
//! Safety rules enforced at creation ([`HeaderRule::new`]):
//! - the field name is a token, and not one of the framing or hop-by-hop fields
//!   (`Content-Length`, `Transfer-Encoding`, `Connection`, `Upgrade`, `Keep-Alive`,
//!   `Proxy-Connection`, `TE`, `Trailer`): those are the proxy's job, and letting a rule set them
//!   would re-open request smuggling;
//! - `Host` may only be `Set` (HTTP/1.1 needs exactly one `Host`);
//! - literal text holds no control byte other than HTAB (so no CR, LF or NUL);
//! - every variable is known.
//!
//! At evaluation, a value that would still hold a forbidden control byte (it cannot with validated
//! input; this is defence in depth) is treated as empty, and an empty value means "no field".

use std::fmt;

use bytes::BytesMut;

use crate::config::Config;
use crate::head::request::RequestHead;
use crate::head::{is_token, FieldKind, HeaderField};
use crate::rewrite::{put_ip, put_u64, ClientInfo};

/// What a rule does to the upstream request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeaderAction {
    /// Replace every field of this name with one (none if the value evaluates empty).
    Set,
    /// Append one more field of this name (skipped if the value evaluates empty).
    Add,
    /// Remove every field of this name.
    Remove,
}

/// Why a rule was refused at creation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RuleError {
    /// The field name is empty or not a token.
    InvalidName,
    /// The field name is a framing or hop-by-hop field that only the proxy may write.
    ProtectedName,
    /// `Add` or `Remove` on `Host`: the upstream request must carry exactly one `Host`.
    HostNotSettable,
    /// The template's literal text holds a control byte (CR, LF, NUL, ...) other than HTAB.
    ForbiddenByte,
    /// A `$` not followed by a variable name, or an unclosed or empty `${...}`.
    MalformedTemplate,
    /// A variable that does not exist (the name is given, without `$`).
    UnknownVariable(String),
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidName => f.write_str("header rule: the field name is not a token"),
            Self::ProtectedName => {
                f.write_str("header rule: framing and hop-by-hop fields are set by the proxy only")
            }
            Self::HostNotSettable => f.write_str("header rule: Host can only be Set"),
            Self::ForbiddenByte => f.write_str("header rule: control byte in the value template"),
            Self::MalformedTemplate => {
                f.write_str("header rule: malformed variable in the template")
            }
            Self::UnknownVariable(name) => write!(f, "header rule: unknown variable ${name}"),
        }
    }
}

impl std::error::Error for RuleError {}

/// One user rule, like nginx's `proxy_set_header`. Built (and validated) by [`HeaderRule::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderRule {
    action: HeaderAction,
    name: String,
    source: String,
    template: Vec<Segment>,
    is_host: bool,
}

/// The evaluation context of a rule: everything a variable can refer to.
#[derive(Debug, Clone, Copy)]
pub struct RuleContext<'a> {
    /// The client's request head.
    pub request: &'a RequestHead,
    /// Facts about the client connection.
    pub client: &'a ClientInfo,
    /// The listener configuration (`$proxy_host`).
    pub config: &'a Config,
    /// Whether the request is forwarded as an upgrade request (`$connection_upgrade`).
    pub upgrading: bool,
}

/// A piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(Box<[u8]>),
    Var(Variable),
}

/// The known variables.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Variable {
    RemoteAddr,
    RemotePort,
    Host,
    HttpHost,
    Scheme,
    RequestMethod,
    RequestUri,
    Uri,
    Args,
    ServerProtocol,
    ProxyHost,
    ProxyAddXForwardedFor,
    ConnectionUpgrade,
    /// `$http_<name>`: the suffix, lower-cased, with `-` turned into `_`.
    Http(Box<[u8]>),
}

impl Variable {
    fn lookup(name: &str) -> Option<Self> {
        let lower = name.to_ascii_lowercase();
        Some(match lower.as_str() {
            "remote_addr" => Self::RemoteAddr,
            "remote_port" => Self::RemotePort,
            "host" => Self::Host,
            "http_host" => Self::HttpHost,
            "scheme" => Self::Scheme,
            "request_method" => Self::RequestMethod,
            "request_uri" => Self::RequestUri,
            "uri" => Self::Uri,
            "args" => Self::Args,
            "server_protocol" => Self::ServerProtocol,
            "proxy_host" => Self::ProxyHost,
            "proxy_add_x_forwarded_for" => Self::ProxyAddXForwardedFor,
            "connection_upgrade" => Self::ConnectionUpgrade,
            other => {
                let suffix = other.strip_prefix("http_").filter(|s| !s.is_empty())?;
                Self::Http(suffix.as_bytes().into())
            }
        })
    }
}

fn is_var_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Control bytes that may never appear in a field value (HTAB is allowed).
fn is_forbidden(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b == 0x7f
}

fn parse_template(template: &str) -> Result<Vec<Segment>, RuleError> {
    let bytes = template.as_bytes();
    let mut segments = Vec::new();
    let mut literal: Vec<u8> = Vec::new();
    let mut rest = bytes;
    while let Some((&b, tail)) = rest.split_first() {
        if b != b'$' {
            if is_forbidden(b) {
                return Err(RuleError::ForbiddenByte);
            }
            literal.push(b);
            rest = tail;
            continue;
        }
        let (name, after) = if let Some(inner) = tail.strip_prefix(b"{") {
            let end = inner
                .iter()
                .position(|&c| c == b'}')
                .ok_or(RuleError::MalformedTemplate)?;
            let (name, closing) = inner.split_at(end);
            (name, closing.get(1..).unwrap_or_default())
        } else {
            let end = tail
                .iter()
                .position(|&c| !is_var_char(c))
                .unwrap_or(tail.len());
            tail.split_at(end)
        };
        if name.is_empty() || !name.iter().all(|&c| is_var_char(c)) {
            return Err(RuleError::MalformedTemplate);
        }
        // `name` is ASCII (checked above), so this conversion cannot fail.
        let name = std::str::from_utf8(name).map_err(|_| RuleError::MalformedTemplate)?;
        let var =
            Variable::lookup(name).ok_or_else(|| RuleError::UnknownVariable(name.to_owned()))?;
        if !literal.is_empty() {
            segments.push(Segment::Literal(std::mem::take(&mut literal).into()));
        }
        segments.push(Segment::Var(var));
        rest = after;
    }
    if !literal.is_empty() {
        segments.push(Segment::Literal(literal.into()));
    }
    Ok(segments)
}

impl HeaderRule {
    /// Validates and compiles a rule. `value_template` is literal text with `$name` or `${name}`
    /// variables; it is ignored (but still validated) for [`HeaderAction::Remove`].
    ///
    /// Variables: `remote_addr`, `remote_port`, `host` (effective host, lower-cased, no port),
    /// `http_host` (the raw `Host` value), `scheme`, `request_method`, `request_uri` (the target
    /// as received), `uri` (path without query), `args` (query without `?`), `server_protocol`,
    /// `proxy_host` ([`Config::upstream_authority`]), `proxy_add_x_forwarded_for`,
    /// `connection_upgrade` (`upgrade` for an upgrade request, else `close`, as nginx's documented
    /// `map`), and `http_<name>` (the client's `<name>` fields joined with `", "`; `_` matches `-`).
    pub fn new(action: HeaderAction, name: &str, value_template: &str) -> Result<Self, RuleError> {
        if !is_token(name.as_bytes()) {
            return Err(RuleError::InvalidName);
        }
        let is_host = match FieldKind::of(name.as_bytes()) {
            FieldKind::Host => true,
            FieldKind::Connection
            | FieldKind::KeepAlive
            | FieldKind::ProxyConnection
            | FieldKind::Te
            | FieldKind::Trailer
            | FieldKind::TransferEncoding
            | FieldKind::ContentLength
            | FieldKind::Upgrade => return Err(RuleError::ProtectedName),
            _ => false,
        };
        if is_host && action != HeaderAction::Set {
            return Err(RuleError::HostNotSettable);
        }
        let template = parse_template(value_template)?;
        Ok(Self {
            action,
            name: name.to_owned(),
            source: value_template.to_owned(),
            template,
            is_host,
        })
    }

    /// `Set name value_template`: see [`HeaderRule::new`].
    pub fn set(name: &str, value_template: &str) -> Result<Self, RuleError> {
        Self::new(HeaderAction::Set, name, value_template)
    }

    /// `Add name value_template`: see [`HeaderRule::new`].
    pub fn add(name: &str, value_template: &str) -> Result<Self, RuleError> {
        Self::new(HeaderAction::Add, name, value_template)
    }

    /// `Remove name`: see [`HeaderRule::new`].
    pub fn remove(name: &str) -> Result<Self, RuleError> {
        Self::new(HeaderAction::Remove, name, "")
    }

    /// What the rule does.
    pub fn action(&self) -> HeaderAction {
        self.action
    }

    /// The field name, as configured.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value template, as configured.
    pub fn template(&self) -> &str {
        &self.source
    }

    /// Evaluates the value; empty means "no field". A result holding a control byte is empty.
    pub fn evaluate(&self, ctx: &RuleContext<'_>) -> Vec<u8> {
        let mut out = BytesMut::new();
        self.append_value(ctx, &mut out);
        out.to_vec()
    }

    /// Whether this is the `Set Host` rule.
    pub(crate) fn is_host(&self) -> bool {
        self.is_host
    }

    /// Whether this rule replaces or removes the earlier fields named `name`.
    pub(crate) fn suppresses(&self, name: &[u8]) -> bool {
        self.action != HeaderAction::Add && self.name.as_bytes().eq_ignore_ascii_case(name)
    }

    /// Appends the evaluated value to `out`. Returns false (leaving `out` as it was) when the value
    /// is empty, all whitespace, or holds a forbidden control byte.
    pub(crate) fn append_value(&self, ctx: &RuleContext<'_>, out: &mut BytesMut) -> bool {
        let start = out.len();
        for segment in &self.template {
            match segment {
                Segment::Literal(text) => out.extend_from_slice(text),
                Segment::Var(var) => append_variable(var, ctx, out),
            }
        }
        let value = out.get(start..).unwrap_or_default();
        let usable = value.iter().any(|&b| b != b' ' && b != b'\t')
            && !value.iter().any(|&b| is_forbidden(b));
        if !usable {
            out.truncate(start);
        }
        usable
    }
}

/// The host part of `host[:port]` (IPv6 literals keep their brackets).
pub(crate) fn strip_port(authority: &[u8]) -> &[u8] {
    let end = if authority.first() == Some(&b'[') {
        authority
            .iter()
            .position(|&b| b == b']')
            .map(|i| i.saturating_add(1))
    } else {
        authority.iter().rposition(|&b| b == b':')
    };
    end.and_then(|e| authority.get(..e)).unwrap_or(authority)
}

/// Appends the values of every field whose name matches, joined with `", "`.
fn append_joined<'h>(fields: impl Iterator<Item = HeaderField<'h>>, out: &mut BytesMut) -> bool {
    let mut any = false;
    for field in fields.filter(|f| !f.value.is_empty()) {
        if any {
            out.extend_from_slice(b", ");
        }
        out.extend_from_slice(field.value);
        any = true;
    }
    any
}

/// Whether a field name matches an `$http_` suffix (case-insensitive, `-` matches `_`).
fn matches_http_var(name: &[u8], suffix: &[u8]) -> bool {
    name.len() == suffix.len()
        && name.iter().zip(suffix).all(|(&n, &s)| {
            let n = n.to_ascii_lowercase();
            (if n == b'-' { b'_' } else { n }) == s
        })
}

fn append_variable(var: &Variable, ctx: &RuleContext<'_>, out: &mut BytesMut) {
    let request = ctx.request;
    let (path, query) = match request.path.iter().position(|&b| b == b'?') {
        Some(i) => (
            request.path.get(..i).unwrap_or_default(),
            request.path.get(i.saturating_add(1)..),
        ),
        None => (&request.path[..], None),
    };
    match var {
        Variable::RemoteAddr => {
            if let Some(addr) = ctx.client.addr {
                put_ip(out, addr.ip());
            }
        }
        Variable::RemotePort => {
            if let Some(addr) = ctx.client.addr {
                put_u64(out, u64::from(addr.port()));
            }
        }
        Variable::Host => {
            if let Some(host) = &request.host {
                let start = out.len();
                out.extend_from_slice(strip_port(host));
                if let Some(appended) = out.get_mut(start..) {
                    appended.make_ascii_lowercase();
                }
            }
        }
        Variable::HttpHost => {
            append_joined(request.headers.of_kind(FieldKind::Host), out);
        }
        Variable::Scheme => {
            out.extend_from_slice(if ctx.client.secure { b"https" } else { b"http" });
        }
        Variable::RequestMethod => out.extend_from_slice(&request.method),
        Variable::RequestUri => out.extend_from_slice(&request.target),
        Variable::Uri => out.extend_from_slice(path),
        Variable::Args => out.extend_from_slice(query.unwrap_or_default()),
        Variable::ServerProtocol => out.extend_from_slice(request.version.as_str().as_bytes()),
        Variable::ProxyHost => out.extend_from_slice(ctx.config.upstream_authority.as_bytes()),
        Variable::ProxyAddXForwardedFor => {
            let xff = request.headers.of_kind(FieldKind::XForwardedFor);
            let any = append_joined(xff, out);
            if let Some(addr) = ctx.client.addr {
                if any {
                    out.extend_from_slice(b", ");
                }
                put_ip(out, addr.ip());
            }
        }
        Variable::ConnectionUpgrade => {
            out.extend_from_slice(if ctx.upgrading { b"upgrade" } else { b"close" });
        }
        Variable::Http(suffix) => {
            let fields = request
                .headers
                .iter()
                .filter(|f| matches_http_var(f.name, suffix));
            append_joined(fields, out);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::head::response::ResponseHead;
    use crate::head::{trim_ows, BodyFraming, ConnectionOptions, Headers, Version};
    use bytes::Bytes;
    use proptest::prelude::*;

    /// Field list fixture (shared with the rewrite tests).
    pub(crate) fn fields(list: &[(&str, &str)]) -> Headers {
        Headers::from_pairs(list.iter().copied())
    }

    /// A `GET` request head fixture (shared with the rewrite tests).
    pub(crate) fn request(
        target: &str,
        path: &str,
        host: Option<&str>,
        list: &[(&str, &str)],
    ) -> RequestHead {
        let headers = fields(list);
        RequestHead {
            method: Bytes::from_static(b"GET"),
            target: Bytes::copy_from_slice(target.as_bytes()),
            path: Bytes::copy_from_slice(path.as_bytes()),
            version: Version::Http11,
            connection: ConnectionOptions::from_headers(&headers),
            headers,
            host: host.map(|h| Bytes::copy_from_slice(h.as_bytes())),
            framing: BodyFraming::None,
            expect_continue: false,
        }
    }

    /// A response head fixture.
    pub(crate) fn response(status: u16, reason: &str, list: &[(&str, &str)]) -> ResponseHead {
        let headers = fields(list);
        let content_length = list
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok());
        ResponseHead {
            version: Version::Http11,
            status,
            reason: Bytes::copy_from_slice(reason.as_bytes()),
            connection: ConnectionOptions::from_headers(&headers),
            chunked: list
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding")),
            headers,
            content_length,
        }
    }

    /// Every head we produce must re-parse with httparse, with exactly one `Host`.
    pub(crate) fn assert_request_parses(bytes: &[u8]) {
        let mut headers = [httparse::EMPTY_HEADER; 128];
        let mut req = httparse::Request::new(&mut headers);
        let status = req
            .parse(bytes)
            .unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(bytes)));
        assert_eq!(status, httparse::Status::Complete(bytes.len()), "{bytes:?}");
        let hosts = req
            .headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case("host"))
            .count();
        assert_eq!(
            hosts,
            1,
            "exactly one Host in {:?}",
            String::from_utf8_lossy(bytes)
        );
    }

    /// Returns the head length; the rest of `bytes` must be the body its `Content-Length` announces.
    pub(crate) fn assert_response_parses(bytes: &[u8]) -> usize {
        let mut headers = [httparse::EMPTY_HEADER; 128];
        let mut res = httparse::Response::new(&mut headers);
        let status = res
            .parse(bytes)
            .unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(bytes)));
        let httparse::Status::Complete(len) = status else {
            panic!("partial head {bytes:?}")
        };
        len
    }

    /// Checks that CR and LF appear only as CRLF line ends.
    pub(crate) fn assert_only_crlf(bytes: &[u8]) {
        for (i, &b) in bytes.iter().enumerate() {
            match b {
                b'\r' => assert_eq!(bytes.get(i + 1), Some(&b'\n'), "bare CR at {i}"),
                b'\n' => assert_eq!(bytes.get(i.wrapping_sub(1)), Some(&b'\r'), "bare LF at {i}"),
                _ => {}
            }
        }
    }

    const TCHARS: &[u8] =
        b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

    /// Arbitrary field names (tokens).
    pub(crate) fn name() -> impl Strategy<Value = String> {
        proptest::collection::vec(proptest::sample::select(TCHARS), 1..12)
            .prop_map(|v| String::from_utf8(v).expect("ascii"))
    }

    /// Arbitrary trimmed field values (HTAB, SP, VCHAR, obs-text).
    pub(crate) fn value() -> impl Strategy<Value = Vec<u8>> {
        let byte = prop_oneof![Just(b'\t'), 0x20u8..=0x7e, 0x80u8..=0xff];
        proptest::collection::vec(byte, 0..24).prop_map(|v| trim_ows(&v).to_vec())
    }

    /// Arbitrary field lists.
    pub(crate) fn field_list() -> impl Strategy<Value = Headers> {
        proptest::collection::vec((name(), value()), 0..12).prop_map(Headers::from_pairs)
    }

    fn eval(template: &str, req: &RequestHead, client: &ClientInfo, upgrading: bool) -> String {
        let config = Config {
            upstream_authority: "backend:8080".to_owned(),
            ..Config::default()
        };
        let ctx = RuleContext {
            request: req,
            client,
            config: &config,
            upgrading,
        };
        let rule = HeaderRule::set("X-Test", template).expect("valid template");
        String::from_utf8(rule.evaluate(&ctx)).expect("utf-8")
    }

    macro_rules! variable_cases {
        ($($test:ident: $template:expr => $expected:expr;)*) => {$(
            #[test]
            fn $test() {
                let req = request(
                    "http://WWW.Example.COM:8443/a/b?x=1&y=2",
                    "/a/b?x=1&y=2",
                    Some("WWW.Example.COM:8443"),
                    &[
                        ("Host", "www.example.com:8443"),
                        ("X-Forwarded-For", "10.0.0.1"),
                        ("x-forwarded-for", "10.0.0.2"),
                        ("X-Custom-Thing", "one"),
                        ("X-Custom-Thing", "two"),
                        ("X_Under", "u"),
                    ],
                );
                let client = ClientInfo {
                    addr: Some("192.0.2.7:51234".parse().expect("addr")),
                    secure: true,
                };
                assert_eq!(eval($template, &req, &client, true), $expected);
            }
        )*};
    }

    variable_cases! {
        remote_addr_is_the_client_ip: "$remote_addr" => "192.0.2.7";
        remote_port_is_the_client_port: "$remote_port" => "51234";
        host_is_lower_cased_without_port: "$host" => "www.example.com";
        http_host_is_the_raw_host_field: "$http_host" => "www.example.com:8443";
        scheme_follows_tls: "$scheme" => "https";
        request_method_is_the_method: "$request_method" => "GET";
        request_uri_is_the_target_as_received: "$request_uri" => "http://WWW.Example.COM:8443/a/b?x=1&y=2";
        uri_is_the_path_without_query: "$uri" => "/a/b";
        args_is_the_query_without_question_mark: "$args" => "x=1&y=2";
        server_protocol_is_the_client_version: "$server_protocol" => "HTTP/1.1";
        proxy_host_is_the_upstream_authority: "$proxy_host" => "backend:8080";
        proxy_add_xff_appends_the_client_ip: "$proxy_add_x_forwarded_for" => "10.0.0.1, 10.0.0.2, 192.0.2.7";
        connection_upgrade_says_upgrade_when_upgrading: "$connection_upgrade" => "upgrade";
        http_var_joins_every_matching_field: "$http_x_custom_thing" => "one, two";
        http_var_is_case_insensitive: "$HTTP_X_CUSTOM_THING" => "one, two";
        http_var_matches_underscore_names_too: "$http_x_under" => "u";
        http_var_of_an_absent_field_is_empty: "[$http_x_absent]" => "[]";
        braces_delimit_a_variable: "${scheme}x://${host}${uri}" => "httpsx://www.example.com/a/b";
        a_variable_ends_at_the_first_non_name_byte: "$host:$remote_port/" => "www.example.com:51234/";
        literal_text_is_kept_verbatim: "a b\tc é" => "a b\tc é";
    }

    #[test]
    fn variables_without_an_address_or_query_are_empty() {
        let req = request("/p", "/p", None, &[]);
        let client = ClientInfo::default();
        assert_eq!(
            eval(
                "[$remote_addr][$remote_port][$args][$host]",
                &req,
                &client,
                false
            ),
            "[][][][]"
        );
        assert_eq!(
            eval("$scheme $connection_upgrade", &req, &client, false),
            "http close"
        );
        assert_eq!(eval("$proxy_add_x_forwarded_for", &req, &client, false), "");
    }

    #[test]
    fn proxy_add_xff_without_client_xff_is_the_ip_alone() {
        let req = request("/", "/", Some("a"), &[("Host", "a")]);
        let client = ClientInfo {
            addr: Some("[2001:db8::1]:80".parse().expect("addr")),
            secure: false,
        };
        assert_eq!(
            eval("$proxy_add_x_forwarded_for", &req, &client, false),
            "2001:db8::1"
        );
    }

    #[test]
    fn host_keeps_ipv6_brackets_and_strips_the_port() {
        assert_eq!(strip_port(b"[::1]:8080"), b"[::1]");
        assert_eq!(strip_port(b"[::1]"), b"[::1]");
        assert_eq!(strip_port(b"a.example:80"), b"a.example");
        assert_eq!(strip_port(b"a.example"), b"a.example");
        assert_eq!(strip_port(b"[::1"), b"[::1");
    }

    #[test]
    fn a_value_holding_a_control_byte_evaluates_empty() {
        // Cannot come from a validated head; built by hand to test the defence in depth.
        let req = request(
            "/",
            "/",
            Some("a"),
            &[("X-Evil", "a\r\nInjected: 1"), ("X-Nul", "a\0b")],
        );
        let client = ClientInfo::default();
        assert_eq!(eval("x $http_x_evil", &req, &client, false), "");
        assert_eq!(eval("$http_x_nul", &req, &client, false), "");
        assert_eq!(eval("  \t ", &req, &client, false), "");
    }

    macro_rules! creation_errors {
        ($($test:ident: ($action:expr, $name:expr, $template:expr) => $expected:expr;)*) => {$(
            #[test]
            fn $test() {
                assert_eq!(HeaderRule::new($action, $name, $template), Err($expected));
            }
        )*};
    }

    use HeaderAction::{Add, Remove, Set};
    creation_errors! {
        rejects_an_empty_name: (Set, "", "x") => RuleError::InvalidName;
        rejects_a_name_with_a_space: (Set, "X Foo", "x") => RuleError::InvalidName;
        rejects_a_name_with_a_colon: (Add, "X-Foo:", "x") => RuleError::InvalidName;
        rejects_content_length: (Set, "Content-Length", "0") => RuleError::ProtectedName;
        rejects_transfer_encoding: (Add, "transfer-encoding", "chunked") => RuleError::ProtectedName;
        rejects_connection: (Set, "Connection", "$connection_upgrade") => RuleError::ProtectedName;
        rejects_upgrade: (Set, "Upgrade", "$http_upgrade") => RuleError::ProtectedName;
        rejects_keep_alive: (Remove, "Keep-Alive", "") => RuleError::ProtectedName;
        rejects_proxy_connection: (Set, "Proxy-Connection", "x") => RuleError::ProtectedName;
        rejects_te: (Set, "TE", "trailers") => RuleError::ProtectedName;
        rejects_trailer: (Add, "Trailer", "x") => RuleError::ProtectedName;
        rejects_adding_a_second_host: (Add, "Host", "x") => RuleError::HostNotSettable;
        rejects_removing_host: (Remove, "host", "") => RuleError::HostNotSettable;
        rejects_cr_in_literal_text: (Set, "X-A", "a\rb") => RuleError::ForbiddenByte;
        rejects_lf_in_literal_text: (Set, "X-A", "a\nInjected: 1") => RuleError::ForbiddenByte;
        rejects_nul_in_literal_text: (Set, "X-A", "a\0") => RuleError::ForbiddenByte;
        rejects_del_in_literal_text: (Set, "X-A", "a\x7f") => RuleError::ForbiddenByte;
        rejects_a_lone_dollar: (Set, "X-A", "cost $") => RuleError::MalformedTemplate;
        rejects_a_double_dollar: (Set, "X-A", "$$host") => RuleError::MalformedTemplate;
        rejects_an_unclosed_brace: (Set, "X-A", "${host") => RuleError::MalformedTemplate;
        rejects_an_empty_brace: (Set, "X-A", "${}") => RuleError::MalformedTemplate;
        rejects_a_brace_with_a_dash: (Set, "X-A", "${http_x-a}") => RuleError::MalformedTemplate;
        rejects_an_unknown_variable: (Set, "X-A", "$remote_adr") => RuleError::UnknownVariable("remote_adr".into());
        rejects_a_bare_http_prefix: (Set, "X-A", "$http_") => RuleError::UnknownVariable("http_".into());
        validates_the_ignored_template_of_remove: (Remove, "X-A", "$nope") => RuleError::UnknownVariable("nope".into());
    }

    #[test]
    fn accepts_the_usual_nginx_rules() {
        for (name, template) in [
            ("Host", "$host"),
            ("X-Real-IP", "$remote_addr"),
            ("X-Forwarded-For", "$proxy_add_x_forwarded_for"),
            ("X-Forwarded-Proto", "$scheme"),
            ("X-Original-URI", "$request_uri"),
            ("Expect", ""),
        ] {
            let rule = HeaderRule::set(name, template).expect(name);
            assert_eq!(
                (rule.name(), rule.template(), rule.action()),
                (name, template, Set)
            );
        }
        assert!(HeaderRule::remove("Cookie").is_ok());
    }

    #[test]
    fn rule_errors_display_a_sentence() {
        let e = HeaderRule::set("X-A", "$nope").expect_err("unknown");
        assert_eq!(e.to_string(), "header rule: unknown variable $nope");
    }

    proptest! {
        #[test]
        fn any_template_is_accepted_or_refused_without_panicking(template in "\\PC{0,40}|[$a-z_{}\r\n ]{0,40}") {
            let _ = HeaderRule::set("X-A", &template);
        }

        #[test]
        fn evaluated_values_never_hold_control_bytes(
            headers in field_list(),
            literal in "[ -~]{0,10}",
            var in "[a-z0-9_]{1,12}",
        ) {
            let mut req = request("/a?b", "/a?b", Some("h"), &[]);
            req.headers = headers;
            let Ok(rule) = HeaderRule::add("X-A", &format!("{}${{{var}}}", literal.replace('$', ""))) else {
                return Ok(());
            };
            let (client, config) = (ClientInfo::default(), Config::default());
            let ctx = RuleContext { request: &req, client: &client, config: &config, upgrading: false };
            let value = rule.evaluate(&ctx);
            prop_assert!(!value.iter().any(|&b| is_forbidden(b)));
        }
    }
}
