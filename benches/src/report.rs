//! Ratios between two benches of one run, read back from criterion's saved estimates.
//!
//! Criterion reports each bench on its own; the question the benches answer is relative ("how
//! much does the core cost over the bare httparse of the same bytes?"), and a ratio of two
//! numbers measured in the same run on the same machine is far more stable than either number.
//! After its groups ran, a bench binary calls [`print_ratio`], which reads the two
//! `estimates.json` files criterion just wrote and prints their quotient (and whether a target
//! was met). Estimates older than the run (the bench was filtered out, or ran in `--test` mode)
//! are not used.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Where criterion keeps its results: `$CRITERION_HOME`, else the `criterion` folder of the
/// target directory that holds this executable (`target/release/deps/<bench>`).
pub fn criterion_home() -> Option<PathBuf> {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return Some(PathBuf::from(home));
    }
    let exe = std::env::current_exe().ok()?;
    exe.ancestors()
        .map(|dir| dir.join("criterion"))
        .find(|dir| dir.is_dir())
}

/// The time per iteration, in nanoseconds, that criterion reports for a bench: the slope of the
/// linear regression when it made one, else the mean. `None` if the file is missing, was written
/// before `since`, or holds neither.
pub fn estimate_ns(home: &Path, group: &str, bench: &str, since: SystemTime) -> Option<f64> {
    let file = home
        .join(group)
        .join(bench)
        .join("new")
        .join("estimates.json");
    let modified = std::fs::metadata(&file).and_then(|m| m.modified()).ok()?;
    if modified < since {
        return None;
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).ok()?).ok()?;
    point_estimate(&json)
}

/// The slope's point estimate, else the mean's, of a parsed `estimates.json`.
pub fn point_estimate(json: &serde_json::Value) -> Option<f64> {
    ["slope", "mean"]
        .iter()
        .find_map(|key| json.get(key)?.get("point_estimate")?.as_f64())
}

/// Prints `group/bench ÷ group/baseline` and, with a `target`, whether the ratio is at most it.
/// Prints why not when either estimate is missing. `since`: when this run started.
pub fn print_ratio(
    group: &str,
    bench: &str,
    baseline: &str,
    target: Option<f64>,
    since: SystemTime,
) {
    let line = ratio_line(group, bench, baseline, target, since);
    println!("{line}");
}

fn ratio_line(
    group: &str,
    bench: &str,
    baseline: &str,
    target: Option<f64>,
    since: SystemTime,
) -> String {
    let Some(home) = criterion_home() else {
        return format!("ratio {group}: criterion's output folder not found");
    };
    let estimates = (
        estimate_ns(&home, group, bench, since),
        estimate_ns(&home, group, baseline, since),
    );
    let (Some(slow), Some(base)) = estimates else {
        return format!("ratio {group}/{bench} / {group}/{baseline}: not measured in this run");
    };
    let ratio = slow / base;
    let verdict = match target {
        Some(t) if ratio <= t => format!(" (target <= {t}x: met)"),
        Some(t) => format!(" (target <= {t}x: MISSED)"),
        None => String::new(),
    };
    format!(
        "ratio {group}/{bench} / {group}/{baseline}: {slow:.1} ns / {base:.1} ns = {ratio:.2}x{verdict}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefers_the_slope_then_the_mean() {
        let both: serde_json::Value = serde_json::from_str(
            r#"{"mean":{"point_estimate":12.5,"standard_error":0.1},"slope":{"point_estimate":11.0}}"#,
        )
        .unwrap();
        assert_eq!(point_estimate(&both), Some(11.0));
        let mean_only: serde_json::Value =
            serde_json::from_str(r#"{"mean":{"point_estimate":12.5},"slope":null}"#).unwrap();
        assert_eq!(point_estimate(&mean_only), Some(12.5));
        assert_eq!(point_estimate(&serde_json::json!({})), None);
    }

    #[test]
    fn stale_or_missing_estimates_are_not_used() {
        let home = std::env::temp_dir().join(format!("switchyard-report-{}", std::process::id()));
        let dir = home.join("g").join("b").join("new");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("estimates.json"),
            r#"{"mean":{"point_estimate":3.0}}"#,
        )
        .unwrap();
        let long_ago = SystemTime::UNIX_EPOCH;
        assert_eq!(estimate_ns(&home, "g", "b", long_ago), Some(3.0));
        let future = SystemTime::now() + std::time::Duration::from_secs(3600);
        assert_eq!(estimate_ns(&home, "g", "b", future), None);
        assert_eq!(estimate_ns(&home, "g", "missing", long_ago), None);
        std::fs::remove_dir_all(&home).unwrap();
    }
}
