//! The tunnel: after a validated 101, bytes move between the peers in order and unmodified.
//!
//! Each direction is a [`Flow`]: bytes read from its source go, zero-copy, to its destination's
//! queue, whose size bounds the source's read window (backpressure). A FIN from a source is
//! passed on as a shutdown of the destination's write side once every byte before it was
//! written (half-close), or ends the whole tunnel in the nginx-compatible mode.

use std::time::Instant;

use super::{Event, Phase, Session, Side};
use crate::config::HalfClose;
use crate::timer::Timer;
use crate::upgrade::UpgradeAccepted;

/// Per-direction state of the tunnel (the source's EOF is the session's own flag).
#[derive(Debug, Default)]
pub(super) struct Flow {
    /// [`Event::Shutdown`] was emitted for the destination peer.
    shut: bool,
}

impl Flow {
    /// Ends the direction if its source sent EOF and every byte before it was written; returns
    /// whether it ended just now.
    fn end_if_drained(&mut self, source_eof: bool, queue_empty: bool) -> bool {
        if self.shut || !source_eof || !queue_empty {
            return false;
        }
        self.shut = true;
        true
    }
}

/// The tunnel's state: one [`Flow`] per direction.
#[derive(Debug)]
pub(super) struct Tunnel {
    /// Client → upstream.
    upstream_bound: Flow,
    /// Upstream → client.
    client_bound: Flow,
}

impl Tunnel {
    /// A tunnel exists only with the proof that a 101 was validated against the client's offer.
    pub(super) fn new(accepted: UpgradeAccepted) -> Self {
        drop(accepted);
        Self {
            upstream_bound: Flow::default(),
            client_bound: Flow::default(),
        }
    }

    /// Whether one direction has ended.
    pub(super) fn half_closed(&self) -> bool {
        self.upstream_bound.shut || self.client_bound.shut
    }
}

impl Session {
    /// Relays what was read and propagates EOFs; returns whether anything changed.
    pub(super) fn step_tunnel(&mut self, now: Instant) -> bool {
        let Phase::Tunnel(tunnel) = &mut self.phase else {
            return false;
        };
        // Relay: every received byte moves, zero-copy, to the other peer's queue.
        if !self.from_client.is_empty() {
            let bytes = self.from_client.take_all();
            self.counters.tunnel_to_upstream += bytes.len() as u64;
            self.to_upstream.push(bytes);
        }
        if !self.from_upstream.is_empty() {
            let bytes = self.from_upstream.take_all();
            self.counters.tunnel_to_client += bytes.len() as u64;
            self.to_client.push(bytes);
        }
        let close_both = self.config.half_close == HalfClose::CloseBoth;
        let shut_upstream = tunnel
            .upstream_bound
            .end_if_drained(self.client_eof, self.to_upstream.is_empty());
        let shut_client = tunnel
            .client_bound
            .end_if_drained(self.upstream_eof, self.to_client.is_empty());
        let shut_now = [(shut_upstream, Side::Upstream), (shut_client, Side::Client)];
        let done = tunnel.upstream_bound.shut && tunnel.client_bound.shut;
        if !shut_upstream && !shut_client {
            return false;
        }
        if close_both || done {
            // nginx mode: the first side to finish (its bytes delivered) ends the tunnel.
            self.close(None);
            return true;
        }
        for (_, side) in shut_now.iter().filter(|(now, _)| *now) {
            self.events.push_back(Event::Shutdown(*side));
        }
        self.timers
            .set(Timer::HalfClosed, now + self.config.timeouts.half_closed);
        true
    }
}
