//! RSS samples of the soak: reading VmRSS, the CSV, the per-minute table and the flatness
//! check.

use std::fmt::Write as _;
use std::time::Duration;

/// One sample.
pub struct Sample {
    pub at: Duration,
    pub rss_kib: u64,
    pub hub_up: bool,
    pub stream_acked: u64,
    /// The 1-minute load average then (the machine is shared).
    pub load1: String,
}

/// `VmRSS` of `pid` in KiB.
pub fn vm_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status"))
}

/// The first three fields of /proc/loadavg.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Writes the samples to `TWIG_SOAK_CSV`, default `<workspace>/target/soak-rss.csv`.
pub fn write_csv(samples: &[Sample]) {
    let path = std::env::var_os("TWIG_SOAK_CSV")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| twig_tests::harness::workspace_root().join("target/soak-rss.csv"));
    let mut text = String::from("seconds,rss_kib,hub_up,stream_acked,load1\n");
    for s in samples {
        let _ = writeln!(
            text,
            "{},{},{},{},{}",
            s.at.as_secs(),
            s.rss_kib,
            u8::from(s.hub_up),
            s.stream_acked,
            s.load1
        );
    }
    match std::fs::write(&path, text) {
        Ok(()) => eprintln!("RSS samples written to {}", path.display()),
        Err(e) => eprintln!("could not write {}: {e}", path.display()),
    }
}

/// Mean RSS in KiB of the samples taken in `[from, to)`.
fn mean(samples: &[Sample], from: Duration, to: Duration) -> f64 {
    let v: Vec<f64> = samples
        .iter()
        .filter(|s| s.at >= from && s.at < to)
        .map(|s| s.rss_kib as f64)
        .collect();
    assert!(!v.is_empty(), "no samples in {from:?}..{to:?}");
    v.iter().sum::<f64>() / v.len() as f64
}

/// Per minute (per tenth of the run when shorter than 10 minutes): mean, min and max RSS.
pub fn print_table(samples: &[Sample], end_rss: u64) {
    let last = samples.last().map_or(Duration::ZERO, |s| s.at);
    let step = match last >= Duration::from_secs(600) {
        true => Duration::from_secs(60),
        false => (last / 10).max(Duration::from_secs(1)),
    };
    let mut out = String::from(
        "| from (s) | samples | mean RSS (MiB) | min | max | hub down |\n|---|---|---|---|---|---|\n",
    );
    let mut from = Duration::ZERO;
    while from <= last {
        let w: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.at >= from && s.at < from + step)
            .collect();
        if !w.is_empty() {
            let mib = |k: u64| k as f64 / 1024.0;
            let mean = w.iter().map(|s| s.rss_kib).sum::<u64>() as f64 / w.len() as f64;
            let _ = writeln!(
                out,
                "| {} | {} | {:.1} | {:.1} | {:.1} | {} |",
                from.as_secs(),
                w.len(),
                mean / 1024.0,
                mib(w.iter().map(|s| s.rss_kib).min().unwrap_or(0)),
                mib(w.iter().map(|s| s.rss_kib).max().unwrap_or(0)),
                w.iter().filter(|s| !s.hub_up).count()
            );
        }
        from += step;
    }
    eprintln!(
        "{out}RSS after the load stopped: {:.1} MiB",
        end_rss as f64 / 1024.0
    );
}

/// Long form: minutes 20 to the end (the last 10 of 30) within 5% of minutes 10-20. Short
/// form: the second half's mean at most 1.2 × the first half's + 4 MiB.
pub fn assert_flat(samples: &[Sample], total: Duration) {
    let min = Duration::from_secs(60);
    if total >= 30 * min {
        let base = mean(samples, 10 * min, 20 * min);
        let last = mean(samples, total - 10 * min, total + Duration::from_secs(1));
        let change = (last - base) / base * 100.0;
        eprintln!(
            "flatness: minutes 10-20 mean {:.2} MiB, last 10 minutes mean {:.2} MiB: {change:+.2}%",
            base / 1024.0,
            last / 1024.0
        );
        assert!(
            change.abs() <= 5.0,
            "RSS not flat: last 10 minutes {change:+.2}% against minutes 10-20"
        );
    } else {
        let half = total / 2;
        let first = mean(samples, Duration::ZERO, half);
        let second = mean(samples, half, total + Duration::from_secs(1));
        eprintln!(
            "short-form bound: first half mean {:.2} MiB, second half mean {:.2} MiB",
            first / 1024.0,
            second / 1024.0
        );
        assert!(
            second <= first * 1.2 + 4096.0,
            "RSS grew: second half {:.2} MiB > 1.2 × first half {:.2} MiB + 4 MiB",
            second / 1024.0,
            first / 1024.0
        );
    }
}
