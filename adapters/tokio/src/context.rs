//! The state one listener shares between its sessions: the configuration, the idle upstream
//! pool, the count of open sessions and the shutdown signal.
//!
//! It is the only shared mutable state of the adapter; the pool's mutex is taken once per
//! upstream checkout or checkin (per request, never per read).

use std::io;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use socket2::SockRef;
use switchyard_proto::{Pool, Pooled};
use tokio::net::TcpStream;
use tokio::sync::futures::Notified;
use tokio::sync::Notify;

use crate::ProxyConfig;

/// Shared per-listener state: the [`ProxyConfig`], the idle upstream connections, the number of
/// open sessions and the shutdown signal. Share it between tasks with an `Arc`; use it from one
/// runtime only (its pooled connections are registered with the runtime that opened them).
#[derive(Debug)]
pub struct Context {
    config: ProxyConfig,
    pool: Mutex<Pool<String, TcpStream>>,
    open: AtomicUsize,
    stopping: AtomicBool,
    stop: Notify,
}

impl Context {
    /// A context with an empty pool.
    pub fn new(config: ProxyConfig) -> Self {
        let pool = Pool::new(config.pool.clone());
        Self {
            config,
            pool: Mutex::new(pool),
            open: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
            stop: Notify::new(),
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

    /// Asks every session and accept loop of this context to end, and closes the idle upstream
    /// connections. Sessions close their sockets and return; new ones end at once.
    pub fn shutdown(&self) {
        self.stopping.store(true, Ordering::Release);
        self.stop.notify_waiters();
        self.close_idle();
    }

    /// Whether [`shutdown`](Self::shutdown) was called.
    pub fn is_shutting_down(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// A future that completes at [`shutdown`](Self::shutdown). `enable` it before checking
    /// [`is_shutting_down`](Self::is_shutting_down) so that no signal is missed.
    pub(crate) fn stop_signal(&self) -> Notified<'_> {
        self.stop.notified()
    }

    /// Counts a session as open until the returned guard is dropped (also when its future is
    /// dropped unfinished).
    pub(crate) fn enter(&self) -> OpenSession<'_> {
        self.open.fetch_add(1, Ordering::AcqRel);
        OpenSession(self)
    }

    /// An idle connection to `server` that the upstream has not closed, if the pool has one.
    /// Expired and closed ones met on the way are closed.
    pub(crate) fn checkout(&self, server: &str, now: Instant) -> Option<Pooled<TcpStream>> {
        let key = server.to_owned();
        let mut closed = Vec::new();
        let found = self.lock_pool().checkout(&key, now, is_quiet, &mut closed);
        if !closed.is_empty() {
            log::debug!(
                "{} pooled connection(s) to {server} closed or expired",
                closed.len()
            );
        }
        found
    }

    /// Returns a connection the session released as reusable; closes whatever the pool gives
    /// back (this one or an evicted one) and the connections that expired meanwhile.
    pub(crate) fn checkin(&self, server: &str, pooled: Pooled<TcpStream>, now: Instant) {
        if self.is_shutting_down() {
            return; // `pooled` is dropped: closed
        }
        let to_close = self
            .lock_pool()
            .checkin_and_expire(server.to_owned(), pooled, now);
        drop(to_close); // closed outside the lock
    }

    /// Closes the idle connections that expired by `now` (called periodically by the accept loop).
    pub(crate) fn expire_idle(&self, now: Instant) {
        let expired = self.lock_pool().handle_timeout(now);
        drop(expired);
    }

    /// Closes every idle connection.
    fn close_idle(&self) {
        let fresh = Pool::new(self.config.pool.clone());
        let old = std::mem::replace(&mut *self.lock_pool(), fresh);
        drop(old);
    }

    fn lock_pool(&self) -> MutexGuard<'_, Pool<String, TcpStream>> {
        // The pool holds no invariant a panicking holder could break half-way.
        self.pool.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// An open session, counted in [`Context::open_sessions`] while it lives.
pub(crate) struct OpenSession<'a>(&'a Context);

impl Drop for OpenSession<'_> {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Whether an idle connection has nothing to say: a readable idle socket was closed by the
/// upstream (EOF), reset, or sent bytes nobody asked for; none of these may be reused.
fn is_quiet(stream: &TcpStream) -> bool {
    let mut byte = [MaybeUninit::<u8>::uninit(); 1];
    match SockRef::from(stream).peek(&mut byte) {
        Err(e) => e.kind() == io::ErrorKind::WouldBlock,
        Ok(_) => false,
    }
}
