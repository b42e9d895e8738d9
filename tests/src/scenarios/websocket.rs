//! WebSocket end to end: a tungstenite client, the proxy, a tungstenite server.
//!
//! The proxy knows nothing about frames; these scenarios show that messages, fragmentation,
//! control frames, every close path, the subprotocol and the extension negotiation all survive
//! it unchanged, and that each connection's session ends afterwards.

use std::io::Write;

use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::{Error, Message};

use crate::harness::{Proxy, ProxyUnderTest, Setup};
use crate::peers::raw::{self, read_head};
use crate::peers::ws::{self, next_data, ServerEvent, WsServer, PREFERRED_PROTOCOL};
use crate::peers::Upstream;
use crate::rng::Rng;

/// Text and binary messages are echoed through the proxy.
pub fn text_and_binary<P: ProxyUnderTest>() {
    let server = WsServer::spawn();
    let proxy = Proxy::start::<P>(&Setup::new(server.addr()));
    let (mut client, _) = ws::connect(proxy.addr(), &[]);
    assert_eq!(
        server.next_event(),
        ServerEvent::Connected { offered: None }
    );

    client.send(Message::text("héllo, wörld")).unwrap();
    assert_eq!(next_data(&mut client), Message::text("héllo, wörld"));
    let binary: Vec<u8> = (0..=255u8).collect();
    client.send(Message::binary(binary.clone())).unwrap();
    assert_eq!(next_data(&mut client), Message::binary(binary));
    client.send(Message::text("")).unwrap();
    assert_eq!(next_data(&mut client), Message::text(""));

    client.close(None).unwrap();
    drain_until_closed(client);
    proxy.assert_no_sessions("after a text/binary exchange");
}

/// A 1 MiB binary message (one frame, 64-bit length) is echoed byte for byte.
pub fn large_message<P: ProxyUnderTest>() {
    let server = WsServer::spawn();
    let proxy = Proxy::start::<P>(&Setup::new(server.addr()));
    let (mut client, _) = ws::connect(proxy.addr(), &[]);
    let payload = Rng::new(0x1_0000).bytes(1024 * 1024);
    client.send(Message::binary(payload.clone())).unwrap();
    match next_data(&mut client) {
        Message::Binary(echo) => assert!(echo[..] == payload[..], "1 MiB echo differs"),
        other => panic!("expected the binary echo, got {other:?}"),
    }
    client.close(None).unwrap();
    drain_until_closed(client);
    proxy.assert_no_sessions("after a 1 MiB message");
}

/// Fragmented messages (with a ping between fragments) pass in both directions.
pub fn fragmentation<P: ProxyUnderTest>() {
    let server = WsServer::spawn();
    let proxy = Proxy::start::<P>(&Setup::new(server.addr()));
    let (mut client, _) = ws::connect(proxy.addr(), &[]);

    // Client -> server: three frames with a control frame in the middle (RFC 6455 §5.4).
    use tungstenite::protocol::frame::coding::{Data, OpCode};
    use tungstenite::protocol::frame::Frame;
    let frames = [
        Frame::message(b"Hel".to_vec(), OpCode::Data(Data::Text), false),
        Frame::ping(b"mid".to_vec()),
        Frame::message(b"lo, ".to_vec(), OpCode::Data(Data::Continue), false),
        Frame::message(b"world".to_vec(), OpCode::Data(Data::Continue), true),
    ];
    for frame in frames {
        client.write(Message::Frame(frame)).unwrap();
    }
    client.flush().unwrap();
    let mut pong = false;
    let echoed = loop {
        match client.read().unwrap() {
            Message::Pong(payload) => {
                assert_eq!(&payload[..], b"mid");
                pong = true;
            }
            Message::Ping(_) => {}
            other => break other,
        }
    };
    assert_eq!(echoed, Message::text("Hello, world"));

    // Server -> client: the server fragments.
    client.send(Message::text("frag-me")).unwrap();
    assert_eq!(next_data(&mut client), Message::text("fragmented"));
    if !pong {
        match client.read().unwrap() {
            Message::Pong(payload) => assert_eq!(&payload[..], b"mid"),
            other => panic!("expected the pong to the mid-message ping, got {other:?}"),
        }
    }
    client.close(None).unwrap();
    drain_until_closed(client);
    proxy.assert_no_sessions("after fragmented messages");
}

