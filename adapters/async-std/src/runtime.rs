//! [`spawn`]: a proxy on executor threads of its own.
//!
//! Why not async-std's global executor: its thread count is read once per process (from
//! `ASYNC_STD_THREAD_COUNT`), so two proxies in one process could not have different `workers`,
//! and its threads never end, so `shutdown` could not join them. Each [`ProxyHandle`] instead runs
//! an [`async_executor::Executor`] (the executor under async-std) on `workers` threads of its own;
//! I/O and timers still go through async-io's reactor, as async-std's do. Shutdown signals every
//! task, waits for the sessions to end, stops and joins the threads, then drops the executor,
//! which drops any task still there (and so closes its sockets).

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use async_executor::{Executor, Task};
use async_io::Async;
use event_listener::Event;

use crate::accept::{accept_loop, Spawner};
use crate::context::Context;
use crate::ProxyConfig;

/// How long `shutdown` waits for sessions to end by themselves before dropping their tasks.
const SESSION_DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// A proxy running on its own threads (its own executor).
#[derive(Debug)]
pub struct ProxyHandle {
    addrs: Vec<SocketAddr>,
    ctx: Arc<Context>,
    runtime: Option<Runtime>,
}

/// Serves `listener` (already bound, blocking mode as given by std) until shutdown.
/// `workers`: executor threads (`None`: the number of cores).
pub fn spawn(
    listener: TcpListener,
    config: ProxyConfig,
    workers: Option<usize>,
) -> io::Result<ProxyHandle> {
    spawn_many(vec![listener], config, workers)
}

/// Like [`spawn`], for several listeners sharing one executor, one upstream pool and one
/// round-robin group (the `switchyard` binary's repeatable `--listen`).
pub fn spawn_many(
    listeners: Vec<TcpListener>,
    config: ProxyConfig,
    workers: Option<usize>,
) -> io::Result<ProxyHandle> {
    if listeners.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "no listener"));
    }
    let mut addrs = Vec::with_capacity(listeners.len());
    let mut sockets = Vec::with_capacity(listeners.len());
    for listener in listeners {
        addrs.push(listener.local_addr()?);
        sockets.push(Async::new(listener)?);
    }
    let workers = match workers {
        Some(n) => n.max(1),
        None => thread::available_parallelism().map_or(1, usize::from),
    };
    let ctx = Arc::new(Context::new(config));
    let mut runtime = Runtime::start(workers)?;
    for listener in sockets {
        let accept = accept_loop(listener, Arc::clone(&ctx), Arc::clone(&runtime.executor));
        let task = Executor::spawn(&runtime.executor, accept);
        runtime.services.push(task);
    }
    let expiry = {
        let ctx = Arc::clone(&ctx);
        Executor::spawn(
            &runtime.executor,
            async move { ctx.run_pool_expiry().await },
        )
    };
    runtime.services.push(expiry);
    Ok(ProxyHandle {
        addrs,
        ctx,
        runtime: Some(runtime),
    })
}

impl ProxyHandle {
    /// The address of the (first) listener.
    pub fn local_addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    /// The addresses of every listener, in the order given.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Client connections whose session has not ended yet (leak checks in tests).
    pub fn open_sessions(&self) -> usize {
        self.ctx.open_sessions()
    }

    /// Idle upstream connections kept in the pool.
    pub fn idle_upstream_connections(&self) -> usize {
        self.ctx.idle_upstream_connections()
    }

    /// Stops accepting, ends every session, closes every socket, joins every thread.
    /// Idempotent (dropping the handle does the same).
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let Some(mut runtime) = self.runtime.take() else {
            return;
        };
        self.ctx.shutdown();
        for service in runtime.services.iter_mut() {
            async_io::block_on(service);
        }
        if !self.ctx.wait_drained(Instant::now() + SESSION_DRAIN_LIMIT) {
            log::warn!(
                "{} sessions did not end within {SESSION_DRAIN_LIMIT:?}; dropping them",
                self.ctx.open_sessions()
            );
        }
        runtime.stop();
        // Sessions dropped with the executor gave nothing back to the pool after `shutdown`
        // emptied it, but a release racing with it may have: empty it again.
        self.ctx.shutdown();
    }
}

impl Drop for ProxyHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An executor and its threads.
#[derive(Debug)]
struct Runtime {
    executor: Arc<Executor<'static>>,
    threads: Vec<JoinHandle<()>>,
    /// Accept loops and the pool expiry: they end on the context's shutdown signal.
    services: Vec<Task<()>>,
    stopping: Arc<AtomicBool>,
    stop: Arc<Event>,
}

impl Spawner for Arc<Executor<'static>> {
    fn spawn<F: std::future::Future<Output = ()> + Send + 'static>(&self, task: F) {
        Executor::spawn(self, task).detach();
    }
}

impl Runtime {
    fn start(workers: usize) -> io::Result<Self> {
        let mut runtime = Self {
            executor: Arc::new(Executor::new()),
            threads: Vec::with_capacity(workers),
            services: Vec::new(),
            stopping: Arc::new(AtomicBool::new(false)),
            stop: Arc::new(Event::new()),
        };
        for i in 0..workers {
            let executor = Arc::clone(&runtime.executor);
            let stopping = Arc::clone(&runtime.stopping);
            let stop = Arc::clone(&runtime.stop);
            let spawned = thread::Builder::new()
                .name(format!("switchyard-{i}"))
                .spawn(move || {
                    let signal = stop.listen();
                    if !stopping.load(Ordering::Acquire) {
                        async_io::block_on(executor.run(signal));
                    }
                });
            match spawned {
                Ok(thread) => runtime.threads.push(thread),
                Err(e) => {
                    runtime.stop();
                    return Err(e);
                }
            }
        }
        Ok(runtime)
    }

    /// Stops and joins the threads, then drops the executor with any task left in it.
    fn stop(mut self) {
        self.stopping.store(true, Ordering::Release);
        self.stop.notify(usize::MAX);
        for thread in self.threads.drain(..) {
            if thread.join().is_err() {
                log::error!("an executor thread panicked");
            }
        }
        drop(self.services.drain(..));
    }
}
