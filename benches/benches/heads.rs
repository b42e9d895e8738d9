//! Bench 1: one browser WebSocket upgrade request, parsed, validated and rewritten for the
//! upstream by the core's functions, beside a bare `httparse::Request::parse` of the same bytes.
//!
//! `proto/parse_validate_rewrite` is what a session does with a complete head:
//! `parse_request_head` + `client_offer` + `write_upstream_request`. `proto/parse_validate`
//! stops after `parse_request_head`, to show how the cost splits. The ratio of the first to
//! `httparse` is printed at the end of the run.
//!
//! The head is a heap `Bytes` (as in a session, so the field slices cost what they cost there);
//! the output buffer is reused (the session's own allocation is measured by the handshake bench).

use std::hint::black_box;
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput};
use switchyard_benches::driver::client_info;
use switchyard_benches::fixtures::CHROME_WS_REQUEST;
use switchyard_benches::report;
use switchyard_proto::head::request::parse_request_head;
use switchyard_proto::rewrite::write_upstream_request;
use switchyard_proto::upgrade::client_offer;
use switchyard_proto::Config;

const GROUP: &str = "ws_upgrade_request";

fn upgrade_request(c: &mut Criterion) {
    let config = Config::default();
    let client = client_info();
    let head = Bytes::copy_from_slice(CHROME_WS_REQUEST);
    let mut group = c.benchmark_group(GROUP);
    group.throughput(Throughput::Bytes(head.len() as u64));

    group.bench_function("proto_parse_validate_rewrite", |b| {
        let mut out = BytesMut::with_capacity(1024);
        b.iter(|| {
            let request = parse_request_head(black_box(head.clone()), &config).expect("valid head");
            let offer = client_offer(&request, &config);
            assert!(offer.is_some(), "an upgrade offer");
            out.clear();
            write_upstream_request(
                &request,
                offer.as_ref(),
                request.framing,
                &client,
                &config,
                &mut out,
            );
            black_box(&out);
        });
    });

    group.bench_function("proto_parse_validate", |b| {
        b.iter(|| black_box(parse_request_head(black_box(head.clone()), &config).expect("valid")));
    });

    group.bench_function("httparse", |b| {
        b.iter(|| {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut request = httparse::Request::new(&mut headers);
            let status = request
                .parse(black_box(CHROME_WS_REQUEST))
                .expect("valid head");
            assert!(status.is_complete());
            black_box(request.headers.len());
        });
    });
    group.finish();
}

fn main() {
    let started = SystemTime::now();
    let mut c = Criterion::default().configure_from_args();
    upgrade_request(&mut c);
    c.final_summary();
    for bench in ["proto_parse_validate_rewrite", "proto_parse_validate"] {
        report::print_ratio(GROUP, bench, "httparse", None, started);
    }
}
