//! The accept loop: one task per accepted connection, until the shutdown signal.
//!
//! The same loop serves [`serve`] (tasks on async-std's executor) and [`spawn`](crate::spawn)
//! (tasks on the handle's own executor); a [`Spawner`] says where tasks go.

use std::future::{poll_fn, Future};
use std::io::{self, ErrorKind};
use std::net::TcpListener;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use async_io::{Async, Timer};
use switchyard_proto::ClientInfo;

use crate::context::Context;
use crate::driver::proxy_tcp_connection;
use crate::ProxyConfig;

/// Pause after an accept error other than an aborted connection (out of file descriptors,
/// memory): accepting again at once would spin. nginx waits 500 ms on `EMFILE`.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Where the accept loop starts connection tasks.
pub(crate) trait Spawner {
    /// Runs `task` to completion in the background.
    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, task: F);
}

/// async-std's global executor.
struct AsyncStd;

impl Spawner for AsyncStd {
    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, task: F) {
        async_std::task::spawn(task);
    }
}

/// Serves `listener` with `config` inside an async-std program: one task per connection.
///
/// Runs until the returned future is dropped; dropping it ends every session it started
/// (closing their sockets) and closes the idle upstream connections. It returns early only if
/// the listener cannot be registered with the reactor.
pub async fn serve(listener: async_std::net::TcpListener, config: ProxyConfig) -> io::Result<()> {
    let listener = Async::new(TcpListener::try_from(listener)?)?;
    let ctx = Arc::new(Context::new(config));
    let _stop = ShutdownOnDrop(Arc::clone(&ctx));
    async_std::task::spawn({
        let ctx = Arc::clone(&ctx);
        async move { ctx.run_pool_expiry().await }
    });
    accept_loop(listener, ctx, AsyncStd).await;
    Ok(())
}

/// Shuts the context down when `serve` is dropped.
struct ShutdownOnDrop(Arc<Context>);

impl Drop for ShutdownOnDrop {
    fn drop(&mut self) {
        self.0.shutdown();
    }
}

/// Accepts connections until `ctx` is shut down, proxying each in its own task.
pub(crate) async fn accept_loop(
    listener: Async<TcpListener>,
    ctx: Arc<Context>,
    spawner: impl Spawner,
) {
    let Some(mut stop) = ctx.shutdown_listener() else {
        return;
    };
    loop {
        let accepted = poll_fn(|cx| {
            if Pin::new(&mut stop).poll(cx).is_ready() {
                return Poll::Ready(None);
            }
            loop {
                match listener.get_ref().accept() {
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    result => return Poll::Ready(Some(result)),
                }
                if let Err(e) = std::task::ready!(listener.poll_readable(cx)) {
                    return Poll::Ready(Some(Err(e)));
                }
            }
        })
        .await;
        let (stream, peer) = match accepted {
            None => return,
            Some(Ok(accepted)) => accepted,
            Some(Err(e))
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionAborted | ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            Some(Err(e)) => {
                log::warn!("accept failed: {e}");
                Timer::after(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        let stream = match Async::new(stream) {
            Ok(stream) => stream,
            Err(e) => {
                log::warn!("{peer}: cannot register the connection: {e}");
                continue;
            }
        };
        let ctx = Arc::clone(&ctx);
        spawner.spawn(CatchPanic(Box::pin(async move {
            let info = ClientInfo {
                addr: Some(peer),
                secure: false,
            };
            proxy_tcp_connection(stream, info, &ctx).await;
        })));
    }
}

/// Ends a task that panics, instead of the executor thread running it: the task's sockets are
/// closed as it is dropped, and the other sessions go on. (Nothing should panic: proto promises
/// no panic on any input; this is the backstop.)
struct CatchPanic<F>(Pin<Box<F>>);

impl<F: Future<Output = ()>> Future for CatchPanic<F> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<()> {
        let task = self.0.as_mut();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| task.poll(cx))) {
            Ok(poll) => poll,
            Err(_) => {
                log::error!("a connection task panicked; its connections are closed");
                Poll::Ready(())
            }
        }
    }
}
