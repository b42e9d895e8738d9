//! The bytes the benches feed the core.
//!
//! The upgrade request is what Chrome (124, Linux) sends for `new WebSocket(...)`, field for field
//! and in Chrome's order: a benchmark of header processing is only as honest as its headers, and
//! a browser's head is larger and more varied than the RFC examples. The other heads are typical
//! of their kind (a browser GET, a `curl` chunked upload, a Node.js `ws` 101).

/// Chrome's WebSocket upgrade request (527 bytes).
pub const CHROME_WS_REQUEST: &[u8] = b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n\
Host: example.com:8080\r\n\
Connection: Upgrade\r\n\
Pragma: no-cache\r\n\
Cache-Control: no-cache\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36\r\n\
Upgrade: websocket\r\n\
Origin: http://example.com:8080\r\n\
Sec-WebSocket-Version: 13\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Accept-Language: en-US,en;q=0.9\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
\r\n";

/// The 101 a Node.js `ws` server answers [`CHROME_WS_REQUEST`] with.
pub const WS_101: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\n\
Upgrade: websocket\r\n\
Connection: Upgrade\r\n\
Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=15\r\n\
\r\n";

/// A browser's keep-alive GET for a small JSON resource.
pub const BROWSER_GET: &[u8] = b"GET /api/status?id=42 HTTP/1.1\r\n\
Host: example.com:8080\r\n\
Connection: keep-alive\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36\r\n\
Accept: application/json, text/plain, */*\r\n\
Sec-Fetch-Site: same-origin\r\n\
Sec-Fetch-Mode: cors\r\n\
Sec-Fetch-Dest: empty\r\n\
Referer: http://example.com:8080/\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Accept-Language: en-US,en;q=0.9\r\n\
\r\n";

/// Length of the body of [`response_200`] in the benches.
pub const SMALL_BODY_LEN: usize = 512;

/// A `200 OK` head with `Content-Length: body_len`, followed by `body_len` bytes of body.
pub fn response_200(body_len: usize) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 200 OK\r\n\
Server: nginx/1.24.0\r\n\
Date: Mon, 03 Jun 2024 10:00:00 GMT\r\n\
Content-Type: application/json\r\n\
Content-Length: {body_len}\r\n\
Connection: keep-alive\r\n\
Cache-Control: no-cache\r\n\
\r\n"
    )
    .into_bytes();
    out.resize(out.len() + body_len, b'x');
    out
}

/// The head of a `curl -T - -H 'Transfer-Encoding: chunked'` upload.
pub const CHUNKED_POST_HEAD: &[u8] = b"POST /api/upload HTTP/1.1\r\n\
Host: example.com:8080\r\n\
User-Agent: curl/8.5.0\r\n\
Accept: */*\r\n\
Content-Type: application/octet-stream\r\n\
Transfer-Encoding: chunked\r\n\
\r\n";

/// A chunked body of `data_len` data bytes cut in chunks of `chunk_size` (the last one may be
/// shorter), ended by the last chunk and an empty trailer section.
///
/// `chunk_size` 0 is treated as 1 (a zero-size chunk would end the body).
pub fn chunked_body(data_len: usize, chunk_size: usize) -> Vec<u8> {
    let chunk_size = chunk_size.max(1);
    let mut out = Vec::with_capacity(data_len + data_len / chunk_size * 8 + 8);
    let mut left = data_len;
    while left > 0 {
        let n = left.min(chunk_size);
        out.extend_from_slice(format!("{n:x}\r\n").as_bytes());
        // Varied data, so nothing could be special-cased on a constant byte.
        out.extend((0..n).map(|i| b'a' + (i % 26) as u8));
        out.extend_from_slice(b"\r\n");
        left -= n;
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// A chunked POST: [`CHUNKED_POST_HEAD`] followed by [`chunked_body`]`(data_len, chunk_size)`.
pub fn chunked_post(data_len: usize, chunk_size: usize) -> Vec<u8> {
    let mut out = CHUNKED_POST_HEAD.to_vec();
    out.extend_from_slice(&chunked_body(data_len, chunk_size));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parses_as_request(bytes: &[u8]) -> usize {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(bytes) {
            Ok(httparse::Status::Complete(n)) => n,
            other => panic!("not a complete request head: {other:?}"),
        }
    }

    #[test]
    fn the_upgrade_request_is_chrome_sized_and_complete() {
        assert_eq!(CHROME_WS_REQUEST.len(), 527);
        assert_eq!(
            parses_as_request(CHROME_WS_REQUEST),
            CHROME_WS_REQUEST.len()
        );
        assert_eq!(parses_as_request(BROWSER_GET), BROWSER_GET.len());
        assert_eq!(
            parses_as_request(CHUNKED_POST_HEAD),
            CHUNKED_POST_HEAD.len()
        );
    }

    #[test]
    fn chunked_body_frames_every_byte() {
        assert_eq!(
            chunked_body(5, 2),
            b"2\r\nab\r\n2\r\nab\r\n1\r\na\r\n0\r\n\r\n"
        );
        assert_eq!(chunked_body(0, 16), b"0\r\n\r\n");
        assert_eq!(chunked_body(3, 0).len(), 3 * 6 + 5);
    }

    #[test]
    fn response_has_the_announced_body() {
        let response = response_200(7);
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut parsed = httparse::Response::new(&mut headers);
        let Ok(httparse::Status::Complete(head)) = parsed.parse(&response) else {
            panic!("incomplete response head");
        };
        assert_eq!(response.len() - head, 7);
    }
}
