//! Real peers on 127.0.0.1: upstream servers behind the proxy and the helpers clients use.
//!
//! Every peer is plain blocking code on its own threads, so a scenario reads top to bottom. Each
//! socket has read and write timeouts ([`PATIENCE`]): a peer never hangs a test run.

pub mod http;
pub mod raw;
pub mod ws;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use crate::harness::PATIENCE;

/// A TCP server on an ephemeral port of 127.0.0.1 that runs `handler` on a new thread for each
/// connection. Dropping it stops accepting; running handlers finish on their own.
pub struct Upstream {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    finished: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl Upstream {
    /// Starts the server.
    pub fn spawn<F>(handler: F) -> Self
    where
        F: Fn(TcpStream) + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind an upstream");
        let addr = listener.local_addr().expect("upstream address");
        let accepted = Arc::new(AtomicUsize::new(0));
        let finished = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let handler = Arc::new(handler);
        let acceptor = {
            let (accepted, finished, stop) = (
                Arc::clone(&accepted),
                Arc::clone(&finished),
                Arc::clone(&stop),
            );
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    accepted.fetch_add(1, Ordering::SeqCst);
                    stream.set_read_timeout(Some(PATIENCE)).unwrap();
                    stream.set_write_timeout(Some(PATIENCE)).unwrap();
                    let _ = stream.set_nodelay(true);
                    let handler = Arc::clone(&handler);
                    let done = Finished(Arc::clone(&finished));
                    thread::Builder::new()
                        .stack_size(512 * 1024)
                        .spawn(move || {
                            let _done = done;
                            handler(stream);
                        })
                        .expect("spawn an upstream handler");
                }
            })
        };
        Self {
            addr,
            accepted,
            finished,
            stop,
            acceptor: Some(acceptor),
        }
    }

    /// The address the proxy should connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many connections it accepted.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// How many of its connections are still being served: the handler has not returned (it
    /// returns once the proxy closed the connection, for the handlers of this crate).
    pub fn active(&self) -> usize {
        // Finished first: it never exceeds what was accepted before it.
        let finished = self.finished.load(Ordering::SeqCst);
        self.accepted() - finished
    }
}

/// Counts a handler as finished when dropped, even if the handler panicked.
struct Finished(Arc<AtomicUsize>);

impl Drop for Finished {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the acceptor; it sees the flag and returns, closing the listener.
        let _ = TcpStream::connect(self.addr);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// An address on 127.0.0.1 where nothing listens (bound, then closed).
pub fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address")
}
