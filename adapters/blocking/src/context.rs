//! The state one listener shares between its event loops and sessions: the configuration, the
//! idle upstream pool, the count of open sessions and the shutdown signal.
//!
//! Loops and embedded sessions register a [`mio::Waker`] here so that [`Context::shutdown`] can
//! interrupt their wait. The pool's mutex is taken once per upstream checkout or checkin (per
//! request, never per read).

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use mio::net::TcpStream;
use mio::Waker;
use switchyard_proto::{Pool, Pooled};

use crate::ProxyConfig;

/// Shared per-listener state: the [`ProxyConfig`], the idle upstream connections, the number of
/// open sessions and the shutdown signal. Share it between threads with an `Arc`.
#[derive(Debug)]
pub struct Context {
    config: ProxyConfig,
    pool: Mutex<Pool<String, TcpStream>>,
    open: Arc<AtomicUsize>,
    stopping: AtomicBool,
    wakers: Mutex<Vec<(u64, Arc<Waker>)>>,
    next_waker: AtomicU64,
}

impl Context {
    /// A context with an empty pool.
    pub fn new(config: ProxyConfig) -> Self {
        let pool = Pool::new(config.pool.clone());
        Self {
            config,
            pool: Mutex::new(pool),
            open: Arc::new(AtomicUsize::new(0)),
            stopping: AtomicBool::new(false),
            wakers: Mutex::new(Vec::new()),
            next_waker: AtomicU64::new(0),
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

    /// Idle upstream connections waiting in the pool.
    pub fn idle_upstreams(&self) -> usize {
        self.lock_pool().total_idle()
    }

    /// Asks every event loop and session of this context to end, and closes the idle upstream
    /// connections. Sessions close their sockets and return; new ones end at once.
    pub fn shutdown(&self) {
        self.stopping.store(true, Ordering::Release);
        for (_, waker) in lock(&self.wakers).iter() {
            if let Err(e) = waker.wake() {
                log::warn!("waking an event loop for shutdown: {e}");
            }
        }
        let fresh = Pool::new(self.config.pool.clone());
        let old = std::mem::replace(&mut *self.lock_pool(), fresh);
        drop(old);
    }

    /// Whether [`shutdown`](Self::shutdown) was called.
    pub fn is_shutting_down(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Registers `waker` to be woken at shutdown until the guard is dropped. Check
    /// [`is_shutting_down`](Self::is_shutting_down) after registering.
    pub(crate) fn on_shutdown(&self, waker: Arc<Waker>) -> WakeOnShutdown<'_> {
        let id = self.next_waker.fetch_add(1, Ordering::Relaxed);
        lock(&self.wakers).push((id, waker));
        WakeOnShutdown { ctx: self, id }
    }

    /// Counts a session as open until the returned guard is dropped.
    pub(crate) fn enter(&self) -> OpenSession {
        self.open.fetch_add(1, Ordering::AcqRel);
        OpenSession(Arc::clone(&self.open))
    }

    /// An idle connection to `server` that the upstream has not closed, if the pool has one.
    /// Expired and closed ones met on the way are closed.
    pub(crate) fn checkout(&self, server: &String, now: Instant) -> Option<Pooled<TcpStream>> {
        let mut closed = Vec::new();
        let found = self
            .lock_pool()
            .checkout(server, now, is_quiet, &mut closed);
        if !closed.is_empty() {
            log::debug!(
                "{} pooled connection(s) to {server} closed or expired",
                closed.len()
            );
        }
        found
    }

    /// Returns a connection the session released as reusable (already deregistered from its
    /// loop); closes whatever the pool gives back and the connections that expired meanwhile.
    pub(crate) fn checkin(&self, server: &str, pooled: Pooled<TcpStream>, now: Instant) {
        if self.is_shutting_down() {
            return; // `pooled` is dropped: closed
        }
        let to_close = self
            .lock_pool()
            .checkin_and_expire(server.to_owned(), pooled, now);
        drop(to_close); // closed outside the lock
    }

    /// Closes the idle connections that expired by `now`.
    pub(crate) fn expire_idle(&self, now: Instant) {
        let expired = self.lock_pool().handle_timeout(now);
        drop(expired);
    }

    fn lock_pool(&self) -> MutexGuard<'_, Pool<String, TcpStream>> {
        lock(&self.pool)
    }
}

/// Locks `mutex`; the data behind these mutexes holds no invariant a panicking holder could
/// break half-way, so poisoning is ignored.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An open session, counted in [`Context::open_sessions`] while it lives.
#[derive(Debug)]
pub(crate) struct OpenSession(Arc<AtomicUsize>);

impl Drop for OpenSession {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A waker registered for shutdown, unregistered on drop.
pub(crate) struct WakeOnShutdown<'a> {
    ctx: &'a Context,
    id: u64,
}

impl Drop for WakeOnShutdown<'_> {
    fn drop(&mut self) {
        lock(&self.ctx.wakers).retain(|(id, _)| *id != self.id);
    }
}

/// Whether an idle connection has nothing to say: a readable idle socket was closed by the
/// upstream (EOF), reset, or sent bytes nobody asked for; none of these may be reused.
fn is_quiet(stream: &TcpStream) -> bool {
    let mut byte = [0u8; 1];
    match stream.peek(&mut byte) {
        Err(e) => e.kind() == io::ErrorKind::WouldBlock,
        Ok(_) => false,
    }
}
