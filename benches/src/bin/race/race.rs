//! One test against one running proxy, turned into the table's metrics: this is where a
//! measurement ([`load`]) becomes rows of [`Results`], and where failures become
//! notes under the table.

use std::time::Duration;

use tokio::runtime::Runtime;

use crate::load::{self, Measured, Window};
use crate::procs::{self, Proxy};
use crate::report::{Results, METRICS};
use crate::Plan;

/// The tests, in the order a round runs them. The idle test comes first, so that it sees
/// freshly started proxies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Test {
    Idle,
    Upgrades,
    Throughput,
    PingPong,
    KeepAlive,
}

impl Test {
    pub(crate) const ALL: [Self; 5] = [
        Self::Idle,
        Self::Upgrades,
        Self::Throughput,
        Self::PingPong,
        Self::KeepAlive,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Upgrades => "upgrades",
            Self::Throughput => "throughput",
            Self::PingPong => "pingpong",
            Self::KeepAlive => "keepalive",
        }
    }

    pub(crate) fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// Concurrent connections of the upgrade and keep-alive tests.
const CONNECTIONS: usize = 50;

/// Tunnels of the throughput test, and the size of each write.
const STREAMS: usize = 8;
const WRITE_SIZE: usize = 64 * 1024;

/// Size of a ping-pong message.
const PING_SIZE: usize = 64;

/// Idle tunnels being opened at once.
const OPENING: usize = 100;

/// Notes gathered while racing, printed under the table.
#[derive(Debug, Default)]
pub(crate) struct Notes {
    pub(crate) load: Vec<String>,
    pub(crate) problems: Vec<String>,
}

/// The state of a race: the load generator's runtime, the plan, what was measured so far.
pub(crate) struct Race {
    runtime: Runtime,
    pub(crate) plan: Plan,
    ticks: f64,
    pub(crate) results: Results,
    pub(crate) notes: Notes,
}

impl Race {
    pub(crate) fn new(runtime: Runtime, plan: Plan) -> Self {
        Self {
            runtime,
            plan,
            ticks: procs::clock_ticks_per_second() as f64,
            results: Results::default(),
            notes: Notes::default(),
        }
    }

    /// Runs `test` once against `proxy` and records its metrics.
    pub(crate) fn run(&mut self, test: Test, round: usize, proxy: &Proxy) {
        let kind = proxy.kind;
        let name = kind.name();
        let pids = proxy.process.pids();
        let addr = proxy.process.addr;
        let w = Window {
            warmup: self.plan.warmup,
            length: self.plan.seconds,
        };
        match test {
            Test::Idle => self.idle(round, proxy),
            Test::Upgrades => {
                let m = self.block_on(load::upgrades(addr, CONNECTIONS, w, &pids));
                self.check(round, "upgrades", name, &m);
                let per = self.cpu_us(&m) / m.count.max(1) as f64;
                let busy = self.busy(&m);
                let r = &mut self.results;
                r.record(kind, "upgrades", m.rate());
                r.record(kind, "upgrade_p50", m.quantile(0.5) / 1e6);
                r.record(kind, "upgrade_p99", m.quantile(0.99) / 1e6);
                r.record(kind, "cpu_per_upgrade", per);
                r.record(kind, "busy_upgrades", busy);
                let total = m.cpu.total().max(1) as f64;
                r.record(
                    kind,
                    "user_share_upgrades",
                    m.cpu.user as f64 / total * 100.0,
                );
                eprintln!(
                    "race:   upgrades {name}: {:.0}/s, {per:.1} µs CPU each",
                    m.rate()
                );
            }
            Test::Throughput => {
                let m = self.block_on(load::throughput(addr, STREAMS, WRITE_SIZE, w, &pids));
                self.check(round, "throughput", name, &m);
                let per_mb = self.cpu_us(&m) / (m.count as f64 / 1e6).max(1.0);
                let busy = self.busy(&m);
                let r = &mut self.results;
                r.record(kind, "throughput", m.rate() / 1e6);
                r.record(kind, "cpu_per_mb", per_mb);
                r.record(kind, "busy_throughput", busy);
                eprintln!("race:   throughput {name}: {:.0} MB/s", m.rate() / 1e6);
            }
            Test::PingPong => {
                let w = Window {
                    warmup: self.plan.warmup,
                    length: self.plan.ping_seconds,
                };
                for (conns, prefix) in [(1, "pp1"), (100, "pp100")] {
                    let m = self.block_on(load::ping_pong(addr, conns, PING_SIZE, w, &pids));
                    self.check(round, prefix, name, &m);
                    let us = |q| m.quantile(q) / 1e3;
                    let per = self.cpu_us(&m) / m.count.max(1) as f64;
                    let r = &mut self.results;
                    r.record(kind, key(prefix, "p50"), us(0.5));
                    r.record(kind, key(prefix, "p99"), us(0.99));
                    r.record(kind, key(prefix, "p999"), us(0.999));
                    r.record(kind, key(prefix, "rate"), m.rate());
                    r.record(kind, key(prefix, "cpu"), per);
                    eprintln!(
                        "race:   ping-pong x{conns} {name}: p50 {:.1} p99 {:.1} µs",
                        us(0.5),
                        us(0.99)
                    );
                }
            }
            Test::KeepAlive => {
                let m = self.block_on(load::keep_alive(addr, CONNECTIONS, w, &pids));
                self.check(round, "keep-alive", name, &m);
                let per = self.cpu_us(&m) / m.count.max(1) as f64;
                let busy = self.busy(&m);
                let r = &mut self.results;
                r.record(kind, "requests", m.rate());
                r.record(kind, "request_p50", m.quantile(0.5) / 1e6);
                r.record(kind, "request_p99", m.quantile(0.99) / 1e6);
                r.record(kind, "cpu_per_request", per);
                r.record(kind, "busy_requests", busy);
                eprintln!(
                    "race:   keep-alive {name}: {:.0}/s, {per:.1} µs CPU each",
                    m.rate()
                );
            }
        }
    }

