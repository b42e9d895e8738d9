//! A group of upstream servers: round-robin with failover.
//!
//! Which server gets the next connection is policy, not I/O, so it lives here once instead of
//! in each driver. For each request a [`Failover`] takes an order from the group
//! ([`UpstreamGroup::attempts`]: the round-robin choice first, then the others) and walks it as
//! the session asks for connections: a new request starts a new order, a retry after a connect
//! failure ([`Session::retry`](crate::Session::retry)) moves to the next server, and the
//! replacement of a stale pooled connection stays on the same server (the server is fine, the
//! idle connection was not). The group is shared by every connection of a listener (it is
//! `Sync`); a `Failover` belongs to one session.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Upstream servers, as `host:port` authorities, used round-robin.
#[derive(Debug)]
pub struct UpstreamGroup {
    servers: Vec<String>,
    cursor: AtomicUsize,
}

impl UpstreamGroup {
    /// A group of `servers` (`host:port` each). An empty group has no server to try.
    pub fn new(servers: Vec<String>) -> Self {
        Self {
            servers,
            cursor: AtomicUsize::new(0),
        }
    }

    /// The servers, in configuration order.
    pub fn servers(&self) -> &[String] {
        &self.servers
    }

    /// The order in which to try the servers for one new connection: every server once,
    /// starting with the next round-robin choice.
    pub fn attempts(&self) -> impl Iterator<Item = &str> + '_ {
        self.attempt_indices()
            .map(move |i| self.servers[i].as_str())
    }

    /// [`attempts`](Self::attempts), as indices into [`servers`](Self::servers).
    pub fn attempt_indices(&self) -> impl Iterator<Item = usize> {
        let n = self.servers.len();
        let start = if n == 0 {
            0
        } else {
            self.cursor.fetch_add(1, Ordering::Relaxed) % n
        };
        (0..n).map(move |i| (start + i) % n)
    }
}

/// Why a session asked for an upstream connection ([`Event::Connect`](crate::Event::Connect)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectReason {
    /// A new request: start a new failover order.
    NewRequest,
    /// The driver called [`Session::retry`](crate::Session::retry) after a failure: the next
    /// server of the order.
    Retry,
    /// A pooled connection turned out closed: another connection to the same server.
    StaleConnection,
}

/// One session's walk along the failover order of its current request.
#[derive(Debug, Default)]
pub struct Failover {
    order: Vec<usize>,
    current: usize,
}

impl Failover {
    /// The server (an index into [`UpstreamGroup::servers`]) for a connection asked for because
    /// of `reason`. `None`: the group is empty, or every server of the order was tried.
    pub fn server_for(&mut self, group: &UpstreamGroup, reason: ConnectReason) -> Option<usize> {
        match reason {
            ConnectReason::StaleConnection if !self.order.is_empty() => {}
            ConnectReason::Retry if !self.order.is_empty() => self.current += 1,
            _ => {
                self.order.clear();
                self.order.extend(group.attempt_indices());
                self.current = 0;
            }
        }
        self.order.get(self.current).copied()
    }

    /// Whether a server of the current order has not been tried yet (a failed connection may
    /// fail over to it).
    pub fn has_next(&self) -> bool {
        self.current + 1 < self.order.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_rotate_and_cover_every_server_once() {
        let group = UpstreamGroup::new(vec!["a:1".into(), "b:2".into(), "c:3".into()]);
        let first: Vec<&str> = group.attempts().collect();
        let second: Vec<&str> = group.attempts().collect();
        assert_eq!(first, vec!["a:1", "b:2", "c:3"]);
        assert_eq!(second, vec!["b:2", "c:3", "a:1"]);
        assert_eq!(UpstreamGroup::new(Vec::new()).attempts().count(), 0);
    }

    #[test]
    fn failover_walks_one_order_per_request() {
        let group = UpstreamGroup::new(vec!["a:1".into(), "b:2".into(), "c:3".into()]);
        let mut f = Failover::default();
        assert_eq!(f.server_for(&group, ConnectReason::NewRequest), Some(0));
        assert_eq!(
            f.server_for(&group, ConnectReason::StaleConnection),
            Some(0)
        );
        assert!(f.has_next());
        assert_eq!(f.server_for(&group, ConnectReason::Retry), Some(1));
        assert_eq!(f.server_for(&group, ConnectReason::Retry), Some(2));
        assert!(!f.has_next());
        assert_eq!(f.server_for(&group, ConnectReason::Retry), None);
        assert_eq!(
            f.server_for(&group, ConnectReason::NewRequest),
            Some(1),
            "rotates"
        );
        let empty = UpstreamGroup::new(Vec::new());
        assert_eq!(
            Failover::default().server_for(&empty, ConnectReason::NewRequest),
            None
        );
    }
}
