//! `twig-link`: the link emulator (`twig_tests::link_emu`) as a process, for the benchmarks.
//!
//! ```text
//! twig-link --target 127.0.0.1:7422 --rate 20KB/s --rtt 600ms [options]
//! ```
//! Prints `listening on ADDR` once ready. Reads commands on stdin, one per line:
//! `stats` (prints one JSON line of counters), `stall 2s`, `cut reset 1s`, `cut drop 1s`,
//! `quit` (also at end of input).
//!
//! Options: `--listen ADDR` (default 127.0.0.1:0), `--rate R` both ways or `--rate-up R`
//! `--rate-down R` (bytes per second: `20000`, `20KB/s`, `1Mbit`, `none`), `--rtt D` or
//! `--delay D` (one way), `--jitter D`, `--queue SIZE`, `--burst SIZE`, `--socket-buffer
//! SIZE`, `--seed N`, `--stalls GAP..GAP:LEN..LEN` and `--cuts GAP..GAP:LEN..LEN[:reset|drop|
//! both]` (random on the seed's schedule, e.g. `--stalls 5s..15s:1s..3s`), `--horizon D`
//! (how far schedules go, default 1h).
use std::io::BufRead;
use std::net::SocketAddr;
use std::time::Duration;

use twig_tests::link_emu::schedule::{self, CutKind, Pattern};
use twig_tests::link_emu::{LinkEmulator, LinkSpec, Shape, parse_duration, parse_rate, parse_size};

fn main() {
    if let Err(e) = run() {
        eprintln!("twig-link: {e}");
        std::process::exit(2);
    }
}

fn pattern(s: &str) -> Result<Pattern, String> {
    let range = |r: &str| -> Result<(Duration, Duration), String> {
        match r.split_once("..") {
            Some((a, b)) => Ok((parse_duration(a)?, parse_duration(b)?)),
            None => {
                let d = parse_duration(r)?;
                Ok((d, d))
            }
        }
    };
    let mut parts = s.split(':');
    let gap = range(parts.next().unwrap_or_default())?;
    let len = range(parts.next().ok_or("expected GAP:LEN")?)?;
    Ok(Pattern { gap, len })
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let mut listen: SocketAddr = "127.0.0.1:0".parse().expect("address");
    let mut target: Option<SocketAddr> = None;
    let (mut up_rate, mut down_rate) = (None, None);
    let mut delay = Duration::ZERO;
    let mut jitter = Duration::ZERO;
    let (mut queue, mut burst, mut sockbuf) = (None, None, None);
    let mut seed = 1u64;
    let (mut stalls, mut cuts) = (None, None);
    let mut horizon = Duration::from_secs(3600);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--listen" => listen = val()?.parse().map_err(|e| format!("--listen: {e}"))?,
            "--target" => target = Some(val()?.parse().map_err(|e| format!("--target: {e}"))?),
            "--rate" => {
                let r = parse_rate(&val()?)?;
                (up_rate, down_rate) = (r, r);
            }
            "--rate-up" => up_rate = parse_rate(&val()?)?,
            "--rate-down" => down_rate = parse_rate(&val()?)?,
            "--rtt" => delay = parse_duration(&val()?)? / 2,
            "--delay" => delay = parse_duration(&val()?)?,
            "--jitter" => jitter = parse_duration(&val()?)?,
            "--queue" => queue = Some(parse_size(&val()?)?),
            "--burst" => burst = Some(parse_size(&val()?)?),
            "--socket-buffer" => sockbuf = Some(parse_size(&val()?)?),
            "--seed" => seed = val()?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--stalls" => stalls = Some(pattern(&val()?)?),
            "--cuts" => {
                let v = val()?;
                let kinds = match v.rsplit(':').next() {
                    Some("reset") => vec![CutKind::Reset],
                    Some("drop") => vec![CutKind::Drop],
                    Some("both") => vec![CutKind::Reset, CutKind::Drop],
                    _ => vec![CutKind::Reset],
                };
                let p = v.trim_end_matches(":reset").trim_end_matches(":drop");
                cuts = Some((pattern(p.trim_end_matches(":both"))?, kinds));
            }
            "--horizon" => horizon = parse_duration(&val()?)?,
            "-h" | "--help" => {
                println!(
                    "usage: twig-link --target ADDR [--rate R] [--rtt D] ... (see the source)"
                );
                return Ok(());
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    let target = target.ok_or("--target ADDR is required")?;
    let shape = |rate| {
        let mut s = Shape::new(rate, delay);
        s.jitter = jitter;
        if let Some(q) = queue {
            s.queue = q;
        }
        if let Some(b) = burst {
            s.burst = b;
        }
        s
    };
    let mut spec = LinkSpec::new(shape(up_rate), shape(down_rate));
    spec.seed = seed;
    if let Some(b) = sockbuf {
        spec.socket_buffer = b;
    }
    if let Some(p) = stalls {
        spec.stalls = schedule::stalls(&p, seed, horizon);
    }
    if let Some((p, kinds)) = cuts {
        spec.cuts = schedule::cuts(&p, &kinds, seed, horizon);
    }
    let link = LinkEmulator::listen(spec, target, listen).map_err(|e| format!("listen: {e}"))?;
    println!("listening on {}", link.addr());
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["stats"] => {
                let s = link.stats();
                println!(
                    "{{\"up_read\":{},\"up_delivered\":{},\"down_read\":{},\"down_delivered\":{},\
                     \"connections\":{},\"refused\":{},\"cuts\":{},\"elapsed\":{:.6}}}",
                    s.up.read,
                    s.up.delivered,
                    s.down.read,
                    s.down.delivered,
                    s.connections,
                    s.refused,
                    s.cuts,
                    link.elapsed().as_secs_f64()
                );
            }
            ["stall", d] => link.stall(parse_duration(d)?),
            ["cut", kind, d] => {
                let kind = match *kind {
                    "reset" => CutKind::Reset,
                    "drop" => CutKind::Drop,
                    k => return Err(format!("cut {k}: expected reset or drop")),
                };
                link.cut(kind, parse_duration(d)?);
            }
            ["quit"] => break,
            [] => {}
            _ => eprintln!("twig-link: unknown command {line:?}"),
        }
    }
    Ok(())
}
