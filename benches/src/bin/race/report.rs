//! The race's results: the metrics with their targets, the rounds' values per proxy, and the
//! one markdown table they are printed as (median of the rounds, min–max spread, ratios to
//! nginx, target met or missed).

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::procs::Kind;

/// A target, relative to nginx or absolute.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Target {
    /// switchyard / nginx at least this.
    RatioAtLeast(f64),
    /// switchyard / nginx at most this.
    RatioAtMost(f64),
    /// switchyard's own value at most this (in the metric's unit).
    AtMost(f64),
}

/// One row of the table.
#[derive(Debug)]
pub(crate) struct Metric {
    pub(crate) key: &'static str,
    pub(crate) label: &'static str,
    pub(crate) decimals: usize,
    pub(crate) target: Option<Target>,
}

const fn metric(key: &'static str, label: &'static str, decimals: usize) -> Metric {
    Metric {
        key,
        label,
        decimals,
        target: None,
    }
}

const fn with(mut m: Metric, target: Target) -> Metric {
    m.target = Some(target);
    m
}

/// Every metric, in table order. The keys are what `main` records values under.
pub(crate) const METRICS: &[Metric] = &[
    with(
        metric(
            "upgrades",
            "upgrades/s (50 conns: connect, upgrade, 16 B echo, close)",
            0,
        ),
        Target::RatioAtLeast(1.3),
    ),
    metric("upgrade_p50", "upgrade cycle p50 (ms)", 2),
    metric("upgrade_p99", "upgrade cycle p99 (ms)", 2),
    with(
        metric("cpu_per_upgrade", "proxy CPU per upgrade (µs)", 1),
        Target::RatioAtMost(0.7),
    ),
    metric("busy_upgrades", "proxy CPU busy during upgrades (%)", 0),
    metric(
        "user_share_upgrades",
        "of which in user space (%; the rest is the kernel: TCP and system calls)",
        0,
    ),
    with(
        metric(
            "throughput",
            "tunnel throughput (MB/s echoed, 8 tunnels, 64 KiB writes)",
            0,
        ),
        Target::RatioAtLeast(1.5),
    ),
    metric("cpu_per_mb", "proxy CPU per MB echoed (µs)", 1),
    metric("busy_throughput", "proxy CPU busy during throughput (%)", 0),
    metric("pp1_p50", "ping-pong 64 B, 1 conn: p50 (µs)", 1),
    with(
        metric("pp1_p99", "ping-pong 64 B, 1 conn: p99 (µs)", 1),
        Target::RatioAtMost(0.8),
    ),
    metric("pp1_p999", "ping-pong 64 B, 1 conn: p99.9 (µs)", 1),
    metric("pp1_rate", "ping-pong 64 B, 1 conn: round trips/s", 0),
    metric(
        "pp1_cpu",
        "ping-pong 64 B, 1 conn: proxy CPU per round trip (µs)",
        1,
    ),
    metric("pp100_p50", "ping-pong 64 B, 100 conns: p50 (µs)", 1),
    with(
        metric("pp100_p99", "ping-pong 64 B, 100 conns: p99 (µs)", 1),
        Target::RatioAtMost(0.8),
    ),
    metric("pp100_p999", "ping-pong 64 B, 100 conns: p99.9 (µs)", 1),
    metric("pp100_rate", "ping-pong 64 B, 100 conns: round trips/s", 0),
    metric(
        "pp100_cpu",
        "ping-pong 64 B, 100 conns: proxy CPU per round trip (µs)",
        1,
    ),
    with(
        metric(
            "requests",
            "keep-alive requests/s (50 conns, no pipelining)",
            0,
        ),
        Target::RatioAtLeast(1.2),
    ),
    metric("request_p50", "keep-alive request p50 (ms)", 3),
    metric("request_p99", "keep-alive request p99 (ms)", 3),
    metric(
        "cpu_per_request",
        "proxy CPU per keep-alive request (µs)",
        1,
    ),
    metric("busy_requests", "proxy CPU busy during keep-alive (%)", 0),
    with(
        metric("idle_kib", "memory per idle tunnel (KiB of RSS)", 2),
        Target::AtMost(4.0),
    ),
];

/// The values of every round, per proxy and metric.
#[derive(Debug, Default)]
pub(crate) struct Results {
    values: BTreeMap<(Kind, &'static str), Vec<f64>>,
}

/// Median, min and max of some rounds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Spread {
    pub(crate) median: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
}

impl Results {
    pub(crate) fn record(&mut self, kind: Kind, key: &'static str, value: f64) {
        debug_assert!(METRICS.iter().any(|m| m.key == key), "unknown metric {key}");
        self.values.entry((kind, key)).or_default().push(value);
    }

