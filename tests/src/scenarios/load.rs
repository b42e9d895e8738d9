//! Many sessions at once.

use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::thread;
use std::time::Instant;

use crate::harness::{Proxy, ProxyUnderTest, Setup};
use crate::peers::raw;
use crate::peers::Upstream;

/// Concurrent tunnels in [`thousand_concurrent_tunnels`].
const TUNNELS: usize = 1000;
/// Client threads opening them.
const OPENERS: usize = 4;

/// 1,000 tunnels open at the same time, each carrying its own bytes; afterwards every session
/// ends and no file descriptor is left behind.
pub fn thousand_concurrent_tunnels<P: ProxyUnderTest>() {
    let upstream = Upstream::spawn(raw::echo_tunnel);
    let proxy = Proxy::start_isolated::<P>(&Setup::new(upstream.addr()));
    // Warm up (a runtime may open descriptors on first use), then take the baseline.
    let mut first = proxy.connect();
    assert_eq!(raw::upgrade(&mut first, "", b"").0.status, 101);
    drop(first);
    proxy.assert_no_sessions("after the warm-up tunnel");
    let baseline = proxy.open_fds();
    let addr = proxy.addr();
    let started = Instant::now();

    // Open them from a few threads (each connection: handshake, then the next).
    let openers: Vec<_> = (0..OPENERS)
        .map(|t| {
            thread::spawn(move || {
                (0..TUNNELS / OPENERS)
                    .map(|i| {
                        let mut client = TcpStream::connect(addr).expect("connect");
                        client
                            .set_read_timeout(Some(crate::harness::PATIENCE))
                            .unwrap();
                        let (head, rest) = raw::upgrade(&mut client, "", b"");
                        assert_eq!(head.status, 101, "tunnel {t}/{i}");
                        assert!(rest.is_empty());
                        client
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut clients: Vec<TcpStream> = openers
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    assert_eq!(clients.len(), TUNNELS);
    eprintln!(
        "{}: {TUNNELS} tunnels opened in {:?}",
        proxy.name(),
        started.elapsed()
    );
    if let Some(open) = proxy.open_sessions() {
        assert_eq!(open, TUNNELS, "sessions open while every tunnel is up");
    }

    // Every tunnel carries its own message while all are open.
    for (i, client) in clients.iter_mut().enumerate() {
        client
            .write_all(format!("tunnel {i:04}").as_bytes())
            .unwrap();
    }
    for (i, client) in clients.iter_mut().enumerate() {
        let echo = raw::read_exact_n(client, 11, "echo");
        assert_eq!(
            echo,
            format!("tunnel {i:04}").as_bytes(),
            "tunnel {i} got another tunnel's bytes"
        );
    }

    // Half of them close politely (FIN), half abruptly (drop).
    for (i, client) in clients.iter().enumerate() {
        if i % 2 == 0 {
            client.shutdown(Shutdown::Write).unwrap();
        }
    }
    for (i, client) in clients.iter_mut().enumerate() {
        if i % 2 == 0 {
            assert!(
                raw::closed_by_peer(client),
                "tunnel {i} did not end after both EOFs"
            );
        }
    }
    drop(clients);
    proxy.assert_settles(baseline, "after 1,000 tunnels closed");
}
