//! The state shared by every connection of a listener.
//!
//! Sessions are independent except for four things, kept here: the idle upstream connections
//! (the pool, whose policy is proto's [`Pool`]), how many sessions are open (for leak checks and
//! for a shutdown that waits for them), the shutdown signal every task listens to, and the
//! sessions' deadlines (one thread for all of them: see `deadlines`).

use std::future::{poll_fn, Future};
use std::net::TcpStream;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::Poll;
use std::time::{Duration, Instant};

use async_io::{Async, Timer};
use event_listener::{Event, EventListener, Listener};
use switchyard_proto::{Pool, Pooled};

use crate::deadlines::Deadlines;
use crate::ProxyConfig;

/// How often [`Context::run_pool_expiry`] closes expired idle upstream connections.
const POOL_EXPIRY_PERIOD: Duration = Duration::from_secs(1);

/// An upstream connection, as the pool keeps it.
pub(crate) type Conn = Async<TcpStream>;

/// Shared per-listener state: the [`ProxyConfig`], the idle upstream connections, the count of
/// open sessions and the shutdown signal. Share it with an `Arc`.
#[derive(Debug)]
pub struct Context {
    config: ProxyConfig,
    pool: Mutex<Pool<String, Conn>>,
    open: AtomicUsize,
    /// Notified when `open` drops to zero.
    drained: Event,
    shut_down: AtomicBool,
    /// Notified once, by [`Context::shutdown`].
    shutdown: Event,
    deadlines: Deadlines,
}

impl Context {
    /// The state for a listener serving `config`.
    pub fn new(config: ProxyConfig) -> Self {
        Self {
            pool: Mutex::new(Pool::new(config.pool.clone())),
            config,
            open: AtomicUsize::new(0),
            drained: Event::new(),
            shut_down: AtomicBool::new(false),
            shutdown: Event::new(),
            deadlines: Deadlines::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ProxyConfig {
        &self.config
    }

    /// Client connections whose session has not ended yet.
    pub fn open_sessions(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// Idle upstream connections kept in the pool.
    pub fn idle_upstream_connections(&self) -> usize {
        self.lock_pool().total_idle()
    }

    /// Ends every session (closing its sockets), stops accept loops and the pool expiry, and
    /// closes the idle upstream connections. Idempotent.
    pub fn shutdown(&self) {
        self.shut_down.store(true, Ordering::Release);
        self.shutdown.notify(usize::MAX);
        let idle = std::mem::replace(&mut *self.lock_pool(), Pool::new(self.config.pool.clone()));
        drop(idle);
    }

    /// Whether [`shutdown`](Self::shutdown) was called.
    pub fn is_shut_down(&self) -> bool {
        self.shut_down.load(Ordering::Acquire)
    }

    /// Closes idle upstream connections as they expire, every second, until
    /// [`shutdown`](Self::shutdown). [`serve`](crate::serve) and [`spawn`](crate::spawn) run it;
    /// run it yourself next to your own accept loop.
    pub async fn run_pool_expiry(&self) {
        while let Some(mut stop) = self.shutdown_listener() {
            let mut tick = Timer::after(POOL_EXPIRY_PERIOD);
            let stopped = poll_fn(|cx| {
                if Pin::new(&mut stop).poll(cx).is_ready() {
                    return Poll::Ready(true);
                }
                Pin::new(&mut tick).poll(cx).map(|_| false)
            })
            .await;
            if stopped {
                break;
            }
            let expired = self.lock_pool().handle_timeout(Instant::now());
            drop(expired);
        }
    }

    /// The sessions' deadlines.
    pub(crate) fn deadlines(&self) -> &Deadlines {
        &self.deadlines
    }

    /// A listener for the shutdown signal, or `None` if it was already given.
    pub(crate) fn shutdown_listener(&self) -> Option<EventListener> {
        let listener = self.shutdown.listen();
        (!self.is_shut_down()).then_some(listener)
    }

    /// Counts a session as open until the returned guard is dropped.
    pub(crate) fn open_session(&self) -> OpenSession<'_> {
        self.open.fetch_add(1, Ordering::AcqRel);
        OpenSession { ctx: self }
    }

    /// Blocks until no session is open or `deadline` passes; returns whether none is open.
    pub(crate) fn wait_drained(&self, deadline: Instant) -> bool {
        loop {
            if self.open_sessions() == 0 {
                return true;
            }
            let listener = self.drained.listen();
            if self.open_sessions() == 0 {
                return true;
            }
            if listener.wait_deadline(deadline).is_none() && Instant::now() >= deadline {
                return self.open_sessions() == 0;
            }
        }
    }

    /// A live idle connection to `server` from the pool, if any. Connections found expired or
    /// closed by the upstream while idle are closed on the way.
    pub(crate) fn checkout(&self, server: &String, now: Instant) -> Option<Pooled<Conn>> {
        let mut closed = Vec::new();
        let found = self
            .lock_pool()
            .checkout(server, now, is_idle_and_open, &mut closed);
        if !closed.is_empty() {
            log::debug!(
                "{} pooled connection(s) to {server} closed or expired",
                closed.len()
            );
        }
        found
    }

    /// Returns a connection the session released as reusable; closes what the pool gives back.
    pub(crate) fn checkin(&self, server: &str, pooled: Pooled<Conn>, now: Instant) {
        if self.is_shut_down() {
            return;
        }
        let evicted = self.lock_pool().checkin(server.to_owned(), pooled, now);
        drop(evicted);
    }

    fn lock_pool(&self) -> MutexGuard<'_, Pool<String, Conn>> {
        // The pool holds no invariant a panicking holder could break halfway.
        self.pool.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A pooled connection is usable only if it has nothing to read: readable while idle means the
/// upstream closed it (EOF) or misbehaves (unsolicited bytes).
fn is_idle_and_open(conn: &Conn) -> bool {
    let mut probe = [0u8; 1];
    matches!(conn.get_ref().peek(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

/// A session counted by [`Context::open_sessions`] while this lives.
#[derive(Debug)]
pub(crate) struct OpenSession<'a> {
    ctx: &'a Context,
}

impl Drop for OpenSession<'_> {
    fn drop(&mut self) {
        if self.ctx.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.ctx.drained.notify(usize::MAX);
        }
    }
}
