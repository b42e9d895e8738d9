//! The upstream connection pool's policy, without any I/O.
//!
//! Connection reuse is most of a proxy's efficiency, and reusing the wrong connection is a
//! classic source of desync bugs. A [`Session`](crate::Session) says, at each response end,
//! whether its upstream connection may be reused ([`Event::ReleaseUpstream`](crate::Event));
//! this module decides *where* reusable connections wait and for how long: one idle list per
//! upstream, a cap on idle connections per upstream, an idle timeout, a maximum number of
//! requests and a maximum lifetime per connection (nginx's `keepalive 32`, `keepalive_timeout
//! 60s`, `keepalive_requests 1000`, `keepalive_time 1h`). Drivers own the connections; the pool
//! only stores and hands them back, generic over the connection type `C` and the upstream key
//! `K`.
//!
//! A driver never checks in a connection the session did not release as reusable, so a
//! connection that saw an error is never reused. Before reusing a connection a driver should
//! still make sure it has not been closed by the upstream while idle (a readable idle socket is
//! either closed or misbehaving: drop it); if it misses one, the session replaces it by itself
//! when that is safe ([`Session::handle_connected_reused`](crate::Session::handle_connected_reused)).

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Limits of the idle connection pool.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolConfig {
    /// Idle connections kept per upstream (nginx `keepalive 32`). Zero disables pooling.
    pub max_idle_per_upstream: usize,
    /// An idle connection is closed after this (nginx `keepalive_timeout 60s`).
    pub idle_timeout: Duration,
    /// A connection is closed after serving this many requests (nginx `keepalive_requests`).
    pub max_requests: u32,
    /// A connection is not reused once this old (nginx `keepalive_time 1h`).
    pub max_lifetime: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            max_idle_per_upstream: 32,
            idle_timeout: Duration::from_secs(60),
            max_requests: 1000,
            max_lifetime: Duration::from_secs(3600),
        }
    }
}

/// A connection with the bookkeeping the pool needs: when it was opened and how many requests
/// it served.
#[derive(Debug)]
pub struct Pooled<C> {
    /// The connection.
    pub conn: C,
    created: Instant,
    requests: u32,
}

impl<C> Pooled<C> {
    /// Wraps a connection opened at `now`.
    pub fn new(conn: C, now: Instant) -> Self {
        Self {
            conn,
            created: now,
            requests: 0,
        }
    }

    /// Requests this connection completed.
    pub fn requests(&self) -> u32 {
        self.requests
    }
}

/// An idle connection and when it became idle.
#[derive(Debug)]
struct Idle<C> {
    pooled: Pooled<C>,
    since: Instant,
}

/// Idle upstream connections, per upstream key.
#[derive(Debug)]
pub struct Pool<K, C> {
    config: PoolConfig,
    idle: HashMap<K, Vec<Idle<C>>>,
}

impl<K: Hash + Eq + Clone, C> Pool<K, C> {
    /// An empty pool.
    pub fn new(config: PoolConfig) -> Self {
        Self {
            config,
            idle: HashMap::new(),
        }
    }

    /// Idle connections kept for `key`.
    pub fn idle_count(&self, key: &K) -> usize {
        self.idle.get(key).map_or(0, Vec::len)
    }

    /// Idle connections kept in all.
    pub fn total_idle(&self) -> usize {
        self.idle.values().map(Vec::len).sum()
    }

    /// The most recently used idle connection for `key` that is still fresh and that `usable`
    /// accepts (drivers check that the upstream did not close it while idle). Most recently
    /// used first: it is the least likely to have been closed. Connections found expired or
    /// unusable on the way are returned in `discard`, for the caller to close.
    pub fn checkout(
        &mut self,
        key: &K,
        now: Instant,
        mut usable: impl FnMut(&C) -> bool,
        discard: &mut Vec<C>,
    ) -> Option<Pooled<C>> {
        let list = self.idle.get_mut(key)?;
        let mut found = None;
        while let Some(idle) = list.pop() {
            if self.config.is_fresh(&idle, now) && usable(&idle.pooled.conn) {
                found = Some(idle.pooled);
                break;
            }
            discard.push(idle.pooled.conn);
        }
        if list.is_empty() {
            self.idle.remove(key);
        }
        found
    }

    /// Returns a connection the session released as reusable after one more completed
    /// request. Returns the connection to close instead, if any: this one (too old, too used,
    /// pooling disabled) or the oldest idle one of `key` when the cap is reached.
    pub fn checkin(&mut self, key: K, mut pooled: Pooled<C>, now: Instant) -> Option<C> {
        pooled.requests = pooled.requests.saturating_add(1);
        if self.config.max_idle_per_upstream == 0
            || pooled.requests >= self.config.max_requests
            || now.saturating_duration_since(pooled.created) >= self.config.max_lifetime
        {
            return Some(pooled.conn);
        }
        let list = self.idle.entry(key).or_default();
        let evicted = if list.len() >= self.config.max_idle_per_upstream {
            Some(list.remove(0).pooled.conn)
        } else {
            None
        };
        list.push(Idle { pooled, since: now });
        evicted
    }

    /// [`checkin`](Self::checkin), then [`handle_timeout`](Self::handle_timeout): everything
    /// the caller must close now (the refused or evicted connection, and the expired ones), in
    /// one call, so drivers can close them outside whatever lock guards the pool.
    pub fn checkin_and_expire(&mut self, key: K, pooled: Pooled<C>, now: Instant) -> Vec<C> {
        let refused = self.checkin(key, pooled, now);
        let mut to_close = self.handle_timeout(now);
        to_close.extend(refused);
        to_close
    }

    /// When the next idle connection expires.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.idle
            .values()
            .flatten()
            .map(|idle| self.config.expiry(idle))
            .min()
    }

    /// Removes and returns every connection expired at `now`, for the caller to close.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<C> {
        let mut expired = Vec::new();
        let config = &self.config;
        for list in self.idle.values_mut() {
            let mut i = 0;
            while i < list.len() {
                if config.is_fresh(&list[i], now) {
                    i += 1;
                } else {
                    expired.push(list.remove(i).pooled.conn);
                }
            }
        }
        self.idle.retain(|_, list| !list.is_empty());
        expired
    }
}

impl PoolConfig {
    fn expiry<C>(&self, idle: &Idle<C>) -> Instant {
        (idle.since + self.idle_timeout).min(idle.pooled.created + self.max_lifetime)
    }

    fn is_fresh<C>(&self, idle: &Idle<C>, now: Instant) -> bool {
        now < self.expiry(idle)
    }
}