/// Pings are answered in both directions, payloads intact.
pub fn ping_pong<P: ProxyUnderTest>() {
    let server = WsServer::spawn();
    let proxy = Proxy::start::<P>(&Setup::new(server.addr()));
    let (mut client, _) = ws::connect(proxy.addr(), &[]);
    assert!(matches!(server.next_event(), ServerEvent::Connected { .. }));

    client
        .send(Message::Ping(b"cli-ping".to_vec().into()))
        .unwrap();
    match client.read().unwrap() {
        Message::Pong(payload) => assert_eq!(&payload[..], b"cli-ping"),
        other => panic!("expected a pong, got {other:?}"),
    }

    client.send(Message::text("ping-me")).unwrap();
    match client.read().unwrap() {
        Message::Ping(payload) => assert_eq!(&payload[..], b"srv-ping"),
        other => panic!("expected the server's ping, got {other:?}"),
    }
    // tungstenite queued the pong; the next read flushes it and returns the server's answer.
    assert_eq!(next_data(&mut client), Message::text("got-pong:srv-ping"));
    assert_eq!(server.next_event(), ServerEvent::Pong(b"srv-ping".to_vec()));

    client.close(None).unwrap();
    drain_until_closed(client);
    proxy.assert_no_sessions("after pings");
}

/// The client starts the closing handshake: its code and reason reach the server, the server's
/// close frame comes back, TCP closes and the session ends.
pub fn close_client_initiated<P: ProxyUnderTest>() {
    let server = WsServer::spawn();
    let proxy = Proxy::start::<P>(&Setup::new(server.addr()));
    let (mut client, _) = ws::connect(proxy.addr(), &[]);
    assert!(matches!(server.next_event(), ServerEvent::Connected { .. }));

    client
        .close(Some(CloseFrame {
            code: CloseCode::from(4001),
            reason: "client bye".into(),
        }))
        .unwrap();
    let reply = loop {
        match client.read() {
            Ok(Message::Close(frame)) => break frame,
            Ok(_) => {}
            Err(e) => panic!("expected the server's close frame, got {e}"),
        }
    };
    assert_eq!(
        reply.map(|f| u16::from(f.code)),
        Some(4001),
        "the server echoes the close code"
    );
    drain_until_closed(client);
    assert_eq!(
        server.next_event(),
        ServerEvent::CloseReceived(Some(4001), "client bye".into())
    );
    assert_eq!(server.next_event(), ServerEvent::ClosedCleanly);
    proxy.assert_no_sessions("after a client-initiated close");
}

/// The server starts the closing handshake: the client sees its code, replies, and both ends
/// see a clean close.
pub fn close_server_initiated<P: ProxyUnderTest>() {
    let server = WsServer::spawn();
    let proxy = Proxy::start::<P>(&Setup::new(server.addr()));
    let (mut client, _) = ws::connect(proxy.addr(), &[]);
    assert!(matches!(server.next_event(), ServerEvent::Connected { .. }));

    client.send(Message::text("close-me:4002")).unwrap();
    match next_data(&mut client) {
        Message::Close(Some(frame)) => {
            assert_eq!(u16::from(frame.code), 4002);
            assert_eq!(frame.reason.as_str(), "server says bye");
        }
        other => panic!("expected the server's close frame, got {other:?}"),
    }
    drain_until_closed(client);
    assert_eq!(
        server.next_event(),
        ServerEvent::CloseReceived(Some(4002), "server says bye".into())
    );
    assert_eq!(server.next_event(), ServerEvent::ClosedCleanly);
    proxy.assert_no_sessions("after a server-initiated close");
}

/// The server drops TCP without a close frame: the client sees the connection end (not a hang).
pub fn close_abrupt_server<P: ProxyUnderTest>() {
    let server = WsServer::spawn();
    let proxy = Proxy::start::<P>(&Setup::new(server.addr()));
    let (mut client, _) = ws::connect(proxy.addr(), &[]);
    client.send(Message::text("drop-me")).unwrap();
    match client.read() {
        Err(Error::Protocol(_) | Error::ConnectionClosed | Error::AlreadyClosed) => {}
        Err(Error::Io(e)) => assert!(
            !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "the client was not told that the server went away: {e}"
        ),
        other => panic!("expected the connection to end, got {other:?}"),
    }
    drop(client);
    proxy.assert_no_sessions("after the server dropped TCP");
}

