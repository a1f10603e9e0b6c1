//! The binary's shell: parse flags, load the config, start logging, run the server on a small
//! executor until SIGINT/SIGTERM. Every startup failure is one line on stderr and exit code 1.

use std::process::ExitCode;
use std::sync::Arc;

use futures_lite::StreamExt;

use crate::cli::Cli;
use crate::config::Config;
use crate::server::Server;

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
fn log_banner(shared: &crate::server::state::Shared) {
    use crate::version;
    tracing::info!("Starting twig");
    tracing::info!(
        "  Version:  {} (speaks nats-server {})",
        version::TWIG,
        version::NATS_SERVER
    );
    if let Some(c) = version::git_commit() {
        tracing::info!("  Git:      [{c}]");
    }
    tracing::info!("  Name:     {}", shared.server_name);
    tracing::info!("  ID:       {}", shared.server_id);
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
    let mut config = Config::load(cli.config.as_deref()).map_err(|e| e.to_string())?;
    cli.apply(&mut config);
    config.validate().map_err(|e| e.to_string())?;
    if cli.test_config {
        println!("twig: configuration is valid");
        return Ok(());
    }
    crate::logging::init(config.debug, config.trace).map_err(|e| e.to_string())?;
    let config_threads = config.threads;
    let server = Server::bind(config).map_err(|e| e.to_string())?;
    log_banner(&server.shared());
    let monitor = crate::server::monitoring::bind(&server.shared()).map_err(|e| e.to_string())?;

    let ex = Arc::new(async_executor::Executor::new());
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

    let signals =
        async_signal::Signals::new([async_signal::Signal::Int, async_signal::Signal::Term])
            .map_err(|e| format!("cannot install signal handlers: {e}"))?;
    let shutdown = async move {
        let mut signals = signals;
        if let Some(Ok(sig)) = signals.next().await {
            tracing::debug!("Trapped {sig:?} signal");
        }
    };
    if let Some(m) = monitor {
        ex.spawn(m).detach();
    }
    crate::uplink::spawn(&server.shared(), &ex);
    crate::sync::spawn(&server.shared(), &ex).map_err(|e| e.to_string())?;
    crate::mqtt::spawn(&server.shared(), &ex).map_err(|e| e.to_string())?;
    async_io::block_on(ex.run(server.run(ex.clone(), shutdown)));
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
