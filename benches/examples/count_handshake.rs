//! Runs a fixed number of handshakes and bare httparse parses, for instruction counting:
//!
//! ```text
//! cargo build --release -p switchyard-benches --example count_handshake
//! valgrind --tool=callgrind target/release/examples/count_handshake session 10000
//! valgrind --tool=callgrind target/release/examples/count_handshake httparse 10000
//! ```
//!
//! The ratio of the two totals (minus a run with 0 iterations, the process's fixed cost) is the
//! handshake's cost in units of bare httparse, independent of machine load.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use switchyard_benches::driver::{handshake, ReadPath};
use switchyard_benches::fixtures::{CHROME_WS_REQUEST, WS_101};
use switchyard_proto::Config;

fn main() {
    let mut args = std::env::args().skip(1);
    let what = args.next().unwrap_or_else(|| "session".to_owned());
    let n: u32 = args.next().and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let config = Arc::new(Config::default());
    let now = Instant::now();
    for _ in 0..n {
        if what == "session" {
            let driver = handshake(&config, now, ReadPath::ZeroCopy);
            assert!(driver.tunnelled);
            black_box(driver);
        } else {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut request = httparse::Request::new(&mut headers);
            let req = request.parse(black_box(CHROME_WS_REQUEST)).expect("valid");
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut response = httparse::Response::new(&mut headers);
            let resp = response.parse(black_box(WS_101)).expect("valid");
            assert!(req.is_complete() && resp.is_complete());
            black_box((request.headers.len(), response.code));
        }
    }
}
