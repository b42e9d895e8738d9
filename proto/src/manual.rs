//! # The manual: where Switchyard follows nginx, where it differs, and why
//!
//! This module has no code. It records the behavioural decisions of the core against nginx's
//! `ngx_http_upstream_upgrade` (read from nginx 1.31.x source) and the peers (HAProxy, Caddy,
//! Pingora, hyper, h11), so that a user replacing nginx knows exactly what changes.
//!
//! ## Followed exactly
//!
//! | behaviour | nginx | Switchyard |
//! |---|---|---|
//! | Bytes the upstream sent after the 101 head in the same read | sent to the client right after the head, before anything read later | same |
//! | Bytes the client sent after its request head | held; sent upstream first once the tunnel is up; never before the 101 | same |
//! | Tunnel bytes | in order, unmodified, no filters | same |
//! | One bounded buffer per direction, backpressure by not reading | `proxy_buffer_size` | `Limits::buffer_size` (16 KiB), exposed as a read window |
//! | The client connection after a tunnel | never reused | same |
//! | Upstream connection after any 101 | never pooled | same |
//! | Request line sent upstream | `METHOD target HTTP/1.1`, `Host` first | same |
//! | `Connection`, `Keep-Alive`, `Proxy-Connection`, `TE`, `Expect`, `Upgrade`, `Transfer-Encoding`, `Content-Length` from the client | never forwarded verbatim; framing regenerated | same |
//! | `proxy_set_header` with an empty value | sends no field and suppresses the client's | same ([`rules`](crate::rules)) |
//! | 101 head to the client | `HTTP/1.1 101 <upstream reason>`, `Connection: upgrade`, upstream fields in order | same |
//! | Duplicate `Content-Length` (even identical), CL not digits, CL+TE, TE on HTTP/1.0, obs-fold, space before colon, NUL in a value, bare CR, duplicate or missing Host | 400 | 400 |
//! | `Transfer-Encoding` other than `chunked` | 501 | 501 (400 when `chunked` is present but not final) |
//! | `HTTP/2.0` in an HTTP/1 request line | 505 | 505 |
//! | Request line over 8 KiB | 414 | 414 |
//! | Header fields with `_` in their names | dropped (`underscores_in_headers off`) | dropped (configurable) |
//! | `CONNECT`, `TRACE` | 405 | 405 |
//! | Upstream head invalid, duplicate/invalid CL, CL+TE, TE ≠ chunked | 502 | 502 |
//! | Upstream head timeout, connect timeout | 504 | 504 |
//! | Connect error, upstream closed before a complete head | 502 | 502 |
//! | Chunked request bodies | de-chunked, extensions and trailers dropped | re-chunked canonically, extensions and trailers dropped |
//! | `Expect: 100-continue` | proxy sends its own `100 Continue`, strips `Expect` | same |
//! | Client header timeout | 60 s, armed once (slow bytes do not extend it) | same |
//! | Lingering close after the last response | 5 s | same (`Timeouts::linger`) |
//!
//! ## Deliberately different (nginx is weak here)
//!
//! | behaviour | nginx | Switchyard | why |
//! |---|---|---|---|
//! | `Upgrade`/`Connection` to the upstream | stripped unless you configure `proxy_set_header Upgrade $http_upgrade` + a `map` | sent automatically for an accepted offer | the most common WebSocket misconfiguration |
//! | When is a 101 tunnelled | any 101 if the client sent any `Upgrade` field | only a 101 on HTTP/1.1 whose single `Upgrade` token is one the client offered, to an HTTP/1.1 request with `Connection: upgrade` whose token is allow-listed (`websocket` needs `GET`) | websocket smuggling (0ang3el scenario 2), h2c smuggling, CVE-2026-2833 class |
//! | A 101 that fails those checks | tunnelled (or relayed as a response) | 502 and close | the upstream cannot open a tunnel the client did not ask for |
//! | `Upgrade: h2c` | forwarded if configured; tunnelled on a 101 | stripped; the request proceeds as ordinary HTTP | Go #80416, HAProxy, Envoy do the same |
//! | Tokens other than `websocket` | any | allow-list (`Config::upgrade_protocols`) | TLS/1.0 upgrade desync (CVE-2025-49812) |
//! | Strict WebSocket mode | none | optional check of `Sec-WebSocket-Accept` | HAProxy-like strictness when wanted |
//! | A 101 before the request body ended | tunnel | 502 | never reinterpret body bytes as tunnel data (T100) |
//! | Half-close | the first EOF closes both after draining; answers in flight are lost | propagated: FIN → `shutdown(SHUT_WR)` on the other side, the other direction keeps flowing (`HalfClose::CloseBoth` restores nginx's behaviour) | Caddy #8026, Go #35892 |
//! | Both sides EOF with bytes pending | pending bytes dropped | every byte is delivered first | "never a byte silently dropped" |
//! | Tunnel idle timeout | 60 s `proxy_read_timeout`, silently kills idle WebSockets | 1 hour, reset by traffic in either direction, plus a separate half-closed timeout (60 s) | nginx's most reported WebSocket complaint |
//! | 101 head flush | not awaited (tunnel bytes could overtake it) | one ordered queue per peer: the head always goes first | nginx quirk 3 |
//! | Client FIN while waiting for the 101 or the response | 499, upstream closed | the response is still delivered (if the request was complete) | a half-closing client is legal |
//! | Fields named in `Connection` | forwarded | removed (RFC 9110 §7.6.1), before `X-Forwarded-*` are generated | CVE-2021-33197, CVE-2022-31813 |
//! | `X-Forwarded-For`/`-Proto`/`-Host` | only by configuration | built in; a client's XFF is kept only from trusted proxies | spoofing |
//! | Too many / too large header fields | 400 ("Request Header Or Cookie Too Large") | 431 | RFC 6585 |
//! | Header limits | 1000 fields | 100 fields, 32 KiB head | bounded memory per connection |
//! | Chunk size line with whitespace, bare `;`, LF endings | partly accepted | 400 | strict grammar (Http11Probe expectations) |
//! | Absolute-form target | forwarded with `Host` regenerated | origin-form upstream, authority becomes `Host` (RFC 9112 §3.2.2) | — |
//! | `#` in a request target | accepted | 400 | CVE-2023-45539 class |
//! | HTTP/0.9 request lines | served | 400 | desync risk |
//! | `Server`/`Date` of the upstream | hidden, replaced by nginx's | passed through unmodified | a proxy should not rewrite end-to-end metadata |
//! | 1xx to HTTP/1.0 clients | — | never sent (RFC 9110 §15.2) | — |