    /// Memory per idle tunnel; then waits for the proxy to close them all.
    fn idle(&mut self, round: usize, proxy: &Proxy) {
        let name = proxy.kind.name();
        let pids = proxy.process.pids();
        let fds = procs::open_fds(&pids);
        let wanted = self.plan.idle_tunnels;
        let idle = self.block_on(load::idle_memory(
            proxy.process.addr,
            wanted,
            OPENING,
            self.plan.settle,
            &pids,
        ));
        let kib = idle.per_tunnel() / 1024.0;
        eprintln!(
            "race:   idle {name}: {} tunnels, RSS {} -> {} KiB, {kib:.2} KiB per tunnel",
            idle.tunnels,
            idle.rss_before / 1024,
            idle.rss_after / 1024
        );
        if idle.errors > 0 || idle.tunnels < wanted {
            self.notes.problems.push(format!(
                "round {round}, idle tunnels, {name}: {} of {wanted} opened, {} errors (first: {})",
                idle.tunnels,
                idle.errors,
                idle.first_error.as_deref().unwrap_or("-")
            ));
        }
        self.results.record(proxy.kind, "idle_kib", kib);
        if !procs::wait_for_fds(&pids, fds, 64, Duration::from_secs(60)) {
            self.notes.problems.push(format!(
                "round {round}: {name} still had {} descriptors open 60 s after the idle test \
                 (before: {fds})",
                procs::open_fds(&pids)
            ));
        }
    }

    fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }

    /// The proxy's CPU time in the window, in microseconds.
    fn cpu_us(&self, m: &Measured) -> f64 {
        m.cpu.total() as f64 / self.ticks * 1e6
    }

    /// The share of one core the proxy used during the window, in percent.
    fn busy(&self, m: &Measured) -> f64 {
        m.cpu.total() as f64 / self.ticks / m.seconds * 100.0
    }

    fn check(&mut self, round: usize, test: &str, name: &str, m: &Measured) {
        if m.errors > 0 {
            let line = format!(
                "round {round}, {test}, {name}: {} errors (first: {})",
                m.errors,
                m.first_error.as_deref().unwrap_or("-")
            );
            eprintln!("race:   {line}");
            self.notes.problems.push(line);
        }
    }
}

/// The metric key `prefix_suffix` as one of the static keys of [`METRICS`].
fn key(prefix: &str, suffix: &str) -> &'static str {
    let wanted = format!("{prefix}_{suffix}");
    METRICS
        .iter()
        .find(|m| m.key == wanted)
        .map_or("unknown", |m| m.key)
}
