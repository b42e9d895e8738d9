//! Tunnels through the proxy: the 101, byte-exact echo, early data, half-close.

mod support;

use std::io::Write;
use std::net::Shutdown;

use support::*;

#[test]
fn one_mebibyte_of_random_bytes_echoes_byte_exact_with_random_write_sizes() {
    let upstream = Upstream::start();
    let handle = proxy(&[upstream.addr]);
    let (stream, rest) = open_tunnel(handle.local_addr(), "/echo", b"");
    assert!(rest.is_empty());
    let data = Rng::new(7).bytes(1 << 20);
    let echoed = echo_through(&stream, &data, 11);
    assert!(echoed == data, "the echo differs from what was sent");
    drop(stream);
    assert_sessions_end(&handle);
    handle.shutdown();
}

#[test]
fn early_data_both_ways_arrives_in_order() {
    let upstream = Upstream::start();
    let handle = proxy(&[upstream.addr]);
    // The client's bytes ride with its request head (held until the 101); the upstream's ride
    // with the 101.
    let (mut stream, mut got) = open_tunnel(handle.local_addr(), "/greet", b"early-client-bytes");
    let want = b"early-upstream-bytes".len() + b"early-client-bytes".len();
    got.extend(read_exact(&mut stream, want - got.len().min(want)));
    assert_eq!(got, b"early-upstream-bytesearly-client-bytes");
    drop(stream);
    assert_sessions_end(&handle);
}

#[test]
fn the_client_half_closes_and_still_receives() {
    let upstream = Upstream::start();
    let handle = proxy(&[upstream.addr]);
    let (mut stream, rest) = open_tunnel(handle.local_addr(), "/bye", b"");
    stream.write_all(b"ping").unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    // The upstream writes BYE only after it saw our EOF: the FIN went through, the other
    // direction kept flowing, then the upstream's FIN came back.
    let mut got = rest;
    got.extend(read_to_eof(&mut stream));
    assert_eq!(got, b"pingBYE");
    assert_sessions_end(&handle);
}

#[test]
fn the_upstream_half_closes_and_still_receives() {
    let upstream = Upstream::start();
    let handle = proxy(&[upstream.addr]);
    let (mut stream, rest) = open_tunnel(handle.local_addr(), "/close-first", b"");
    let mut got = rest;
    got.extend(read_to_eof(&mut stream));
    assert_eq!(got, b"bye", "the upstream's FIN reaches the client");
    stream.write_all(b"after-their-fin").unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    assert!(
        wait_until(std::time::Duration::from_secs(10), || {
            *upstream.stats.after_fin.lock().unwrap() == b"after-their-fin"
        }),
        "the upstream got {:?}",
        String::from_utf8_lossy(&upstream.stats.after_fin.lock().unwrap())
    );
    assert_sessions_end(&handle);
    assert!(wait_until(std::time::Duration::from_secs(10), || upstream
        .live()
        == 0));
}

#[test]
fn many_tunnels_at_once_stay_apart() {
    let upstream = Upstream::start();
    let handle = proxy(&[upstream.addr]);
    let threads: Vec<_> = (0..8u64)
        .map(|i| {
            let addr = handle.local_addr();
            std::thread::spawn(move || {
                let (stream, _) = open_tunnel(addr, "/echo", b"");
                let data = Rng::new(100 + i).bytes(128 * 1024);
                assert!(
                    echo_through(&stream, &data, i) == data,
                    "tunnel {i} mixed up"
                );
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_sessions_end(&handle);
}
