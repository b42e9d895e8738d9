//! `race`: switchyard against nginx and HAProxy, end to end on the loopback.
//!
//! Run it through `benches/e2e/run`, which installs nginx and HAProxy if they are missing,
//! builds the binaries, raises the descriptor limit and pins this program to one core and the
//! proxies to the other. By hand:
//!
//! ```text
//! race --switchyard PATH --backend PATH --nginx PATH --haproxy PATH --templates benches/e2e
//!      [--quick] [--rounds N] [--seconds S] [--idle-tunnels N] [--proxy-cpu CPU]
//!      [--work DIR] [--command TEXT]
//! ```
//!
//! Each round starts fresh proxies in front of one echo backend (`race-backend`), then runs each
//! test against every proxy in turn (switchyard, nginx, HAProxy, then the next test), so that a
//! change in the machine's load falls on all three alike. The first test of a round is the
//! idle-tunnel memory test, so that it sees fresh processes. At the end it prints one markdown
//! table (median of the rounds, min–max, ratios to nginx, targets) and the machine notes, and
//! leaves the raw values and the logs in the work directory.

mod load;
mod procs;
mod race;
mod report;

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use procs::{Kind, Proxy, Tools};
use race::{Notes, Race, Test};

/// Descriptors a proxy needs besides two per idle tunnel (listeners, logs, epoll, spare).
const FD_RESERVE: u64 = 200;

/// How much of everything one race does.
#[derive(Clone, Debug)]
struct Plan {
    rounds: usize,
    warmup: Duration,
    /// Length of the measured window of the upgrade, throughput and keep-alive tests.
    seconds: Duration,
    /// Length of each ping-pong window.
    ping_seconds: Duration,
    idle_tunnels: usize,
    settle: Duration,
    /// The tests each round runs, in order.
    tests: Vec<Test>,
    /// The proxies each test runs against, in turn.
    proxies: Vec<Kind>,
}

impl Plan {
    fn full() -> Self {
        Self {
            rounds: 5,
            warmup: Duration::from_secs(1),
            seconds: Duration::from_secs(8),
            ping_seconds: Duration::from_secs(5),
            idle_tunnels: 10_000,
            settle: Duration::from_secs(3),
            tests: Test::ALL.to_vec(),
            proxies: Kind::DEFAULT.to_vec(),
        }
    }

    fn quick() -> Self {
        Self {
            rounds: 1,
            warmup: Duration::from_millis(300),
            seconds: Duration::from_secs(1),
            ping_seconds: Duration::from_secs(1),
            idle_tunnels: 1_000,
            settle: Duration::from_secs(2),
            tests: Test::ALL.to_vec(),
            proxies: Kind::DEFAULT.to_vec(),
        }
    }
}

const USAGE: &str = "usage: race --switchyard PATH --backend PATH --nginx PATH --haproxy PATH \
    --templates DIR [--quick] [--rounds N] [--seconds S] [--idle-tunnels N] [--proxy-cpu CPU] \
    [--tests idle,upgrades,throughput,pingpong,keepalive] \
    [--proxies switchyard,nginx,haproxy,nginx-ka,switchyard-tokio] [--switchyard-tokio PATH] \
    [--work DIR] [--command TEXT]";

