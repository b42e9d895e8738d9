//! Listeners: the accept loop ([`serve`], [`serve_with`]) and a proxy on its own runtime
//! ([`spawn`], [`ProxyHandle`]).
//!
//! Sessions are tasks in a `JoinSet` owned by the accept loop, so the loop knows when the last
//! one ended, and dropping the loop's future aborts every session (closing its sockets).

use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use switchyard_proto::ClientInfo;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::context::Context;
use crate::driver::proxy_tcp_connection;
use crate::ProxyConfig;

/// How often idle pooled connections are checked for expiry.
const POOL_SWEEP: Duration = Duration::from_secs(1);
/// Pause after a failed `accept` (e.g. out of file descriptors) before the next one.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves `listener` with a new [`Context`] for `config`, one task per client connection,
/// until the future is dropped (which aborts every session). Use [`serve_with`] to be able to
/// shut it down gracefully.
pub async fn serve(listener: TcpListener, config: ProxyConfig) -> io::Result<()> {
    serve_with(listener, Arc::new(Context::new(config))).await
}

/// Serves `listener` with `ctx` until [`Context::shutdown`]; then stops accepting, waits until
/// every session has ended (each closes its sockets at the signal) and returns.
pub async fn serve_with(listener: TcpListener, ctx: Arc<Context>) -> io::Result<()> {
    let mut sessions = JoinSet::new();
    let mut stop = pin!(ctx.stop_signal());
    stop.as_mut().enable();
    let mut sweep = tokio::time::interval(POOL_SWEEP);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !ctx.is_shutting_down() {
        tokio::select! {
            () = stop.as_mut() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let ctx = Arc::clone(&ctx);
                    sessions.spawn(async move {
                        let info = ClientInfo { addr: Some(peer), secure: false };
                        proxy_tcp_connection(stream, info, &ctx).await;
                    });
                }
                Err(e) => {
                    log::warn!("accept failed: {e}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            Some(joined) = sessions.join_next(), if !sessions.is_empty() => {
                if let Err(e) = joined {
                    log::error!("a session task failed: {e}");
                }
            }
            _ = sweep.tick() => ctx.expire_idle(Instant::now()),
        }
    }
    drop(listener);
    ctx.shutdown();
    while sessions.join_next().await.is_some() {}
    Ok(())
}

/// A proxy running on its own multi-thread tokio runtime.
#[derive(Debug)]
pub struct ProxyHandle {
    ctx: Arc<Context>,
    local_addr: SocketAddr,
    thread: Option<JoinHandle<()>>,
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

    /// Stops accepting, ends every session, closes every socket, stops the runtime and joins
    /// its threads. Dropping the handle does the same.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.ctx.shutdown();
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                log::error!("the proxy thread panicked");
            }
        }
    }
}

impl Drop for ProxyHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Serves `listener` (already bound; blocking mode as std gives it) on a new multi-thread
/// runtime with `workers` worker threads (`None`: one per core), driven from a dedicated thread.
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("switchyard-worker")
        .enable_io()
        .enable_time()
        .build()?;
    let listener = {
        let _entered = runtime.enter();
        TcpListener::from_std(listener)?
    };
    let ctx = Arc::new(Context::new(config));
    let serving = Arc::clone(&ctx);
    let thread = std::thread::Builder::new()
        .name("switchyard-tokio".to_owned())
        .spawn(move || {
            if let Err(e) = runtime.block_on(serve_with(listener, serving)) {
                log::error!("listener failed: {e}");
            }
            // Dropping the runtime joins its worker and blocking threads.
            drop(runtime);
        })?;
    Ok(ProxyHandle {
        ctx,
        local_addr,
        thread: Some(thread),
    })
}
