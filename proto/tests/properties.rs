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

/// One exchange of a keep-alive sequence.
#[derive(Debug, Clone)]
enum Step {
    /// A GET answered with a Content-Length body.
    Get(Vec<u8>),
    /// A chunked POST answered with a chunked body.
    ChunkedPost(Vec<u8>),
}

fn step_strategy() -> impl Strategy<Value = Step> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300).prop_map(Step::Get),
        proptest::collection::vec(any::<u8>(), 1..300).prop_map(Step::ChunkedPost),
    ]
}

/// Runs `steps` then a WebSocket upgrade on one client connection, reads of `read_chunk`.
fn run_sequence(steps: &[Step], read_chunk: usize, write_chunk: usize) -> (Vec<u8>, Vec<u8>) {
    let mut h = Harness::default_config();
    h.read_chunk = read_chunk;
    h.write_chunk = Some(write_chunk);
    for step in steps {
        match step {
            Step::Get(body) => {
                h.client_sends(b"GET /g HTTP/1.1\r\nHost: h\r\n\r\n");
                let mut answer =
                    format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len())
                        .into_bytes();
                answer.extend_from_slice(body);
                h.upstream_sends(&answer);
            }
            Step::ChunkedPost(body) => {
                let mut request =
                    b"POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
                for part in body.chunks(7) {
                    request.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
                    request.extend_from_slice(part);
                    request.extend_from_slice(b"\r\n");
                }
                request.extend_from_slice(b"0\r\n\r\n");
                h.client_sends(&request);
                let mut answer =
                    b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
                answer.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
                answer.extend_from_slice(body);
                answer.extend_from_slice(b"\r\n0\r\n\r\n");
                h.upstream_sends(&answer);
            }
        }
    }
    h.client_sends(WS_REQUEST);
    h.upstream_sends(WS_101);
    h.client_sends(MASKED_FRAME);
    h.upstream_sends(b"\x81\x02hi");
    assert!(h.tunnel_established());
    (h.take_client(), h.take_upstream())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn keep_alive_sequences_ending_in_an_upgrade_are_split_invariant(
        steps in proptest::collection::vec(step_strategy(), 0..6),
        read_chunk in 1usize..64,
        write_chunk in 1usize..64,
    ) {
        let whole = run_sequence(&steps, usize::MAX, usize::MAX);
        let split = run_sequence(&steps, read_chunk, write_chunk);
        prop_assert_eq!(whole, split);
    }

    #[test]
    fn a_pipelined_burst_of_n_requests_gets_n_responses_in_order(n in 1usize..60, read_chunk in 1usize..400) {
        let mut h = Harness::default_config();
        h.read_chunk = read_chunk;
        let mut burst = Vec::new();
        for i in 0..n {
            burst.extend_from_slice(format!("GET /{i} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes());
        }
        h.client_sends(&burst);
        for i in 0..n {
            let up = h.take_upstream();
            let expected = format!("GET /{i} HTTP/1.1\r\n");
            prop_assert!(up.starts_with(expected.as_bytes()));
            let body = i.to_string();
            h.upstream_sends(format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len()).as_bytes());
        }
        let mut rest = &h.take_client()[..];
        for i in 0..n {
            let (head, tail) = split_head(rest);
            let len: usize = field(head, "content-length").unwrap().parse().unwrap();
            let expected = i.to_string();
            prop_assert_eq!(&tail[..len], expected.as_bytes());
            rest = &tail[len..];
        }
        prop_assert!(rest.is_empty());
    }
}