/// The client drops TCP without a close frame: the server sees the connection end.
pub fn close_abrupt_client<P: ProxyUnderTest>() {
    let server = WsServer::spawn();
    let proxy = Proxy::start::<P>(&Setup::new(server.addr()));
    let (mut client, _) = ws::connect(proxy.addr(), &[]);
    assert!(matches!(server.next_event(), ServerEvent::Connected { .. }));
    client.send(Message::text("still here")).unwrap();
    assert_eq!(next_data(&mut client), Message::text("still here"));
    drop(client);
    match server.next_event() {
        ServerEvent::Failed(_) => {}
        other => {
            panic!("the server should see a connection lost without a close frame, got {other:?}")
        }
    }
    proxy.assert_no_sessions("after the client dropped TCP");
}

/// `Sec-WebSocket-Protocol` goes to the server as offered and the server's choice comes back.
pub fn subprotocol<P: ProxyUnderTest>() {
    let server = WsServer::spawn();
    let proxy = Proxy::start::<P>(&Setup::new(server.addr()));
    let (mut client, response) = ws::connect(proxy.addr(), &["chat", PREFERRED_PROTOCOL]);
    assert_eq!(
        server.next_event(),
        ServerEvent::Connected {
            offered: Some(format!("chat, {PREFERRED_PROTOCOL}"))
        }
    );
    let chosen = response
        .headers()
        .get("sec-websocket-protocol")
        .map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(chosen.as_deref(), Some(PREFERRED_PROTOCOL));
    client.send(Message::text("in protocol")).unwrap();
    assert_eq!(next_data(&mut client), Message::text("in protocol"));
    client.close(None).unwrap();
    drain_until_closed(client);
}

/// `permessage-deflate` is negotiated end to end: the offer reaches the upstream, the
/// upstream's answer reaches the client, and a compressed frame (RSV1 set) passes untouched.
/// (tungstenite has no deflate support, so this is a raw handshake; the Python interop scenario
/// runs real compression.)
pub fn deflate_negotiation<P: ProxyUnderTest>() {
    const OFFER: &str = "permessage-deflate; client_max_window_bits";
    const ANSWER: &str = "permessage-deflate; server_no_context_takeover";
    // "Hello" compressed, unmasked, from RFC 7692 §7.2.3.1: a server-to-client frame.
    const COMPRESSED_HELLO: [u8; 9] = [0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
    let upstream = Upstream::spawn(|mut stream| {
        let Ok(Some((head, _))) = read_head(&mut stream) else {
            return;
        };
        let request = raw::parse_request(&head);
        let offered = request
            .header("sec-websocket-extensions")
            .unwrap_or("<none>")
            .to_owned();
        let mut answer = raw::switching_protocols(
            &request,
            &format!("Sec-WebSocket-Extensions: {ANSWER}\r\nX-Offered: {offered}\r\n"),
        );
        answer.extend_from_slice(&COMPRESSED_HELLO);
        let _ = stream.write_all(&answer);
        let mut rest = Vec::new();
        raw::read_to_eof(&mut stream, &mut rest);
    });
    let proxy = Proxy::start::<P>(&Setup::new(upstream.addr()));
    let mut client = proxy.connect();
    let (head, mut after) = raw::upgrade(
        &mut client,
        &format!("Sec-WebSocket-Extensions: {OFFER}\r\n"),
        b"",
    );
    assert_eq!(head.status, 101);
    assert_eq!(
        head.header("x-offered"),
        Some(OFFER),
        "the offer reached the upstream intact"
    );
    assert_eq!(head.header("sec-websocket-extensions"), Some(ANSWER));
    if after.len() < COMPRESSED_HELLO.len() {
        let more = raw::read_exact_n(
            &mut client,
            COMPRESSED_HELLO.len() - after.len(),
            "compressed frame",
        );
        after.extend(more);
    }
    assert_eq!(
        after, COMPRESSED_HELLO,
        "the compressed frame passes byte for byte"
    );
}

/// Reads until tungstenite reports the connection closed (the close handshake and TCP EOF),
/// then closes the socket: the session may only end once both directions have.
fn drain_until_closed(mut client: tungstenite::WebSocket<std::net::TcpStream>) {
    loop {
        match client.read() {
            Ok(_) => {}
            Err(Error::ConnectionClosed | Error::AlreadyClosed) => return,
            Err(e) => panic!("expected a clean close, got {e}"),
        }
    }
}
