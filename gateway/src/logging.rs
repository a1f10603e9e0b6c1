//! Log output in nats-server's format, through `tracing`:
//!
//! ```text
//! [4242] 2026/11/22 05:19:00.123456 [INF] Listening for client connections on 127.0.0.1:4222
//! ```
//!
//! Levels print as `[ERR]`, `[WRN]`, `[INF]`, `[DBG]`, `[TRC]`. The message is printed as
//! given (client test harnesses match `Listening for client connections on HOST:PORT` and
//! `Server is ready` exactly); extra event fields follow as ` key=value`. Lines go to stderr,
//! as nats-server's do, or to `log_file` (reopened on SIGUSR1, see [`Sink`]). Timestamps are UTC (nats-server's `--logtime_utc`): local time would
//! need the C library's time zone code, which twig does without.
//!
//! Like nats-server, `-D` adds debug lines and `-V` adds trace lines, each independently.
//! Debug and trace lines come only from twig's own crates (targets `twig*`), so dependencies'
//! internal tracing never floods the log.
use std::fmt;
use std::path::Path;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::Registry;
use tracing_subscriber::filter::{FilterFn, LevelFilter, filter_fn};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::reload;

mod sink;
pub use sink::Sink;

use crate::util::clock::UtcTime;

/// Why logging could not start.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    /// Something installed a global tracing subscriber before.
    #[error("a global logger is already installed")]
    AlreadyInstalled,
    /// `log_file` could not be opened.
    #[error("cannot open log file {}: {error}", path.display())]
    LogFile {
        /// The file.
        path: std::path::PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
}

/// Which lines pass: always info and up, debug and trace from twig's crates when switched on.
type LevelFn = Box<dyn Fn(&Metadata<'_>) -> bool + Send + Sync>;
type Levels = FilterFn<LevelFn>;

/// The installed logger: reopens its file (SIGUSR1) and changes levels (SIGHUP reload).
pub struct Logger {
    sink: Sink,
    levels: reload::Handle<Levels, Registry>,
}

impl Logger {
    /// Reopens `log_file` at its path (logrotate). `Ok(false)`: the log goes to stderr.
    pub fn reopen(&self) -> std::io::Result<bool> {
        self.sink.reopen()
    }

    /// Switches debug and trace lines on or off.
    pub fn set_levels(&self, debug: bool, trace: bool) {
        // Fails only if the subscriber was dropped, and the global one never is.
        let _ = self.levels.reload(levels(debug, trace));
    }

    /// The log file, when there is one.
    pub fn file(&self) -> Option<&Path> {
        self.sink.path()
    }
}

/// Installs the global logger, writing to `log_file` or stderr. `debug`/`trace` are `-D`/`-V`.
pub fn init(debug: bool, trace: bool, log_file: Option<&Path>) -> Result<Logger, LoggingError> {
    let sink = match log_file {
        Some(path) => Sink::file(path).map_err(|error| LoggingError::LogFile {
            path: path.to_path_buf(),
            error,
        })?,
        None => Sink::stderr(),
    };
    let (subscriber, levels) = subscriber_with_handle(debug, trace, sink.clone());
    tracing::subscriber::set_global_default(subscriber)
        .map_err(|_| LoggingError::AlreadyInstalled)?;
    Ok(Logger { sink, levels })
}

/// The subscriber [`init`] installs, writing to any `writer` (tests capture lines with it).
pub fn subscriber<W>(debug: bool, trace: bool, writer: W) -> impl Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    subscriber_with_handle(debug, trace, writer).0
}

fn subscriber_with_handle<W>(
    debug: bool,
    trace: bool,
    writer: W,
) -> (
    impl Subscriber + Send + Sync,
    reload::Handle<Levels, Registry>,
)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let (filter, handle) = reload::Layer::new(levels(debug, trace));
    let layer = tracing_subscriber::fmt::layer()
        .event_format(NatsFormat)
        .with_ansi(false)
        .with_writer(writer);
    let subscriber =
        tracing_subscriber::registry().with(tracing_subscriber::Layer::with_filter(layer, filter));
    (subscriber, handle)
}

fn levels(debug: bool, trace: bool) -> Levels {
    let max = if trace {
        LevelFilter::TRACE
    } else if debug {
        LevelFilter::DEBUG
    } else {
        LevelFilter::INFO
    };
    let pass: LevelFn = Box::new(move |meta| {
        let level = *meta.level();
        let ours = || meta.target().starts_with("twig");
        level <= Level::INFO
            || (level == Level::DEBUG && debug && ours())
            || (level == Level::TRACE && trace && ours())
    });
    // Lets tracing skip disabled callsites without calling the filter at all (a reload
    // rebuilds that cache).
    filter_fn(pass).with_max_level_hint(max)
}

/// The event formatter: `[PID] YYYY/MM/DD hh:mm:ss.uuuuuu [LVL] message key=value...`.
#[derive(Debug, Clone, Copy, Default)]
pub struct NatsFormat;

impl<S, N> FormatEvent<S, N> for NatsFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let t = UtcTime::from_system_time(twig_util::clock::now());
        write!(
            writer,
            "[{}] {:04}/{:02}/{:02} {:02}:{:02}:{:02}.{:06} {} ",
            std::process::id(),
            t.year,
            t.month,
            t.day,
            t.hour,
            t.minute,
            t.second,
            t.nanos / 1000,
            level_tag(*event.metadata().level()),
        )?;
        let mut visitor = LineVisitor {
            writer: &mut writer,
            result: Ok(()),
        };
        event.record(&mut visitor);
        visitor.result?;
        writer.write_char('\n')
    }
}