    pub(crate) fn spread(&self, kind: Kind, key: &str) -> Option<Spread> {
        let mut v: Vec<f64> = self
            .values
            .iter()
            .find(|((k, m), _)| *k == kind && *m == key)?
            .1
            .iter()
            .copied()
            .filter(|x| x.is_finite())
            .collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Spread {
            median,
            min: v[0],
            max: v[n - 1],
        })
    }

    /// Every recorded value, one `round-ordinal proxy metric value` line each (the raw file).
    pub(crate) fn raw(&self) -> String {
        let mut out = String::from("proxy\tmetric\tround\tvalue\n");
        for ((kind, key), values) in &self.values {
            for (i, v) in values.iter().enumerate() {
                let _ = writeln!(out, "{}\t{key}\t{}\t{v}", kind.name(), i + 1);
            }
        }
        out
    }

    /// The markdown table: a column per proxy, then each one's ratio to nginx.
    pub(crate) fn table(&self) -> String {
        let mut others = vec![Kind::Switchyard, Kind::Haproxy];
        if self.values.keys().any(|(k, _)| *k == Kind::SwitchyardTokio) {
            others.push(Kind::SwitchyardTokio);
        }
        let mut out = String::from("| metric | switchyard | nginx |");
        for kind in &others[1..] {
            let _ = write!(out, " {} |", kind.name());
        }
        for kind in &others {
            let _ = write!(out, " {} / nginx |", kind.name());
        }
        out.push_str(" target |\n|---|---|---|");
        out.push_str(&"---|".repeat(others.len() * 2));
        out.push('\n');
        for m in METRICS {
            self.row(&mut out, m, m.label, Kind::Nginx, &others);
            if m.key == "requests" || m.key == "cpu_per_request" {
                let label = format!(
                    "{} — against nginx with upstream keep-alive (`'' ''` in the map)",
                    m.label
                );
                self.row(&mut out, m, &label, Kind::NginxKeepalive, &others);
            }
        }
        out
    }

    fn row(&self, out: &mut String, m: &Metric, label: &str, nginx: Kind, others: &[Kind]) {
        let ng = self.spread(nginx, m.key);
        let cell = |s: Option<Spread>| match s {
            None => "–".to_owned(),
            Some(s) if s.min == s.max => fmt(s.median, m.decimals),
            Some(s) => format!(
                "{} ({}–{})",
                fmt(s.median, m.decimals),
                fmt(s.min, m.decimals),
                fmt(s.max, m.decimals)
            ),
        };
        let ratio = |kind: Kind| match (self.spread(kind, m.key), ng) {
            (Some(a), Some(b)) if b.median != 0.0 => Some(a.median / b.median),
            _ => None,
        };
        let show = |r: Option<f64>| r.map_or_else(|| "–".to_owned(), |r| format!("{r:.2}x"));
        let sy_ratio = ratio(Kind::Switchyard);
        let sy = self.spread(Kind::Switchyard, m.key);
        let target = match m.target {
            None => String::new(),
            Some(t) => {
                let (text, met) = match t {
                    Target::RatioAtLeast(x) => (format!(">= {x}x"), sy_ratio.map(|r| r >= x)),
                    Target::RatioAtMost(x) => (format!("<= {x}x"), sy_ratio.map(|r| r <= x)),
                    Target::AtMost(x) => (format!("<= {x}"), sy.map(|s| s.median <= x)),
                };
                let verdict = match met {
                    Some(true) => "met",
                    Some(false) => "**missed**",
                    None => "not measured",
                };
                format!("{text}: {verdict}")
            }
        };
        let _ = write!(out, "| {label} | {} | {} |", cell(sy), cell(ng));
        for &kind in &others[1..] {
            let _ = write!(out, " {} |", cell(self.spread(kind, m.key)));
        }
        for &kind in others {
            let _ = write!(out, " {} |", show(ratio(kind)));
        }
        let _ = writeln!(out, " {target} |");
    }
}

/// A number with `decimals` decimals and thin grouping of thousands for large ones.
fn fmt(value: f64, decimals: usize) -> String {
    let text = format!("{value:.decimals$}");
    let (int, frac) = text
        .split_once('.')
        .map_or((text.as_str(), ""), |(i, f)| (i, f));
    let (sign, digits) = int.strip_prefix('-').map_or(("", int), |d| ("-", d));
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    if frac.is_empty() {
        format!("{sign}{grouped}")
    } else {
        format!("{sign}{grouped}.{frac}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped() {
        assert_eq!(fmt(1234567.891, 1), "1,234,567.9");
        assert_eq!(fmt(999.0, 0), "999");
        assert_eq!(fmt(-1234.0, 0), "-1,234");
        assert_eq!(fmt(0.123, 3), "0.123");
    }

    #[test]
    fn spread_is_median_min_max() {
        let mut r = Results::default();
        for v in [5.0, 1.0, 3.0, 2.0] {
            r.record(Kind::Nginx, "upgrades", v);
        }
        let s = r.spread(Kind::Nginx, "upgrades").unwrap();
        assert_eq!((s.median, s.min, s.max), (2.5, 1.0, 5.0));
    }

    #[test]
    fn missed_targets_are_marked() {
        let mut r = Results::default();
        r.record(Kind::Nginx, "upgrades", 100.0);
        r.record(Kind::Switchyard, "upgrades", 120.0);
        r.record(Kind::Switchyard, "idle_kib", 3.0);
        let table = r.table();
        assert!(table.contains("| 1.20x |"), "{table}");
        assert!(table.contains(">= 1.3x: **missed**"), "{table}");
        assert!(table.contains("<= 4: met"), "{table}");
    }
}
