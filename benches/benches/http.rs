//! Bench 4: plain HTTP through a session, and chunked decoding alone.
//!
//! `http_get` and `http_post_chunked` measure one request each, two ways:
//! - `keep_alive`: on one kept-alive client connection (`max_requests_per_connection` raised so
//!   it never ends) whose upstream connection is reused: the request in, `Connect` answered
//!   from the pool, the upstream request written, the response in, the client's response
//!   written, every event drained;
//! - `new_session`: a whole session per request (`Session::new`, the same exchange with a new
//!   upstream connection, then the client's EOF and `Close`): a client that does not keep alive.
//!
//! The GET is a browser's, answered with a 512-byte `Content-Length` body; the POST is a
//! `curl` chunked upload of 4 x 1 KiB, answered with 16 bytes. Throughput is requests per second.
//!
//! `chunked_decode` runs a `BodyDecoder` over a 64 KiB chunked body already in memory (copying
//! the input into a fresh buffer is setup, not measured), in 4 KiB chunks and in 64-byte chunks
//! (the framing-heavy worst case). Throughput counts the encoded bytes.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use criterion::{BatchSize, Criterion, Throughput};
use switchyard_benches::driver::{exchange, request, Driver};
use switchyard_benches::fixtures::{
    chunked_body, chunked_post, response_200, BROWSER_GET, SMALL_BODY_LEN,
};
use switchyard_proto::body::{BodyChunk, BodyDecoder};
use switchyard_proto::head::BodyFraming;
use switchyard_proto::Config;

fn requests(c: &mut Criterion) {
    let mut config = Config::default();
    config.max_requests_per_connection = u32::MAX;
    let config = Arc::new(config);
    let now = Instant::now();
    let post = chunked_post(4096, 1024);
    let cases = [
        ("http_get", BROWSER_GET, response_200(SMALL_BODY_LEN)),
        ("http_post_chunked", &post[..], response_200(16)),
    ];
    for (name, req, response) in &cases {
        let mut group = c.benchmark_group(*name);
        group.throughput(Throughput::Elements(1));
        group.bench_function("keep_alive", |b| {
            let mut driver = Driver::new(&config, now);
            let expected = request(&mut driver, req, response);
            b.iter(|| {
                let written = request(&mut driver, black_box(req), black_box(response));
                assert_eq!(written, expected, "the whole response reached the client");
            });
            assert!(driver.closed.is_none(), "the connection stayed open");
        });
        group.bench_function("new_session", |b| {
            b.iter(|| {
                let driver = exchange(&config, now, black_box(req), black_box(response));
                assert!(driver
                    .closed
                    .as_ref()
                    .is_some_and(|s| s.status == Some(200)));
                black_box(driver)
            });
        });
        group.finish();
    }
}

fn chunked_decoding(c: &mut Criterion) {
    const DATA: usize = 64 * 1024;
    let max_line = Config::default().limits.max_chunk_line;
    let mut group = c.benchmark_group("chunked_decode");
    for chunk in [4096, 64] {
        let body = chunked_body(DATA, chunk);
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(format!("chunks_{chunk}"), |b| {
            b.iter_batched_ref(
                || BytesMut::from(&body[..]),
                |input| {
                    let mut decoder = BodyDecoder::new(BodyFraming::Chunked, max_line);
                    let mut data = 0;
                    while let Some(item) = decoder.decode(input).expect("valid body") {
                        match item {
                            BodyChunk::Data(bytes) => data += black_box(bytes).len(),
                            BodyChunk::End => break,
                        }
                    }
                    assert_eq!(data, DATA);
                },
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    requests(&mut c);
    chunked_decoding(&mut c);
    c.final_summary();
}