/// nats-server's three-letter level tags.
pub fn level_tag(level: Level) -> &'static str {
    match level {
        Level::ERROR => "[ERR]",
        Level::WARN => "[WRN]",
        Level::INFO => "[INF]",
        Level::DEBUG => "[DBG]",
        Level::TRACE => "[TRC]",
    }
}

/// Writes the `message` field as is and every other field as ` key=value`.
struct LineVisitor<'a, 'w> {
    writer: &'a mut Writer<'w>,
    result: fmt::Result,
}

impl Visit for LineVisitor<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.result.is_err() {
            return;
        }
        self.result = if field.name() == "message" {
            self.writer.write_str(value)
        } else {
            write!(self.writer, " {}={}", field.name(), value)
        };
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.result.is_err() {
            return;
        }
        // `info!("text {x}")` records `message` as `fmt::Arguments`, whose Debug is the text.
        self.result = if field.name() == "message" {
            write!(self.writer, "{value:?}")
        } else {
            write!(self.writer, " {}={:?}", field.name(), value)
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Tracing caches each callsite's interest process-wide, combined over every live
    /// subscriber. Two tests with different levels running on parallel threads can
    /// leave a callsite cached as "always" or "never" from the other test's subscriber,
    /// so a debug line shows where only trace was asked for (seen under qemu, where
    /// the threads interleave more). One subscriber at a time keeps the cache honest.
    static ONE_SUBSCRIBER: Mutex<()> = Mutex::new(());

    fn one_subscriber() -> std::sync::MutexGuard<'static, ()> {
        ONE_SUBSCRIBER
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Collects what the logger writes.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Capture {
        type Writer = Capture;
        fn make_writer(&'w self) -> Capture {
            self.clone()
        }
    }

    /// Logs with `debug`/`trace` set and returns the lines, each without its
    /// `[PID] date time ` prefix (checked separately).
    fn log_lines(debug: bool, trace: bool, body: impl FnOnce()) -> Vec<String> {
        let _one = one_subscriber();
        let capture = Capture::default();
        tracing::subscriber::with_default(subscriber(debug, trace, capture.clone()), || {
            // Drop what an earlier test's (now gone) subscriber left in the cache.
            tracing::callsite::rebuild_interest_cache();
            body()
        });
        let text = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
        let prefix = format!("[{}] ", std::process::id());
        text.lines()
            .map(|line| {
                let rest = line.strip_prefix(&prefix).expect(line);
                // "2026/11/22 05:19:00.123456 " is 27 characters.
                let (stamp, rest) = rest.split_at(27);
                assert_eq!(stamp.as_bytes()[4], b'/', "{line}");
                assert_eq!(stamp.as_bytes()[19], b'.', "{line}");
                assert_eq!(stamp.as_bytes()[26], b' ', "{line}");
                rest.to_string()
            })
            .collect()
    }

    fn everything() {
        tracing::error!("e");
        tracing::warn!("w");
        tracing::info!("i");
        tracing::debug!("d");
        tracing::trace!("t");
        tracing::debug!(target: "async_io::reactor", "not ours");
    }

    #[test]
    fn the_ready_lines_come_out_verbatim() {
        let addr: std::net::SocketAddr = "127.0.0.1:4222".parse().unwrap();
        let lines = log_lines(false, false, || {
            tracing::info!("Listening for client connections on {addr}");
            tracing::info!("Server is ready");
        });
        assert_eq!(
            lines,
            [
                "[INF] Listening for client connections on 127.0.0.1:4222",
                "[INF] Server is ready"
            ]
        );
    }

    #[test]
    fn debug_and_trace_are_independent_switches() {
        let plain = ["[ERR] e", "[WRN] w", "[INF] i"];
        assert_eq!(log_lines(false, false, everything), plain);
        assert_eq!(
            log_lines(true, false, everything),
            [&plain[..], &["[DBG] d"]].concat()
        );
        assert_eq!(
            log_lines(false, true, everything),
            [&plain[..], &["[TRC] t"]].concat()
        );
        assert_eq!(
            log_lines(true, true, everything),
            [&plain[..], &["[DBG] d", "[TRC] t"]].concat()
        );
    }

    #[test]
    fn levels_change_on_reload() {
        let _one = one_subscriber();
        let capture = Capture::default();
        let (sub, handle) = subscriber_with_handle(false, false, capture.clone());
        tracing::subscriber::with_default(sub, || {
            tracing::debug!("hidden");
            handle.reload(levels(true, false)).unwrap();
            tracing::debug!("shown");
            handle.reload(levels(false, false)).unwrap();
            tracing::debug!("hidden again");
        });
        let text = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
        assert!(text.contains("[DBG] shown"), "{text}");
        assert!(!text.contains("hidden"), "{text}");
    }

    #[test]
    fn extra_fields_follow_the_message() {
        let lines = log_lines(false, false, || {
            tracing::warn!(cid = 5, reason = "Slow Consumer", "closing");
        });
        assert_eq!(lines, ["[WRN] closing cid=5 reason=Slow Consumer"]);
    }
}
