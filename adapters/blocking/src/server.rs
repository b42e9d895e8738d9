//! A proxy on its own threads: [`spawn`] starts the event loops and the accepting thread;
//! [`ProxyHandle`] reports on them and stops them.
//!
//! The accepting thread owns the listener, hands each connection to the next worker in turn,
//! and sweeps the idle upstream pool once a second.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};

use crate::conn::WAKER;
use crate::context::Context;
use crate::worker::{self, WorkerHandle};
use crate::ProxyConfig;

/// How often idle pooled connections are checked for expiry.
const POOL_SWEEP: Duration = Duration::from_secs(1);
/// Pause after a failed `accept` (e.g. out of file descriptors) before the next one.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// The listener's token in the accepting thread's poller.
const LISTENER: Token = Token(0);

/// A proxy running on its own threads: `workers` event loops and one accepting thread.
#[derive(Debug)]
pub struct ProxyHandle {
    ctx: Arc<Context>,
    local_addr: SocketAddr,
    threads: Vec<JoinHandle<()>>,
}

impl ProxyHandle {
    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Client connections whose session has not ended yet (leak checks in tests).
    pub fn open_sessions(&self) -> usize {
        self.ctx.open_sessions()
    }

    /// The shared state of the listener (pool, counters).
    pub fn context(&self) -> &Arc<Context> {
        &self.ctx
    }

    /// Stops accepting, ends every session, closes every socket and joins every thread.
    /// Dropping the handle does the same.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.ctx.shutdown();
        for thread in self.threads.drain(..) {
            if thread.join().is_err() {
                log::error!("a proxy thread panicked");
            }
        }
    }
}

impl Drop for ProxyHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Serves `listener` (already bound; blocking mode as std gives it) with `workers` event loop
/// threads (`None`: one per core) and one accepting thread.
pub fn spawn(
    listener: std::net::TcpListener,
    config: ProxyConfig,
    workers: Option<usize>,
) -> io::Result<ProxyHandle> {
    let local_addr = listener.local_addr()?;
    listener.set_nonblocking(true)?;
    let workers = workers
        .or_else(|| std::thread::available_parallelism().ok().map(usize::from))
        .unwrap_or(1)
        .max(1);
    let mut handle = ProxyHandle {
        ctx: Arc::new(Context::new(config)),
        local_addr,
        threads: Vec::new(),
    };
    // On an error below, dropping `handle` stops what was started.
    let mut loops = Vec::with_capacity(workers);
    for index in 0..workers {
        let (worker, thread) = worker::start(Arc::clone(&handle.ctx), index)?;
        loops.push(worker);
        handle.threads.push(thread);
    }
    let mut listener = TcpListener::from_std(listener);
    let poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let acceptor = Acceptor {
        ctx: Arc::clone(&handle.ctx),
        poll,
        listener,
        workers: loops,
        next: 0,
    };
    let thread = std::thread::Builder::new()
        .name("switchyard-accept".to_owned())
        .spawn(move || acceptor.run(waker))?;
    handle.threads.push(thread);
    Ok(handle)
}

/// The accepting thread's state.
struct Acceptor {
    ctx: Arc<Context>,
    poll: Poll,
    listener: TcpListener,
    workers: Vec<WorkerHandle>,
    /// The worker the next connection goes to.
    next: usize,
}

impl Acceptor {
    fn run(mut self, waker: Arc<Waker>) {
        let ctx = Arc::clone(&self.ctx);
        let _wake = ctx.on_shutdown(waker);
        let mut events = Events::with_capacity(64);
        let mut next_sweep = Instant::now() + POOL_SWEEP;
        let mut backing_off = false;
        while !ctx.is_shutting_down() {
            let mut timeout = next_sweep.saturating_duration_since(Instant::now());
            if backing_off {
                timeout = timeout.min(ACCEPT_BACKOFF);
            }
            match self.poll.poll(&mut events, Some(timeout)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::error!("accept loop poll failed, no longer accepting: {e}");
                    return;
                }
            }
            if ctx.is_shutting_down() {
                return;
            }
            let now = Instant::now();
            if now >= next_sweep {
                ctx.expire_idle(now);
                next_sweep = now + POOL_SWEEP;
            }
            backing_off = !self.accept_all();
        }
    }

    /// Accepts until the backlog is empty (the listener is edge-triggered); returns false if
    /// accepting failed and must be retried later.
    fn accept_all(&mut self) -> bool {
        loop {
            match self.listener.accept() {
                Ok(accepted) => {
                    self.workers[self.next % self.workers.len()].hand_over(accepted);
                    self.next = self.next.wrapping_add(1);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    log::warn!("accept failed: {e}");
                    return false;
                }
            }
        }
    }
}
