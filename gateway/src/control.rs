//! `twig --signal CMD[=PID|PIDFILE]`: signal a running twig, as `nats-server --signal` does.
//!
//! | command | signal | what twig does |
//! |---|---|---|
//! | `ldm` | SIGUSR2 | lame duck mode, then exit 0 |
//! | `reload` | SIGHUP | reload the config file (the log says what was reloaded) |
//! | `reopen` | SIGUSR1 | reopen `log_file` |
//! | `quit` | SIGINT | close every client, exit 0 |
//! | `term` | SIGTERM | the same, unless in lame duck mode |
//! | `stop` | SIGKILL | killed |
//!
//! Which process: `=PID`, or `=FILE` holding one (nats-server's rule: a path that can be read
//! is a PID file, anything else must be a number); without either, `--pid`/`pid_file`;
//! without that, the one process named `twig` (nats-server asks `pgrep nats-server`).
use std::path::Path;

use rustix::process::{Pid, Signal};

/// One of nats-server's `--signal` commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalCommand {
    /// SIGKILL.
    Stop,
    /// SIGINT.
    Quit,
    /// SIGTERM.
    Term,
    /// SIGUSR1.
    Reopen,
    /// SIGHUP.
    Reload,
    /// SIGUSR2.
    LameDuck,
}

impl SignalCommand {
    fn signal(self) -> Signal {
        match self {
            SignalCommand::Stop => Signal::KILL,
            SignalCommand::Quit => Signal::INT,
            SignalCommand::Term => Signal::TERM,
            SignalCommand::Reopen => Signal::USR1,
            SignalCommand::Reload => Signal::HUP,
            SignalCommand::LameDuck => Signal::USR2,
        }
    }
}

/// A parsed `--signal` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalRequest {
    /// What to send.
    pub command: SignalCommand,
    /// `=PID` or `=PIDFILE`, as written.
    pub target: Option<String>,
}

impl SignalRequest {
    /// Parses `CMD` or `CMD=PID|PIDFILE`.
    pub fn parse(text: &str) -> Result<SignalRequest, String> {
        let mut parts = text.split('=');
        let command = match parts.next().unwrap_or_default() {
            "stop" => SignalCommand::Stop,
            "quit" => SignalCommand::Quit,
            "term" => SignalCommand::Term,
            "reopen" => SignalCommand::Reopen,
            "reload" => SignalCommand::Reload,
            "ldm" => SignalCommand::LameDuck,
            other => {
                return Err(format!(
                    "unknown signal {other:?} (use ldm, stop, quit, term, reopen or reload)"
                ));
            }
        };
        let target = parts.next().map(str::to_owned);
        let rest: Vec<&str> = parts.collect();
        if !rest.is_empty() {
            return Err(format!("invalid signal parameters: {rest:?}"));
        }
        if target.as_deref() == Some("") {
            return Err("empty PID after =".into());
        }
        Ok(SignalRequest { command, target })
    }
}

/// Sends the signal. `pid_file` is `--pid`/`pid_file` from the flags or the config, used
/// when the request names no process.
pub fn send(req: &SignalRequest, pid_file: Option<&Path>) -> Result<(), String> {
    let pid = match (&req.target, pid_file) {
        (Some(t), _) => match std::fs::read_to_string(t) {
            Ok(text) => parse_pid(&text, Some(t))?,
            Err(_) => parse_pid(t, None)?,
        },
        (None, Some(f)) => {
            let text = std::fs::read_to_string(f)
                .map_err(|e| format!("cannot read PID file {}: {e}", f.display()))?;
            parse_pid(&text, Some(&f.display().to_string()))?
        }
        (None, None) => only_twig_process()?,
    };
    let raw = Pid::from_raw(pid).ok_or_else(|| format!("invalid pid: {pid}"))?;
    rustix::process::kill_process(raw, req.command.signal())
        .map_err(|e| format!("signal {:?} {pid}: {e}", req.command))
}

fn parse_pid(text: &str, file: Option<&str>) -> Result<i32, String> {
    text.trim()
        .parse::<i32>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| match file {
            Some(f) => format!("PID file {f} does not hold a process id"),
            None => format!("invalid pid: {}", text.trim()),
        })
}

/// The one other process named `twig` (`/proc/PID/comm`).
fn only_twig_process() -> Result<i32, String> {
    let me = std::process::id();
    let entries = std::fs::read_dir("/proc").map_err(|_| {
        "unable to resolve pid, try providing one (--signal CMD=PID or --pid FILE)".to_string()
    })?;
    let mut pids: Vec<i32> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| is_live_twig(*pid))
        .filter_map(|pid| i32::try_from(pid).ok())
        .collect();
    pids.sort_unstable();
    match pids.as_slice() {
        [] => Err("no twig processes running".into()),
        [one] => Ok(*one),
        many => Err(format!(
            "multiple twig processes running:\n{}",
            many.iter()
                .map(i32::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        )),
    }
}

/// `/proc/PID/stat` is `PID (comm) STATE ...`: named `twig` and not a zombie (an exited
/// child its parent has not reaped yet cannot take a signal).
fn is_live_twig(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let Some((name, rest)) = stat.split_once(" (").and_then(|(_, r)| r.rsplit_once(") ")) else {
        return false;
    };
    name == "twig" && !rest.starts_with('Z') && !rest.starts_with('X')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_targets_parse_as_nats_server_takes_them() {
        let r = SignalRequest::parse("ldm").unwrap();
        assert_eq!((r.command, r.target), (SignalCommand::LameDuck, None));
        let r = SignalRequest::parse("reload=123").unwrap();
        assert_eq!(r.command, SignalCommand::Reload);
        assert_eq!(r.target.as_deref(), Some("123"));
        let r = SignalRequest::parse("reopen=/run/twig.pid").unwrap();
        assert_eq!(r.target.as_deref(), Some("/run/twig.pid"));
        for (text, sig) in [
            ("stop", Signal::KILL),
            ("quit", Signal::INT),
            ("term", Signal::TERM),
            ("reopen", Signal::USR1),
            ("reload", Signal::HUP),
            ("ldm", Signal::USR2),
        ] {
            assert_eq!(SignalRequest::parse(text).unwrap().command.signal(), sig);
        }
        assert!(SignalRequest::parse("restart").is_err());
        assert!(SignalRequest::parse("ldm=1=2").is_err());
        assert!(SignalRequest::parse("ldm=").is_err());
    }

    #[test]
    fn pids_come_from_numbers_or_files() {
        assert_eq!(parse_pid("42\n", None), Ok(42));
        assert!(parse_pid("x", None).unwrap_err().contains("invalid pid"));
        assert!(
            parse_pid("0", Some("f"))
                .unwrap_err()
                .contains("PID file f")
        );
        let req = SignalRequest {
            command: SignalCommand::Reload,
            target: Some("not-a-pid-or-file".into()),
        };
        assert!(send(&req, None).unwrap_err().contains("invalid pid"));
    }
}
