//! The upstream pool's policy through its public API ([`Pool`]): LIFO reuse per upstream, the
//! idle cap, expiry, the usability check, worn-out connections. Time is an argument: the tests
//! take one base instant and move it forward.

use std::time::{Duration, Instant};

use switchyard_proto::{Pool, PoolConfig, Pooled};

fn pool(max_idle: usize) -> Pool<&'static str, u32> {
    let mut config = PoolConfig::default();
    config.max_idle_per_upstream = max_idle;
    Pool::new(config)
}

#[test]
fn checkout_returns_the_most_recently_used_connection_of_that_upstream() {
    let t0 = Instant::now();
    let mut p = pool(4);
    assert_eq!(p.checkin("a", Pooled::new(1, t0), t0), None);
    assert_eq!(p.checkin("a", Pooled::new(2, t0), t0), None);
    assert_eq!(p.checkin("b", Pooled::new(3, t0), t0), None);
    let mut expired = Vec::new();
    let any = |_: &u32| true;
    assert_eq!(
        p.checkout(&"a", t0, any, &mut expired).map(|c| c.conn),
        Some(2)
    );
    assert_eq!(
        p.checkout(&"a", t0, any, &mut expired).map(|c| c.conn),
        Some(1)
    );
    assert!(p.checkout(&"a", t0, any, &mut expired).is_none());
    assert_eq!(p.idle_count(&"b"), 1);
    assert!(expired.is_empty());
}

#[test]
fn the_cap_evicts_the_oldest_idle_connection() {
    let t0 = Instant::now();
    let mut p = pool(2);
    p.checkin("a", Pooled::new(1, t0), t0);
    p.checkin("a", Pooled::new(2, t0), t0);
    assert_eq!(p.checkin("a", Pooled::new(3, t0), t0), Some(1));
    assert_eq!(p.total_idle(), 2);
    let mut zero = pool(0);
    assert_eq!(zero.checkin("a", Pooled::new(9, t0), t0), Some(9));
}

#[test]
fn idle_connections_expire_and_are_handed_back_for_closing() {
    let t0 = Instant::now();
    let mut p = pool(4);
    p.checkin("a", Pooled::new(1, t0), t0);
    p.checkin(
        "a",
        Pooled::new(2, t0 + Duration::from_secs(30)),
        t0 + Duration::from_secs(30),
    );
    assert_eq!(p.poll_timeout(), Some(t0 + Duration::from_secs(60)));
    assert_eq!(p.handle_timeout(t0 + Duration::from_secs(60)), vec![1]);
    let mut expired = Vec::new();
    assert!(p
        .checkout(&"a", t0 + Duration::from_secs(95), |_| true, &mut expired)
        .is_none());
    assert_eq!(expired, vec![2]);
    assert_eq!(p.total_idle(), 0);
}

#[test]
fn unusable_connections_are_skipped_and_handed_back() {
    let t0 = Instant::now();
    let mut p = pool(4);
    p.checkin("a", Pooled::new(1, t0), t0);
    p.checkin("a", Pooled::new(2, t0), t0);
    let mut discard = Vec::new();
    let got = p.checkout(&"a", t0, |c| *c != 2, &mut discard);
    assert_eq!(got.map(|c| c.conn), Some(1));
    assert_eq!(discard, vec![2]);
    assert_eq!(p.total_idle(), 0);
}

#[test]
fn checkin_and_expire_hands_back_everything_to_close() {
    let t0 = Instant::now();
    let mut p = pool(1);
    p.checkin("a", Pooled::new(1, t0), t0);
    let later = t0 + Duration::from_secs(61);
    let mut closed = p.checkin_and_expire("b", Pooled::new(2, later), later);
    closed.sort_unstable();
    assert_eq!(closed, vec![1], "the expired one");
    let closed = p.checkin_and_expire("b", Pooled::new(3, later), later);
    assert_eq!(closed, vec![2], "the cap evicts the oldest");
}

#[test]
fn worn_out_connections_are_not_kept() {
    let t0 = Instant::now();
    let mut config = PoolConfig::default();
    config.max_requests = 2;
    let mut p: Pool<&str, u32> = Pool::new(config);
    let mut expired = Vec::new();
    assert_eq!(p.checkin("a", Pooled::new(1, t0), t0), None);
    let again = p.checkout(&"a", t0, |_| true, &mut expired).unwrap();
    assert_eq!(again.requests(), 1);
    assert_eq!(
        p.checkin("a", again, t0),
        Some(1),
        "second request reached the limit"
    );
    let old = Pooled::new(5, t0);
    assert_eq!(p.checkin("a", old, t0 + Duration::from_secs(3600)), Some(5));
}
