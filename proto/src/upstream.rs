//! A group of upstream servers: round-robin with failover.
//!
//! Which server gets the next connection is policy, not I/O, so it lives here once instead of
//! in each driver. A driver asks [`UpstreamGroup::attempts`] for the order to try servers in for
//! one connection: the first is the round-robin choice, the others are the failover candidates
//! if connecting fails (see [`Session::retry`](crate::Session::retry)). The group is shared by
//! every connection of a listener (it is `Sync`).

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
        let n = self.servers.len();
        let start = if n == 0 {
            0
        } else {
            self.cursor.fetch_add(1, Ordering::Relaxed) % n
        };
        (0..n).map(move |i| self.servers[(start + i) % n].as_str())
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
}
