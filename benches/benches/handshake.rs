//! Bench 2: a whole upgrade handshake through a `Session`, beside bare httparse of its two heads.
//!
//! One iteration is one session: `Session::new`, the Chrome upgrade request in, `Connect`
//! answered, the rewritten request written upstream, the 101 in, the client's 101 written, every
//! event drained (see `switchyard_benches::driver`). The session is dropped in the iteration
//! too. `session_zero_copy` feeds reads through `read_buf` + `handle_read` (what a real driver
//! does), `session_copying` through `handle_data`. The baseline, `httparse_both`, parses the
//! request and the 101 once each. Target: the zero-copy session within 3x of the baseline; the
//! ratio is printed at the end of the run.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use criterion::{Criterion, Throughput};
use switchyard_benches::driver::{handshake, ReadPath};
use switchyard_benches::fixtures::{CHROME_WS_REQUEST, WS_101};
use switchyard_benches::report;
use switchyard_proto::Config;

const GROUP: &str = "ws_handshake";

fn upgrade_handshake(c: &mut Criterion) {
    let config = Arc::new(Config::default());
    let now = Instant::now();
    let mut group = c.benchmark_group(GROUP);
    group.throughput(Throughput::Bytes(
        (CHROME_WS_REQUEST.len() + WS_101.len()) as u64,
    ));

    for (name, path) in [
        ("session_zero_copy", ReadPath::ZeroCopy),
        ("session_copying", ReadPath::Copying),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let driver = handshake(&config, now, path);
                assert!(driver.tunnelled, "the handshake opened a tunnel");
                black_box(driver)
            });
        });
    }

    group.bench_function("httparse_both", |b| {
        b.iter(|| {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut request = httparse::Request::new(&mut headers);
            let req = request.parse(black_box(CHROME_WS_REQUEST)).expect("valid");
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut response = httparse::Response::new(&mut headers);
            let resp = response.parse(black_box(WS_101)).expect("valid");
            assert!(req.is_complete() && resp.is_complete());
            black_box((request.headers.len(), response.code));
        });
    });
    group.finish();
}

fn main() {
    let started = SystemTime::now();
    let mut c = Criterion::default().configure_from_args();
    upgrade_handshake(&mut c);
    c.final_summary();
    report::print_ratio(
        GROUP,
        "session_zero_copy",
        "httparse_both",
        Some(3.0),
        started,
    );
    report::print_ratio(
        GROUP,
        "session_copying",
        "httparse_both",
        Some(3.0),
        started,
    );
}
