//! Layer 4, `app`: the binary's shell and the one place the components are wired together.
//! Parse flags, load the config, start logging; build the router with the uplink's links
//! plugged in, start the streams and register them as its store, bind the client port and
//! the monitor ([`monitor`] answers it from each component's snapshots), start the uplink,
//! the sync consumers and the MQTT bridge; run everything on a small executor and handle
//! signals as nats-server does: SIGINT/SIGTERM stop, SIGUSR2 lame duck mode, SIGHUP reload
//! ([`crate::reload`]), SIGUSR1 reopen the log file. `--signal` sends one of those to a
//! running twig instead ([`crate::control`]). Every startup failure is one line on stderr and
//! exit code 1.

pub mod fdlimit;
pub mod monitor;
pub mod mqtt;

use std::process::ExitCode;
use std::sync::Arc;

use async_signal::Signal;
use futures_lite::StreamExt;

use crate::cli::Cli;
use crate::config::Config;
use crate::logging::Logger;
use crate::reload::Reloader;
use crate::router::Router;
use crate::server::{Control, Server};
use crate::util::id::Identity;

/// The sublist's shared result cache size (nats-server uses 1024 too).
const SUBLIST_CACHE: usize = 1024;

/// Runs `twig` with the given arguments (without the program name).
pub fn main(args: Vec<std::ffi::OsString>) -> ExitCode {
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("twig: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The lines nats-server starts with, twig's version first and the one it speaks beside it.
fn log_banner(identity: &Identity) {
    use crate::util::version;
    tracing::info!("Starting twig");
    tracing::info!(
        "  Version:  {} (speaks nats-server {})",
        version::TWIG,
        version::NATS_SERVER
    );
    if let Some(c) = version::git_commit() {
        tracing::info!("  Git:      [{c}]");
    }
    tracing::info!("  Name:     {}", identity.server_name);
    tracing::info!("  ID:       {}", identity.server_id);
}

fn run(args: Vec<std::ffi::OsString>) -> Result<(), String> {
    let cli = Cli::parse(args).map_err(|e| e.to_string())?;
    if cli.help {
        print!("{}", crate::cli::HELP);
        return Ok(());
    }
    if cli.version {
        println!("{}", crate::cli::version_line());
        return Ok(());
    }
    if let Some(req) = &cli.signal {
        // As nats-server: a PID from the request, else `--pid`, else the config's pid_file.
        let from_config = || {
            let c = cli.config.as_deref()?;
            Config::load(Some(c)).ok()?.pid_file
        };
        let pid_file = cli.pid_file.clone().or_else(from_config);
        return crate::control::send(req, pid_file.as_deref());
    }
    let (mut config, format) =
        Config::load_with_format(cli.config.as_deref()).map_err(|e| e.to_string())?;
    cli.apply(&mut config);
    config.validate().map_err(|e| e.to_string())?;
    if cli.test_config {
        match &cli.config {
            Some(p) => println!(
                "twig: configuration file {} is valid ({})",
                p.display(),
                format.name()
            ),
            None => println!("twig: configuration is valid (built-in defaults)"),
        }
        return Ok(());
    }
    let logger = crate::logging::init(config.debug, config.trace, config.log_file.as_deref())
        .map_err(|e| e.to_string())?;
    if let Some((before, after)) = fdlimit::raise() {
        tracing::debug!("Raised the open files limit from {before} to {after}");
    }
    if let Some(p) = &config.pid_file {
        std::fs::write(p, std::process::id().to_string())
            .map_err(|e| format!("cannot write pid_file {}: {e}", p.display()))?;
    }
    let config_threads = config.threads;
    let config = Arc::new(config);
    let identity = Identity::new(config.server_name.as_deref());

    // The router first, with the uplink's links plugged in (as remotes and interest
    // observers); then the store, set before the first client can publish.
    let ex = Arc::new(async_executor::Executor::new());
    let links = crate::uplink::links(&config.leafnodes);
    let router = Arc::new(Router::with_links(SUBLIST_CACHE, links.clone()));
    let uplinks = crate::uplink::uplinks::Uplinks::new(&router, &config, &identity, &links, &ex);
    let streams = if config.streams.is_empty() {
        None
    } else {
        let streams =
            Arc::new(crate::stream::Streams::start(&router, &config).map_err(|e| e.to_string())?);
        router.set_store(streams.clone());
        Some(streams)
    };
    let server = Server::bind(config.clone(), router.clone(), identity.clone())
        .map_err(|e| e.to_string())?;
    log_banner(&identity);
    let mut reloader = Reloader::new(cli.clone(), (*config).clone())
        .with_clients(server.shared())
        .with_uplinks(uplinks.clone());
    if let Some(s) = &streams {
        reloader = reloader.with_streams(s.clone());
    }
    let sources = Arc::new(monitor::Sources {
        config: config.clone(),
        router: router.clone(),
        clients: server.shared(),
        uplinks: uplinks.clone(),
        http_port: std::sync::atomic::AtomicU64::new(0),
        streams,
        sync: std::sync::OnceLock::new(),
        mqtt: std::sync::OnceLock::new(),
        mqtt_listener: std::sync::OnceLock::new(),
    });
    let monitor = monitor::bind(&sources)?;

    // `threads` executor threads in all: the main thread runs the accept loop and a share of
    // the connections; `threads - 1` workers run the rest.
    let threads = match config_threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let extra = threads.saturating_sub(1);
    let (stop_tx, stop_rx) = async_channel::bounded::<()>(1);
    let workers: Vec<_> = (0..extra)
        .map(|i| {
            let ex = ex.clone();
            let stop = stop_rx.clone();
            std::thread::Builder::new()
                .name(format!("twig-{i}"))
                .spawn(move || async_io::block_on(ex.run(async { stop.recv().await.ok() })))
                .map_err(|e| format!("cannot start a worker thread: {e}"))
        })
        .collect::<Result<_, _>>()?;

    let signals = async_signal::Signals::new([
        Signal::Int,
        Signal::Term,
        Signal::Usr1,
        Signal::Usr2,
        Signal::Hup,
    ])
    .map_err(|e| format!("cannot install signal handlers: {e}"))?;
    let (control_tx, control_rx) = async_channel::bounded::<Control>(4);
    if let Some(m) = monitor {
        ex.spawn(m).detach();
    }
    uplinks.start();
    let sync = crate::sync::spawn(&router, &config, &ex).map_err(|e| e.to_string())?;
    let _ = sources.sync.set(sync);
    if let Some(bridge) = crate::mqtt::spawn(&router, &config, &ex).map_err(|e| e.to_string())? {
        let _ = sources.mqtt.set(bridge);
    }
    let mqtt_listener = match mqtt::start(&config, &router, &server.shared(), &ex)? {
        Some(m) => {
            let _ = sources.mqtt_listener.set(m.listener.clone());
            let l = m.listener.clone();
            reloader = reloader.with_mqtt(m);
            Some(l)
        }
        None => None,
    };
    // Signals were trapped from the start (they wait in `signals`); they are handled once
    // everything a reload applies to is running.
    ex.spawn(handle_signals(signals, control_tx, logger, reloader))
        .detach();
    async_io::block_on(ex.run(server.run(ex.clone(), control_rx)));
    if let Some(l) = &mqtt_listener {
        l.shutdown();
    }
    // Give writers a moment to flush the close to each client, then stop the workers.
    async_io::block_on(
        ex.run(async_io::Timer::after(std::time::Duration::from_millis(
            100,
        ))),
    );
    drop(stop_tx);
    for w in workers {
        let _ = w.join();
    }
    Ok(())
}

/// Go's names for the signals, as nats-server logs them (`Trapped "terminated" signal`).
fn go_name(sig: Signal) -> &'static str {
    match sig {
        Signal::Int => "interrupt",
        Signal::Term => "terminated",
        Signal::Usr1 => "user defined signal 1",
        Signal::Usr2 => "user defined signal 2",
        Signal::Hup => "hangup",
        _ => "signal",
    }
}

/// Turns signals into server controls, reloads and log reopens, for as long as twig runs.
async fn handle_signals(
    mut signals: async_signal::Signals,
    control: async_channel::Sender<Control>,
    mut logger: Logger,
    mut reloader: Reloader,
) {
    let mut lame_duck = false;
    while let Some(Ok(sig)) = signals.next().await {
        tracing::info!("Trapped {:?} signal", go_name(sig));
        match sig {
            Signal::Int => {
                let _ = control.send(Control::Stop).await;
            }
            // As nats-server: SIGTERM does not cut lame duck mode short.
            Signal::Term if !lame_duck => {
                let _ = control.send(Control::Stop).await;
            }
            Signal::Usr2 if !lame_duck => {
                lame_duck = true;
                let _ = control.send(Control::LameDuck).await;
            }
            Signal::Usr1 => match logger.reopen() {
                Ok(true) => tracing::info!("File log re-opened"),
                Ok(false) => tracing::info!("File log re-open ignored, not a file logger"),
                Err(e) => tracing::error!(
                    "File log re-open failed ({}): {e}; still logging to the old file",
                    logger
                        .file()
                        .map(|f| f.display().to_string())
                        .unwrap_or_default()
                ),
            },
            Signal::Hup => {
                // On a blocking thread: a reload reads the file and checks every open login
                // again, bcrypt ones included (tens of ms each), which must not hold up the
                // executor. Signals wait meanwhile; connections do not.
                let (mut r, l) = (reloader, logger);
                (reloader, logger) = blocking::unblock(move || {
                    r.reload(Some(&l));
                    (r, l)
                })
                .await;
            }
            _ => {}
        }
    }
}
