//! [`proxy_connection`]: one session on the calling thread, with its own small event loop.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Waker};
use switchyard_proto::{ClientInfo, Counters, Summary};

use crate::conn::{Conn, Progress, WAKER};
use crate::context::Context;

/// Proxies one client connection on the calling thread until the session ends or the
/// [`Context`] shuts down, and returns how it ended. The stream is switched to non-blocking
/// mode; the thread sleeps in `epoll_wait` (or kqueue) between events.
pub fn proxy_connection(client: std::net::TcpStream, info: ClientInfo, ctx: &Context) -> Summary {
    match run(client, info, ctx) {
        Ok(summary) => summary,
        Err(e) => {
            log::error!("cannot drive the connection: {e}");
            Summary {
                error: None,
                status: None,
                tunnelled: false,
                counters: Counters::default(),
            }
        }
    }
}

fn run(client: std::net::TcpStream, info: ClientInfo, ctx: &Context) -> io::Result<Summary> {
    let mut poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    let _wake = ctx.on_shutdown(waker);
    client.set_nonblocking(true)?;
    let client = mio::net::TcpStream::from_std(client);
    let mut conn = Conn::new(ctx, 0, client, info, poll.registry())?;
    let mut events = Events::with_capacity(8);
    loop {
        if ctx.is_shutting_down() {
            return Ok(conn.abandon());
        }
        let timeout = match conn.drive(ctx, poll.registry()) {
            Progress::Closed(summary) => return Ok(summary),
            Progress::Busy => Some(Duration::ZERO),
            Progress::Idle => conn
                .deadline()
                .map(|at| at.saturating_duration_since(Instant::now())),
        };
        match poll.poll(&mut events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        for event in events.iter() {
            if event.token() != WAKER {
                conn.on_event(event);
            }
        }
    }
}