fn main() -> ExitCode {
    match parse_args() {
        Ok((tools, plan, command)) => match run(&tools, &plan, &command) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("race: {e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("race: {e}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn parse_args() -> Result<(Tools, Plan, String), String> {
    let mut plan = Plan::full();
    let mut rounds = None;
    let mut seconds = None;
    let mut idle = None;
    let (mut switchyard, mut backend, mut nginx, mut haproxy, mut templates) =
        (None, None, None, None, None);
    let mut switchyard_tokio = None;
    let mut work = None;
    let mut proxy_cpu = None;
    let mut command = String::from("race (by hand)");
    let mut tests = None;
    let mut proxies = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--quick" {
            plan = Plan::quick();
            continue;
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<u64>()
                .map_err(|_| format!("{flag}: not a number"))
        };
        match flag.as_str() {
            "--rounds" => rounds = Some(number()?.max(1) as usize),
            "--seconds" => seconds = Some(number()?.max(1)),
            "--idle-tunnels" => idle = Some(number()? as usize),
            "--switchyard" => switchyard = Some(PathBuf::from(value)),
            "--switchyard-tokio" => switchyard_tokio = Some(PathBuf::from(value)),
            "--backend" => backend = Some(PathBuf::from(value)),
            "--nginx" => nginx = Some(PathBuf::from(value)),
            "--haproxy" => haproxy = Some(PathBuf::from(value)),
            "--templates" => templates = Some(PathBuf::from(value)),
            "--work" => work = Some(PathBuf::from(value)),
            "--proxy-cpu" => proxy_cpu = Some(value),
            "--command" => command = value,
            "--tests" => tests = Some(list(&value, Test::parse)?),
            "--proxies" => proxies = Some(list(&value, Kind::parse)?),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    plan.rounds = rounds.unwrap_or(plan.rounds);
    if let Some(s) = seconds {
        plan.seconds = Duration::from_secs(s);
        plan.ping_seconds = Duration::from_secs(s.div_ceil(2).max(1));
    }
    plan.idle_tunnels = idle.unwrap_or(plan.idle_tunnels);
    if let Some(tests) = tests {
        // Always in the canonical order: the idle test first, on fresh processes.
        plan.tests = Test::ALL
            .into_iter()
            .filter(|t| tests.contains(t))
            .collect();
    }
    if let Some(proxies) = proxies {
        plan.proxies = Kind::ALL
            .into_iter()
            .filter(|k| proxies.contains(k))
            .collect();
    }
    let need = |p: Option<PathBuf>, name: &str| p.ok_or_else(|| format!("--{name} is required"));
    let tools = Tools {
        // Beside `race-backend` unless given.
        switchyard_tokio: switchyard_tokio.unwrap_or_else(|| {
            backend
                .as_deref()
                .unwrap_or(Path::new("."))
                .with_file_name("race-switchyard-tokio")
        }),
        switchyard: need(switchyard, "switchyard")?,
        backend: need(backend, "backend")?,
        nginx: need(nginx, "nginx")?,
        haproxy: need(haproxy, "haproxy")?,
        templates: need(templates, "templates")?,
        work: work.unwrap_or_else(|| std::env::temp_dir().join("switchyard-race")),
        proxy_cpu,
        fd_limit: procs::fd_limit(),
    };
    Ok((tools, plan, command))
}

fn run(tools: &Tools, plan: &Plan, command: &str) -> Result<(), String> {
    fs::create_dir_all(&tools.work).map_err(|e| format!("{}: {e}", tools.work.display()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let mut race = Race::new(runtime, plan.clone());
    // A proxy holds two descriptors per tunnel, plus its own few.
    let fit = (tools.fd_limit.saturating_sub(FD_RESERVE) / 2) as usize;
    if race.plan.tests.contains(&Test::Idle) && race.plan.idle_tunnels > fit {
        race.notes.problems.push(format!(
            "the descriptor limit is {} and could not be raised: the idle test holds {fit} \
             tunnels instead of {}",
            tools.fd_limit, race.plan.idle_tunnels
        ));
        race.plan.idle_tunnels = fit;
    }
    let backend = procs::start_backend(tools).map_err(|e| e.to_string())?;
    eprintln!("race: backend on {} (pid {})", backend.addr, backend.pid);
    for round in 1..=race.plan.rounds {
        let load = loadavg();
        race.notes.load.push(format!("round {round}: {load}"));
        eprintln!(
            "race: round {round}/{} (load average {load})",
            race.plan.rounds
        );
        let mut proxies = Vec::new();
        for &kind in &race.plan.proxies {
            match procs::start_proxy(kind, tools, backend.addr) {
                Ok(p) => {
                    let (addr, pid) = (p.process.addr, p.process.pid);
                    eprintln!("race:   {} on {addr} (pid {pid})", kind.name());
                    proxies.push(p);
                }
                Err(e) => {
                    stop_all(proxies);
                    backend.stop();
                    return Err(e.to_string());
                }
            }
        }
        for test in race.plan.tests.clone() {
            for proxy in &proxies {
                if proxy.kind != Kind::NginxKeepalive || test == Test::KeepAlive {
                    race.run(test, round, proxy);
                }
            }
        }
        stop_all(proxies);
    }
    backend.stop();

    let raw = tools.work.join("raw.tsv");
    let _ = fs::write(&raw, race.results.raw());
    let mut out = race.results.table();
    out.push('\n');
    out.push_str(&machine_notes(
        tools,
        &race.plan,
        command,
        &race.notes,
        &raw,
    ));
    let _ = fs::write(tools.work.join("table.md"), &out);
    print!("{out}");
    Ok(())
}

/// A comma-separated list of names.
fn list<T>(value: &str, parse: fn(&str) -> Option<T>) -> Result<Vec<T>, String> {
    value
        .split(',')
        .map(|name| parse(name.trim()).ok_or_else(|| format!("unknown name {name:?}")))
        .collect()
}

fn stop_all(proxies: Vec<Proxy>) {
    for p in proxies {
        p.process.stop();
    }
}

fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".to_owned())
}

/// Output of a command (stdout and stderr), first line, or `?`.
fn first_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned()
                + &String::from_utf8_lossy(&o.stderr);
            text.lines().next().map(str::to_owned)
        })
        .unwrap_or_else(|| "?".to_owned())
}

fn machine_notes(tools: &Tools, plan: &Plan, command: &str, notes: &Notes, raw: &Path) -> String {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "?".to_owned());
    let nginx = tools.nginx.display().to_string();
    let haproxy = tools.haproxy.display().to_string();
    let mut s = String::new();
    let _ = writeln!(s, "Command: `{command}`\n");
    let _ = writeln!(
        s,
        "- date (end of the run): {}; nproc {}; CPU \"{cpu}\"; kernel {}",
        first_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        first_line("nproc", &["--all"]),
        first_line("uname", &["-r"]),
    );
    let _ = writeln!(
        s,
        "- {}; {}; {}; {}",
        first_line(&nginx, &["-v"]),
        first_line(&haproxy, &["-v"]),
        first_line(&tools.switchyard.display().to_string(), &["--version"]),
        first_line("rustc", &["-V"]),
    );
    let names = |v: Vec<&str>| v.join(", ");
    let _ = writeln!(
        s,
        "- plan: {} round(s) of {} against {}; windows of {:?} (ping-pong {:?}) after {:?} of \
         warm-up; {} idle tunnels, RSS read {:?} after the last opened",
        plan.rounds,
        names(plan.tests.iter().map(|t| t.name()).collect()),
        names(plan.proxies.iter().map(|k| k.name()).collect()),
        plan.seconds,
        plan.ping_seconds,
        plan.warmup,
        plan.idle_tunnels,
        plan.settle
    );
    let _ = writeln!(
        s,
        "- pinning: proxies on CPU {}, load generator and backend on the other(s) (the run \
         script pins them); each proxy has one worker (`worker_processes 1`, `nbthread 1`, \
         `--workers 1`)",
        tools.proxy_cpu.as_deref().unwrap_or("(not pinned)")
    );
    let _ = writeln!(
        s,
        "- load average before each round: {}",
        notes.load.join("; ")
    );
    if notes.problems.is_empty() {
        let _ = writeln!(s, "- errors: none (every byte echoed was checked)");
    } else {
        let _ = writeln!(s, "- errors:");
        for p in &notes.problems {
            let _ = writeln!(s, "  - {p}");
        }
    }
    let _ = writeln!(
        s,
        "- raw values: {}; logs and generated configurations: {}",
        raw.display(),
        tools.work.display()
    );
    s
}
