//! Session deadlines, kept for all the sessions of a [`Context`](crate::Context) by one thread.
//!
//! Why not one `async_io::Timer` per session: async-io wakes its reactor every time a timer is
//! inserted (an eventfd write, then an extra epoll round of about five system calls), and a
//! session moves its deadline several times in its first milliseconds (request head, connect,
//! response head, buffer release). Here a session's deadline is an entry in one ordered map and
//! one thread sleeps until the earliest entry: registering a deadline costs a map insertion, and
//! a system call only when it is earlier than every other entry (the thread must then wake up
//! sooner). A session keeps its entry while its deadline moves later (each read in a tunnel
//! pushes the idle timeout back): the entry then fires early, the session finds its deadline not
//! reached yet, and registers the new one. Expired entries wake their sessions, which ask
//! [`Session::handle_timeout`](switchyard_proto::Session::handle_timeout) what to do: the thread
//! decides nothing.
//!
//! The thread starts with the first registration and is stopped and joined when the context is
//! dropped.

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::Waker;
use std::thread::{self, JoinHandle};
use std::time::Instant;

/// The deadlines of every session of a context, and the thread that fires them.
#[derive(Debug, Default)]
pub(crate) struct Deadlines {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// What the sessions and the thread share.
#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    /// Signalled when an entry earlier than the thread's wake-up time arrives, or on stop.
    changed: Condvar,
}

#[derive(Debug, Default)]
struct State {
    /// Entries by deadline; the `u64` tells entries with the same deadline apart.
    entries: BTreeMap<Key, Waker>,
    next_id: u64,
    /// The thread is waiting for [`Shared::changed`] (only then does a new entry signal it).
    asleep: bool,
    /// When a waiting thread looks again by itself (`None`: only when signalled).
    sleeping_until: Option<Instant>,
    stop: bool,
}

type Key = (Instant, u64);

/// A session's entry in [`Deadlines`], if it has one.
#[derive(Debug, Default)]
pub(crate) struct Registration {
    key: Option<Key>,
}

impl Deadlines {
    /// Makes sure the task of `waker` is woken at `deadline` or before. An entry already
    /// registered for an earlier instant that has not passed is kept (it fires early and the
    /// session registers again); `waker` must be the same task's each time.
    pub(crate) fn register(
        &self,
        registration: &mut Registration,
        deadline: Instant,
        now: Instant,
        waker: &Waker,
    ) {
        if let Some((at, _)) = registration.key {
            if at > now && at <= deadline {
                return;
            }
        }
        let mut state = self.shared.lock();
        if let Some(key) = registration.key.take() {
            state.entries.remove(&key);
        }
        let key = (deadline, state.next_id);
        state.next_id += 1;
        state.entries.insert(key, waker.clone());
        registration.key = Some(key);
        let sooner = state.asleep && state.sleeping_until.map_or(true, |at| deadline < at);
        drop(state);
        if sooner {
            self.shared.changed.notify_one();
        }
        self.ensure_thread();
    }

    /// Removes a session's entry (the session ended).
    pub(crate) fn cancel(&self, registration: &mut Registration) {
        if let Some(key) = registration.key.take() {
            self.shared.lock().entries.remove(&key);
        }
    }

    /// Starts the thread if it is not running. A failure (out of threads) is logged and tried
    /// again at the next registration.
    fn ensure_thread(&self) {
        let mut thread = self.thread.lock().unwrap_or_else(PoisonError::into_inner);
        if thread.is_some() {
            return;
        }
        let shared = Arc::clone(&self.shared);
        match thread::Builder::new()
            .name("switchyard-timers".to_owned())
            .spawn(move || shared.run())
        {
            Ok(handle) => *thread = Some(handle),
            Err(e) => log::error!("cannot start the deadline thread (retrying): {e}"),
        }
    }
}

