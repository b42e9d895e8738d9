//! Invariants over arbitrary inputs: split invariance, no injected CR/LF, exact tunnels.

mod support;

use proptest::prelude::*;
use support::*;
use switchyard_proto::Config;

/// Runs a whole upgrade scenario with reads of `read_chunk` and writes of `write_chunk` bytes.
fn run_upgrade(
    read_chunk: usize,
    write_chunk: usize,
    c2u: &[u8],
    u2c: &[u8],
) -> (Vec<u8>, Vec<u8>) {
    let mut h = Harness::default_config();
    h.read_chunk = read_chunk;
    h.write_chunk = Some(write_chunk);
    let mut first = WS_REQUEST.to_vec();
    first.extend_from_slice(MASKED_FRAME);
    h.client_sends(&first);
    let mut answer = WS_101.to_vec();
    answer.extend_from_slice(b"\x81\x05Hello");
    h.upstream_sends(&answer);
    h.client_sends(c2u);
    h.upstream_sends(u2c);
    h.client_fin();
    h.upstream_fin();
    assert!(h.closed().is_some());
    (h.take_client(), h.take_upstream())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn any_split_of_reads_and_writes_gives_the_same_bytes(
        read_chunk in 1usize..200,
        write_chunk in 1usize..200,
        c2u in proptest::collection::vec(any::<u8>(), 0..3000),
        u2c in proptest::collection::vec(any::<u8>(), 0..3000),
    ) {
        let whole = run_upgrade(usize::MAX, usize::MAX, &c2u, &u2c);
        let split = run_upgrade(read_chunk, write_chunk, &c2u, &u2c);
        prop_assert_eq!(&whole, &split);
        // And the tunnel carried exactly what was fed, in order.
        let (to_client, to_upstream) = whole;
        let mut expected_up = MASKED_FRAME.to_vec();
        expected_up.extend_from_slice(&c2u);
        prop_assert_eq!(split_head(&to_upstream).1, &expected_up[..]);
        let mut expected_client = b"\x81\x05Hello".to_vec();
        expected_client.extend_from_slice(&u2c);
        prop_assert_eq!(split_head(&to_client).1, &expected_client[..]);
    }

    #[test]
    fn arbitrary_client_bytes_never_panic_and_never_inject_a_line(
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
        chunk in 1usize..64,
    ) {
        let mut h = Harness::default_config();
        h.read_chunk = chunk;
        h.client_sends(&bytes);
        h.client_fin();
        let up = h.take_upstream();
        if !up.is_empty() {
            let mut headers = [httparse::EMPTY_HEADER; 128];
            let mut req = httparse::Request::new(&mut headers);
            let status = req.parse(&up);
            prop_assert!(matches!(status, Ok(httparse::Status::Complete(_))), "upstream head must parse");
        }
    }

    #[test]
    fn header_values_cannot_smuggle_lines_into_the_upstream_request(
        value in proptest::collection::vec(any::<u8>(), 0..80),
    ) {
        let mut request = b"GET / HTTP/1.1\r\nHost: a\r\nX-Test: ".to_vec();
        request.extend_from_slice(&value);
        request.extend_from_slice(b"\r\n\r\n");
        let mut h = Harness::default_config();
        h.client_sends(&request);
        let up = h.take_upstream();
        if !up.is_empty() {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut req = httparse::Request::new(&mut headers);
            let parsed = req.parse(&up);
            prop_assert!(matches!(parsed, Ok(httparse::Status::Complete(n)) if n == up.len()));
            let names: Vec<String> = req.headers.iter().map(|h| h.name.to_ascii_lowercase()).collect();
            prop_assert_eq!(names.iter().filter(|n| *n == "x-test").count(), 1);
            prop_assert_eq!(names.iter().filter(|n| *n == "host").count(), 1);
        }
    }

    #[test]
    fn the_tunnel_is_exact_under_arbitrary_interleavings_and_stalls(
        ops in proptest::collection::vec((0u8..6, proptest::collection::vec(any::<u8>(), 1..2000)), 1..40),
    ) {
        let mut config = Config::default();
        config.limits.buffer_size = 1024;
        let mut h = Harness::new(config);
        h.client_sends(WS_REQUEST);
        h.upstream_sends(WS_101);
        h.take_client();
        h.take_upstream();
        let (mut sent_up, mut sent_client) = (Vec::new(), Vec::new());
        for (op, data) in ops {
            match op {
                0 | 1 => { sent_up.extend_from_slice(&data); h.client_sends(&data); }
                2 | 3 => { sent_client.extend_from_slice(&data); h.upstream_sends(&data); }
                4 => { h.client_stalled = !h.client_stalled; h.pump(); }
                _ => { h.upstream_stalled = !h.upstream_stalled; h.pump(); }
            }
            prop_assert!(h.session.pending(switchyard_proto::Side::Client) <= 1024);
            prop_assert!(h.session.pending(switchyard_proto::Side::Upstream) <= 1024);
        }
        h.client_stalled = false;
        h.upstream_stalled = false;
        h.pump();
        prop_assert_eq!(h.take_upstream(), sent_up);
        prop_assert_eq!(h.take_client(), sent_client);
    }
}
