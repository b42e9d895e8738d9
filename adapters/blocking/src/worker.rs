//! An event loop thread that owns many connections.
//!
//! The loop waits on its poller with the earliest scheduled deadline as timeout, then drives
//! every connection an event was for, every connection whose deadline came, and the busy ones
//! that yielded last time; new connections arrive from the accepting thread over a channel
//! (with a wake-up). Nothing is shared between loops but the [`Context`].
//!
//! Deadlines live in a min-heap with lazy deletion: a connection keeps at most one live entry,
//! `scheduled`, and pushes a new one only when its deadline moves *earlier*. When its deadline
//! moves later (every read pushes the idle timers back), the old entry fires early, the
//! connection finds nothing due and schedules its real deadline: about one heap operation per
//! connection per second, not one per read.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::net::SocketAddr;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Poll, Waker};
use switchyard_proto::ClientInfo;

use crate::conn::{key_of, Conn, Progress, WAKER};
use crate::context::Context;

/// A client connection handed to a worker.
pub(crate) type Accepted = (TcpStream, SocketAddr);

/// How the accepting thread reaches a worker.
#[derive(Debug)]
pub(crate) struct WorkerHandle {
    sender: Sender<Accepted>,
    waker: Arc<Waker>,
}

impl WorkerHandle {
    /// Hands `accepted` to the worker (dropped, i.e. closed, if the worker is gone).
    pub(crate) fn hand_over(&self, accepted: Accepted) {
        if self.sender.send(accepted).is_ok() {
            if let Err(e) = self.waker.wake() {
                log::warn!("waking a worker: {e}");
            }
        }
    }
}

/// Starts worker `index` on its own thread.
pub(crate) fn start(ctx: Arc<Context>, index: usize) -> io::Result<(WorkerHandle, JoinHandle<()>)> {
    let poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    let (sender, inbox) = mpsc::channel();
    let worker = Worker {
        ctx,
        poll,
        inbox,
        conns: Slab::default(),
        timers: BinaryHeap::new(),
        busy: Vec::new(),
        spare: Vec::new(),
    };
    let thread = thread::Builder::new()
        .name(format!("switchyard-worker-{index}"))
        .spawn({
            let waker = Arc::clone(&waker);
            move || worker.run(waker)
        })?;
    Ok((WorkerHandle { sender, waker }, thread))
}

struct Worker {
    ctx: Arc<Context>,
    poll: Poll,
    inbox: Receiver<Accepted>,
    conns: Slab,
    /// Scheduled wake-ups: (deadline, connection key).
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    /// Connections that yielded with work left.
    busy: Vec<usize>,
    /// The previous round's `busy`, kept for its allocation.
    spare: Vec<usize>,
}

impl Worker {
    fn run(mut self, waker: Arc<Waker>) {
        let ctx = Arc::clone(&self.ctx);
        let _wake = ctx.on_shutdown(waker);
        let mut events = Events::with_capacity(1024);
        while !ctx.is_shutting_down() {
            let timeout = if self.busy.is_empty() {
                self.timers
                    .peek()
                    .map(|Reverse((at, _))| at.saturating_duration_since(Instant::now()))
            } else {
                Some(Duration::ZERO)
            };
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::error!("worker poll failed, closing its sessions: {e}");
                    break;
                }
            }
            if ctx.is_shutting_down() {
                break;
            }
            for event in events.iter() {
                if event.token() == WAKER {
                    continue;
                }
                let key = key_of(event.token());
                if let Some(conn) = self.conns.get_mut(key) {
                    conn.on_event(event);
                    self.drive(key);
                }
            }
            self.fire_timers();
            self.drive_busy();
            self.admit();
        }
        log::debug!("worker stopping with {} sessions", self.conns.len());
        // Dropping the worker closes every socket it owns.
    }

    /// Drives the connections whose scheduled deadline came.
    fn fire_timers(&mut self) {
        let now = Instant::now();
        while let Some(&Reverse((at, key))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            if let Some(conn) = self.conns.get_mut(key) {
                if conn.scheduled == Some(at) {
                    conn.scheduled = None;
                    self.drive(key);
                }
            }
        }
    }

    /// Drives again the connections that yielded last time (without allocating: the two lists
    /// trade places).
    fn drive_busy(&mut self) {
        let mut due = std::mem::take(&mut self.spare);
        std::mem::swap(&mut due, &mut self.busy);
        for &key in &due {
            self.drive(key);
        }
        due.clear();
        self.spare = due;
    }

    /// Takes in the connections the accepting thread handed over.
    fn admit(&mut self) {
        while let Ok((stream, addr)) = self.inbox.try_recv() {
            let key = self.conns.vacant_key();
            let info = ClientInfo {
                addr: Some(addr),
                secure: false,
            };
            match Conn::new(&self.ctx, key, stream, info, self.poll.registry()) {
                Ok(conn) => {
                    self.conns.insert(key, conn);
                    self.drive(key);
                }
                Err(e) => log::warn!("{addr}: cannot register the connection: {e}"),
            }
        }
    }

    /// Drives one connection and files it by what it left: closed, busy, or waiting.
    fn drive(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        match conn.drive(&self.ctx, self.poll.registry()) {
            Progress::Closed(_) => {
                self.conns.remove(key);
                return;
            }
            Progress::Busy => self.busy.push(key),
            Progress::Idle => {}
        }
        if let Some(at) = conn.deadline() {
            if conn.scheduled.map_or(true, |s| at < s) {
                conn.scheduled = Some(at);
                self.timers.push(Reverse((at, key)));
            }
        }
    }
}

/// The connections of a worker, by key (a key is reused after its connection is removed).
#[derive(Default)]
struct Slab {
    entries: Vec<Option<Box<Conn>>>,
    free: Vec<usize>,
    len: usize,
}

impl Slab {
    /// The key the next insertion will use.
    fn vacant_key(&self) -> usize {
        self.free.last().copied().unwrap_or(self.entries.len())
    }

    /// Inserts `conn` at `key`, which must be [`vacant_key`](Self::vacant_key).
    fn insert(&mut self, key: usize, conn: Conn) {
        if self.free.last() == Some(&key) {
            self.free.pop();
        } else {
            self.entries.push(None);
        }
        self.entries[key] = Some(Box::new(conn));
        self.len += 1;
    }

    fn get_mut(&mut self, key: usize) -> Option<&mut Conn> {
        self.entries.get_mut(key)?.as_deref_mut()
    }

    fn remove(&mut self, key: usize) {
        if let Some(slot) = self.entries.get_mut(key) {
            if slot.take().is_some() {
                self.free.push(key);
                self.len -= 1;
            }
        }
    }

    fn len(&self) -> usize {
        self.len
    }
}