impl Drop for Deadlines {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.changed.notify_one();
        let thread = self
            .thread
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(thread) = thread.take() {
            if thread.join().is_err() {
                log::error!("the deadline thread panicked");
            }
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update of the state is complete before anything that could panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The thread: wakes the sessions whose deadline passed, sleeps until the next one.
    fn run(&self) {
        let mut state = self.lock();
        let mut due = Vec::new();
        while !state.stop {
            let now = Instant::now();
            while let Some(entry) = state.entries.first_entry() {
                if entry.key().0 > now {
                    break;
                }
                due.push(entry.remove());
            }
            if !due.is_empty() {
                // Wake outside the lock: a waker may run the session's task on this thread's
                // call (and so register again).
                drop(state);
                due.drain(..).for_each(Waker::wake);
                state = self.lock();
                continue;
            }
            let next = state.entries.first_key_value().map(|((at, _), _)| *at);
            state.sleeping_until = next;
            state.asleep = true;
            state = match next {
                None => self
                    .changed
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(at) => {
                    self.changed
                        .wait_timeout(state, at.saturating_duration_since(now))
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
            state.asleep = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;
    use std::time::Duration;

    /// Counts its wake-ups.
    #[derive(Default)]
    struct Counter(AtomicUsize);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn wait_for(counter: &Counter, n: usize) -> bool {
        let limit = Instant::now() + Duration::from_secs(5);
        while Instant::now() < limit {
            if counter.0.load(Ordering::SeqCst) >= n {
                return true;
            }
            thread::sleep(Duration::from_millis(1));
        }
        false
    }

    /// A table, a counting waker and a registration, at `now`.
    struct Fixture {
        deadlines: Deadlines,
        counter: Arc<Counter>,
        waker: Waker,
        now: Instant,
        reg: Registration,
    }

    impl Fixture {
        fn new() -> Self {
            let counter = Arc::new(Counter::default());
            Self {
                deadlines: Deadlines::default(),
                waker: Waker::from(Arc::clone(&counter)),
                counter,
                now: Instant::now(),
                reg: Registration::default(),
            }
        }

        /// Registers `reg` for `after` from the fixture's start.
        fn register(&mut self, after: Duration) {
            let at = self.now + after;
            self.deadlines
                .register(&mut self.reg, at, Instant::now(), &self.waker);
        }

        fn woken(&self) -> usize {
            self.counter.0.load(Ordering::SeqCst)
        }
    }

    #[test]
    fn fires_at_the_deadline_not_before() {
        let mut f = Fixture::new();
        f.register(Duration::from_millis(50));
        thread::sleep(Duration::from_millis(20));
        assert_eq!(f.woken(), 0);
        assert!(wait_for(&f.counter, 1));
        assert!(f.now.elapsed() >= Duration::from_millis(50));
    }

    #[test]
    fn an_earlier_deadline_wakes_the_sleeping_thread() {
        let mut f = Fixture::new();
        let mut far = Registration::default();
        f.deadlines
            .register(&mut far, f.now + Duration::from_secs(3600), f.now, &f.waker);
        thread::sleep(Duration::from_millis(10));
        f.register(Duration::from_millis(20));
        assert!(wait_for(&f.counter, 1));
        assert!(f.now.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_later_deadline_keeps_the_entry_and_a_cancelled_one_never_fires() {
        let mut f = Fixture::new();
        f.register(Duration::from_millis(30));
        let kept = f.reg.key;
        f.register(Duration::from_secs(60));
        assert_eq!(f.reg.key, kept, "a later deadline keeps the earlier entry");
        // An earlier one replaces it.
        f.register(Duration::from_millis(10));
        assert_ne!(f.reg.key, kept);
        assert_eq!(f.deadlines.shared.lock().entries.len(), 1);
        f.deadlines.cancel(&mut f.reg);
        thread::sleep(Duration::from_millis(60));
        assert_eq!(f.woken(), 0);
    }

    #[test]
    fn an_entry_that_fired_is_registered_again() {
        let mut f = Fixture::new();
        f.register(Duration::from_millis(5));
        assert!(wait_for(&f.counter, 1));
        // The session's deadline moved later meanwhile: its old entry is gone.
        f.now = Instant::now();
        f.register(Duration::from_millis(5));
        assert!(wait_for(&f.counter, 2));
    }

    #[test]
    fn dropping_stops_the_thread() {
        let mut f = Fixture::new();
        f.register(Duration::from_secs(3600));
        assert!(f.deadlines.thread.lock().unwrap().is_some());
        drop(f); // joins; a hang here fails the test by timeout
    }
}
