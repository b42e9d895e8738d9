//! WebSocket peers built on tungstenite: an echo server behind the proxy that also obeys a few
//! commands (so the server side of each close path can be driven from the client), and a client
//! helper.
//!
//! Server commands, sent as text messages: `close-me:<code>` (the server starts the closing
//! handshake), `drop-me` (the server closes TCP without a close frame), `ping-me` (the server
//! pings; when the pong arrives it answers `got-pong:<payload>`), `frag-me` (the server sends a
//! text message as three frames). Anything else is echoed.

use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Mutex;

use tungstenite::handshake::server::{Callback, ErrorResponse, Request, Response};
use tungstenite::http::HeaderValue;
use tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tungstenite::protocol::frame::Frame;
use tungstenite::protocol::CloseFrame;
use tungstenite::{ClientRequestBuilder, Error, Message, WebSocket};

use super::Upstream;
use crate::harness::PATIENCE;

/// The subprotocol the server picks when the client offers it.
pub const PREFERRED_PROTOCOL: &str = "superchat";

/// What the echo server saw, in order, per connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEvent {
    /// A handshake completed; the client's `Sec-WebSocket-Protocol` offer, if any.
    Connected {
        /// The offered subprotocols, as received.
        offered: Option<String>,
    },
    /// A close frame arrived (code, reason).
    CloseReceived(Option<u16>, String),
    /// A pong arrived with this payload.
    Pong(Vec<u8>),
    /// The connection ended after a completed closing handshake.
    ClosedCleanly,
    /// The connection ended otherwise (reset, EOF without close frame...).
    Failed(String),
}

/// The echo server. Events of all its connections go to one channel.
pub struct WsServer {
    upstream: Upstream,
    events: Receiver<ServerEvent>,
}

impl WsServer {
    /// Starts the server.
    pub fn spawn() -> Self {
        let (tx, events) = mpsc::channel();
        let tx = Mutex::new(tx);
        let upstream = Upstream::spawn(move |stream| {
            let tx = tx.lock().unwrap_or_else(|e| e.into_inner()).clone();
            serve(stream, &tx);
        });
        Self { upstream, events }
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.upstream.addr()
    }

    /// The next event (panics after [`PATIENCE`]).
    pub fn next_event(&self) -> ServerEvent {
        self.events
            .recv_timeout(PATIENCE)
            .expect("the WebSocket server reported nothing")
    }
}

/// The handshake callback: records the client's subprotocol offer and picks
/// [`PREFERRED_PROTOCOL`] when it is offered.
struct ChooseProtocol<'a> {
    offered: &'a mut Option<String>,
}

impl Callback for ChooseProtocol<'_> {
    fn on_request(
        self,
        request: &Request,
        mut response: Response,
    ) -> Result<Response, ErrorResponse> {
        if let Some(value) = request.headers().get("sec-websocket-protocol") {
            let value = value.to_str().unwrap_or_default().to_owned();
            if value.split(',').any(|p| p.trim() == PREFERRED_PROTOCOL) {
                response.headers_mut().insert(
                    "sec-websocket-protocol",
                    HeaderValue::from_static(PREFERRED_PROTOCOL),
                );
            }
            *self.offered = Some(value);
        }
        Ok(response)
    }
}

fn serve(stream: TcpStream, events: &Sender<ServerEvent>) {
    let mut offered = None;
    let accepted = tungstenite::accept_hdr(
        stream,
        ChooseProtocol {
            offered: &mut offered,
        },
    );
    let mut ws = match accepted {
        Ok(ws) => ws,
        Err(e) => {
            let _ = events.send(ServerEvent::Failed(format!("handshake: {e}")));
            return;
        }
    };
    let _ = events.send(ServerEvent::Connected { offered });
    loop {
        let message = match ws.read() {
            Ok(message) => message,
            Err(Error::ConnectionClosed) => {
                let _ = events.send(ServerEvent::ClosedCleanly);
                return;
            }
            Err(e) => {
                let _ = events.send(ServerEvent::Failed(e.to_string()));
                return;
            }
        };
        let result = match message {
            Message::Text(text) => match text.as_str() {
                "drop-me" => return,
                "ping-me" => ws.send(Message::Ping("srv-ping".into())),
                "frag-me" => send_fragmented(&mut ws, &["frag", "ment", "ed"]),
                command if command.starts_with("close-me:") => {
                    let code: u16 = command["close-me:".len()..].parse().unwrap_or(1000);
                    ws.close(Some(CloseFrame {
                        code: CloseCode::from(code),
                        reason: "server says bye".into(),
                    }))
                }
                _ => ws.send(Message::Text(text)),
            },
            Message::Binary(data) => ws.send(Message::Binary(data)),
            Message::Pong(payload) => {
                let _ = events.send(ServerEvent::Pong(payload.to_vec()));
                let text = format!("got-pong:{}", String::from_utf8_lossy(&payload));
                ws.send(Message::text(text))
            }
            Message::Close(frame) => {
                let (code, reason) = frame
                    .map(|f| (Some(u16::from(f.code)), f.reason.as_str().to_owned()))
                    .unwrap_or((None, String::new()));
                let _ = events.send(ServerEvent::CloseReceived(code, reason));
                Ok(())
            }
            Message::Ping(_) | Message::Frame(_) => Ok(()),
        };
        if let Err(e) = result {
            if !matches!(e, Error::ConnectionClosed) {
                let _ = events.send(ServerEvent::Failed(e.to_string()));
                return;
            }
        }
    }
}

/// Sends `parts` as one text message in `parts.len()` frames.
pub fn send_fragmented<S: std::io::Read + std::io::Write>(
    ws: &mut WebSocket<S>,
    parts: &[&str],
) -> tungstenite::Result<()> {
    for (i, part) in parts.iter().enumerate() {
        let opcode = if i == 0 { Data::Text } else { Data::Continue };
        let last = i + 1 == parts.len();
        let frame = Frame::message(part.as_bytes().to_vec(), OpCode::Data(opcode), last);
        ws.write(Message::Frame(frame))?;
    }
    ws.flush()
}

/// A client connection to `addr` (the proxy), with timeouts, offering `protocols`.
/// Returns the socket and the handshake response.
pub fn connect(
    addr: SocketAddr,
    protocols: &[&str],
) -> (
    WebSocket<TcpStream>,
    tungstenite::handshake::client::Response,
) {
    let stream = TcpStream::connect(addr).expect("connect to the proxy");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.set_write_timeout(Some(PATIENCE)).unwrap();
    stream.set_nodelay(true).unwrap();
    let uri = format!("ws://{addr}/chat").parse().expect("uri");
    let mut request = ClientRequestBuilder::new(uri);
    for protocol in protocols {
        request = request.with_sub_protocol(*protocol);
    }
    tungstenite::client(request, stream).expect("WebSocket handshake through the proxy")
}

/// Reads the next message that is not a ping or pong (those are answered by tungstenite).
pub fn next_data(ws: &mut WebSocket<TcpStream>) -> Message {
    loop {
        match ws.read().expect("read a message through the proxy") {
            Message::Ping(_) | Message::Pong(_) => {}
            other => return other,
        }
    }
}
