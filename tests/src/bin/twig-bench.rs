//! twig-bench: a raw-protocol NATS load generator (no client library in the hot path).
//!
//! ```text
//! twig-bench pub    --url 127.0.0.1:4222 --size 128 --msgs 1000000 --duration-limit 30
//! twig-bench pubsub --subs 4 --url ... --size 128 --msgs 250000
//! twig-bench reqrep --url ... --size 128 --msgs 20000
//! twig-bench jspub  --url ... --size 128 --msgs 100000 --inflight 256
//! twig-bench connect --url ... --conns 5000 --parallel 1000
//! ```
//! Prints one sentence on stderr and one JSON line on stdout (what `tests/bench` reads).
//! Exits 0 when the run happened (even if some messages never arrived: `"complete":false`),
//! 1 when it could not (no server, handshake failed), 2 on a bad command line.

#[path = "../bench/mod.rs"]
mod bench;

use bench::Options;
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "usage: twig-bench <pub|pubsub|reqrep|jspub|connect> [options]
  --url HOST:PORT         server (default 127.0.0.1:4222)
  --size BYTES            payload size (default 128)
  --msgs N                messages to publish / requests to make (default 100000)
  --duration-limit SECS   hard limit on the whole run (default 30)
  --subs N                pubsub: number of subscribers (default 1)
  --sids N                pubsub: subscriptions per subscriber on the subject (default 1)
  --conns N               connect: clients connecting at once after a restart (a storm)
  --parallel N            connect: how many connect at the same moment (default 1000)
  --subject S             subject (default twig.bench)
  --sub-subject S         pubsub: the subscribers' filter (default the subject; may be a
                          wildcard that covers it, e.g. `>`)
  --warmup N              reqrep: unmeasured requests first (default 100)
  --batch BYTES           publisher: bytes of whole PUB frames per write (default 65536)
  --idle SECS             pubsub: stop waiting after this long without progress (default 2)
  --inflight N            jspub: publishes awaiting a PubAck at most (default 256)
  --payload KIND          jspub: fixed (default), json (a ~120 B sensor reading per message)
                          or random (--size random bytes per message)
  --sub-url HOST:PORT     pubsub: subscribers connect here (e.g. a hub, publisher on its leaf)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let (mode, opts) = match parse(&args) {
        Ok(v) => v,
        Err(msg) => {
            eprintln!("twig-bench: {msg}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = match mode.as_str() {
        "pub" => bench::pubsub::run_pub(&opts),
        "pubsub" => bench::pubsub::run_pubsub(&opts),
        "connect" => bench::storm::run_connect(&opts),
        "jspub" => bench::jspub::run_jspub(&opts),
        _ => bench::reqrep::run_reqrep(&opts),
    };
    match result {
        Ok(report) => {
            println!("{}", report.json());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("twig-bench {mode}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The mode and options from the command line.
fn parse(args: &[String]) -> Result<(String, Options), String> {
    let mut it = args.iter();
    let mode = match it.next().map(String::as_str) {
        Some(m @ ("pub" | "pubsub" | "reqrep" | "jspub" | "connect")) => m.to_string(),
        None => return Err("which mode?".into()),
        Some(other) => return Err(format!("unknown mode {other:?}")),
    };
    let mut o = Options::default();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let num = || {
            value
                .parse::<u64>()
                .map_err(|_| format!("{flag}: {value:?} is not a number"))
        };
        let secs = || match value.parse::<f64>() {
            Ok(s) if s.is_finite() && s > 0.0 && s < 1e6 => Ok(Duration::from_secs_f64(s)),
            _ => Err(format!(
                "{flag}: {value:?} is not a positive number of seconds"
            )),
        };
        let size =
            || num().and_then(|n| usize::try_from(n).map_err(|_| format!("{flag}: too large")));
        match flag.as_str() {
            "--url" => o.url = value.clone(),
            "--size" => o.size = size()?,
            "--msgs" => o.msgs = num()?,
            "--duration-limit" => o.limit = secs()?,
            "--subs" => o.subs = size()?.clamp(1, 1024),
            "--sids" => o.sids = size()?.clamp(1, 100_000),
            "--conns" => o.msgs = num()?.clamp(1, 100_000),
            "--parallel" => o.parallel = size()?.clamp(1, 10_000),
            "--subject" => o.subject = value.clone(),
            "--sub-subject" => o.sub_subject = Some(value.clone()),
            "--warmup" => o.warmup = num()?,
            "--batch" => o.batch = size()?.max(1),
            "--idle" => o.idle = secs()?,
            "--inflight" => o.inflight = num()?.max(1),
            "--sub-url" => o.sub_url = Some(value.clone()),
            "--payload" => {
                o.payload = match value.as_str() {
                    "fixed" => bench::PayloadKind::Fixed,
                    "json" => bench::PayloadKind::Json,
                    "random" => bench::PayloadKind::Random,
                    _ => return Err(format!("--payload {value}: fixed, json or random")),
                }
            }
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if o.subject.is_empty() || o.subject.contains([' ', '\t', '\r', '\n']) {
        return Err("--subject must be one non-empty token".into());
    }
    if o.sub_subject
        .as_ref()
        .is_some_and(|s| s.is_empty() || s.contains([' ', '\t', '\r', '\n']))
    {
        return Err("--sub-subject must be one non-empty token".into());
    }
    Ok((mode, o))
}
