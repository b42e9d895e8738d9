//! Bench 3: tunnel relay through an established `Session`, 16 KiB reads, both directions.
//!
//! One iteration is one 16 KiB read from the client relayed to the upstream and one from the
//! upstream relayed to the client, through the zero-copy path (`read_buf` + `handle_read`, then
//! `transmit` + `handle_written`); throughput counts both (32 KiB per iteration). Target:
//! >= 5 GB/s per core.
//!
//! `proto_only` leaves the bytes as `read_buf` handed them out: it measures the core alone.
//! `with_read_copy` also copies 16 KiB into the buffer, standing in for the copy `read(2)` does
//! in the kernel, to show what the core's share of a real relay is.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use criterion::{Criterion, Throughput};
use switchyard_benches::driver::{handshake, ReadPath};
use switchyard_proto::{Config, Side};

const CHUNK: usize = 16 * 1024;

fn relay(c: &mut Criterion) {
    let config = Arc::new(Config::default());
    let payload: Vec<u8> = (0..CHUNK).map(|i| (i % 251) as u8).collect();
    let mut group = c.benchmark_group("tunnel_relay_16k");
    group.throughput(Throughput::Bytes(2 * CHUNK as u64));

    for (name, fill) in [("proto_only", None), ("with_read_copy", Some(&payload[..]))] {
        group.bench_function(name, |b| {
            let mut driver = handshake(&config, Instant::now(), ReadPath::ZeroCopy);
            driver.warm_up();
            assert!(driver.session.is_tunnel());
            b.iter(|| {
                let up = driver.relay(Side::Client, CHUNK, fill);
                let down = driver.relay(Side::Upstream, CHUNK, fill);
                assert_eq!(up + down, 2 * CHUNK, "a full 16 KiB each way");
                black_box(up + down)
            });
        });
    }
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    relay(&mut c);
    c.final_summary();
}
