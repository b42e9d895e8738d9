//! Every deadline of a session, as one table.
//!
//! Each [`Timer`] is a slot holding an optional `Instant`. The earliest armed slot is what
//! `Session::poll_timeout` returns, and `Session::handle_timeout` acts on every slot that has
//! expired, in the order of [`Timer::ALL`]. Nothing here reads a clock.

use std::time::Instant;

/// One deadline a session can be waiting on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Timer {
    /// The client request head must be complete by then (armed once, not pushed back).
    ClientHeader,
    /// The client must send more of its request body by then.
    ClientBody,
    /// The upstream connection must be established by then.
    Connect,
    /// The upstream must send (more of) its response by then.
    UpstreamRead,
    /// The client must accept more of what we write by then.
    ClientSend,
    /// The upstream must accept more of what we write by then.
    UpstreamSend,
    /// The tunnel must see a byte in some direction by then.
    TunnelIdle,
    /// A half-closed tunnel must see a byte by then.
    HalfClosed,
    /// A kept-alive client must start its next request by then.
    KeepAliveIdle,
    /// Lingering close: stop discarding client input by then.
    Linger,
    /// Nothing was read for a while: free the empty receive buffers then, so that an idle
    /// connection holds no data buffer while a busy one never reallocates per read.
    IdleBuffers,
}

impl Timer {
    /// Every timer, in the order expired timers are handled.
    pub const ALL: [Self; 11] = [
        Self::ClientHeader,
        Self::ClientBody,
        Self::Connect,
        Self::UpstreamRead,
        Self::ClientSend,
        Self::UpstreamSend,
        Self::TunnelIdle,
        Self::HalfClosed,
        Self::KeepAliveIdle,
        Self::Linger,
        Self::IdleBuffers,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// The deadline of each [`Timer`].
#[derive(Debug, Clone, Default)]
pub(crate) struct TimerTable {
    deadlines: [Option<Instant>; Timer::ALL.len()],
}

impl TimerTable {
    /// Arms `timer` to fire at `at` (re-arming moves the deadline).
    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        self.deadlines[timer.index()] = Some(at);
    }

    /// Disarms `timer`.
    pub(crate) fn stop(&mut self, timer: Timer) {
        self.deadlines[timer.index()] = None;
    }

    /// Whether `timer` is armed.
    pub(crate) fn is_set(&self, timer: Timer) -> bool {
        self.deadlines[timer.index()].is_some()
    }

    /// Disarms every timer.
    pub(crate) fn stop_all(&mut self) {
        self.deadlines = Default::default();
    }

    /// The earliest armed deadline and its timer.
    pub(crate) fn next(&self) -> Option<(Timer, Instant)> {
        Timer::ALL
            .iter()
            .filter_map(|&t| self.deadlines[t.index()].map(|at| (t, at)))
            .min_by_key(|&(_, at)| at)
    }

    /// The first timer (in [`Timer::ALL`] order) whose deadline is at or before `now`; disarms it.
    pub(crate) fn take_expired(&mut self, now: Instant) -> Option<Timer> {
        let timer = Timer::ALL
            .iter()
            .copied()
            .find(|t| self.deadlines[t.index()].is_some_and(|at| at <= now))?;
        self.stop(timer);
        Some(timer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn next_is_the_earliest_and_expiry_disarms() {
        let t0 = Instant::now();
        let mut table = TimerTable::default();
        assert_eq!(table.next(), None);
        table.set(Timer::TunnelIdle, t0 + Duration::from_secs(10));
        table.set(Timer::ClientSend, t0 + Duration::from_secs(5));
        assert_eq!(
            table.next(),
            Some((Timer::ClientSend, t0 + Duration::from_secs(5)))
        );
        assert_eq!(table.take_expired(t0), None);
        assert_eq!(
            table.take_expired(t0 + Duration::from_secs(5)),
            Some(Timer::ClientSend)
        );
        assert!(!table.is_set(Timer::ClientSend));
        assert_eq!(
            table.next(),
            Some((Timer::TunnelIdle, t0 + Duration::from_secs(10)))
        );
    }
}
