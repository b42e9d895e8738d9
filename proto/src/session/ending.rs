//! How exchanges and sessions end: refusals answered with their status, the next request of a
//! kept-alive connection, the lingering close after the last response (`Drain`), deadlines
//! expiring, and the final close with its summary.

use std::time::Instant;

use bytes::BytesMut;

use super::{Event, HeadScanner, Phase, Session, Side, Summary};
use crate::error::{Error, Timeout};
use crate::rewrite;
use crate::timer::Timer;

impl Session {
    pub(super) fn step_drain(&mut self, now: Instant) -> bool {
        let Phase::Drain { lingering } = &mut self.phase else {
            return false;
        };
        // Discard: the client's input can no longer be answered.
        self.from_client.clear();
        if *lingering {
            if self.client_eof {
                self.close(None);
                return true;
            }
            return false;
        }
        if !self.to_client.is_empty() {
            return false;
        }
        if self.client_eof {
            self.close(None);
            return true;
        }
        *lingering = true;
        self.events.push_back(Event::Shutdown(Side::Client));
        self.timers.stop_all();
        self.timers
            .set(Timer::Linger, now + self.config.timeouts.linger);
        true
    }

    pub(super) fn expire(&mut self, timer: Timer, now: Instant) {
        let timeout = match timer {
            Timer::ClientHeader => Timeout::ClientHeader,
            Timer::ClientBody => Timeout::ClientBody,
            Timer::Connect => Timeout::Connect,
            Timer::UpstreamRead => Timeout::UpstreamResponse,
            Timer::ClientSend => {
                // The client does not read what we write: nothing more can reach it.
                self.close(Some(Error::Timeout(Timeout::SendStall)));
                return;
            }
            Timer::UpstreamSend => Timeout::UpstreamSendStall,
            Timer::TunnelIdle => Timeout::TunnelIdle,
            Timer::HalfClosed => Timeout::HalfClosed,
            Timer::KeepAliveIdle => {
                self.enter_drain(now);
                return;
            }
            Timer::Linger => {
                self.close(None);
                return;
            }
            Timer::IdleBuffers => {
                self.release_idle_buffers();
                return;
            }
        };
        match &self.phase {
            Phase::ReadRequestHead(_) | Phase::Exchange(_) => {
                self.fail(Error::Timeout(timeout), now)
            }
            _ => self.close(Some(Error::Timeout(timeout))),
        }
    }

    /// Ends the current request with `error`: the client gets the error's status if no response
    /// head was sent to it yet, else the connection is closed.
    pub(super) fn fail(&mut self, error: Error, now: Instant) {
        let (answerable, head_request) = match &self.phase {
            Phase::ReadRequestHead(_) => (true, false),
            Phase::Exchange(x) => (!x.response_started(), x.is_head_request()),
            _ => (false, false),
        };
        if !answerable {
            self.close(Some(error));
            return;
        }
        self.release_upstream(false);
        self.to_upstream.clear();
        let status = error.status();
        let mut head = BytesMut::new();
        rewrite::write_error_response(status, head_request, &mut head);
        self.to_client.push(head.freeze());
        self.status = Some(status.0);
        self.failure = Some(error);
        self.enter_drain(now);
    }

    /// Keep-alive: the client connection waits for its next request (which may already be
    /// buffered: pipelining).
    pub(super) fn await_next_request(&mut self, now: Instant) {
        self.phase = Phase::ReadRequestHead(HeadScanner::default());
        self.upstream_eof = false;
        if self.from_client.is_empty() {
            self.timers.set(
                Timer::KeepAliveIdle,
                now + self.config.timeouts.keepalive_idle,
            );
        } else {
            self.timers.set(
                Timer::ClientHeader,
                now + self.config.timeouts.client_header,
            );
        }
    }

    /// Flushes what is queued for the client, then lingers and closes.
    pub(super) fn enter_drain(&mut self, now: Instant) {
        self.timers.stop_all();
        self.phase = Phase::Drain { lingering: false };
        self.arm_send_timer(Side::Client, now);
    }

    /// Emits [`Event::ReleaseUpstream`] if an upstream connection is held.
    pub(super) fn release_upstream(&mut self, reusable: bool) {
        if self.upstream_open {
            self.upstream_open = false;
            self.upstream_connected = false;
            self.events.push_back(Event::ReleaseUpstream { reusable });
        }
        self.to_upstream.clear();
        self.from_upstream.clear();
    }

    /// Ends the session now.
    pub(super) fn close(&mut self, error: Option<Error>) {
        if matches!(self.phase, Phase::Closed) {
            return;
        }
        self.release_upstream(false);
        self.phase = Phase::Closed;
        self.timers.stop_all();
        self.to_client.clear();
        self.from_client.clear();
        self.from_client.release_if_empty();
        self.from_upstream.release_if_empty();
        let error = error.or(self.failure.take());
        self.events.push_back(Event::Close(Summary {
            error,
            status: self.status,
            tunnelled: self.tunnelled,
            counters: self.counters,
        }));
    }
}
