//! The `twig` binary: flags and config in, a running server out; one clear line on failure.
use std::process::ExitCode;

fn main() -> ExitCode {
    twig_gateway::app::main(std::env::args_os().skip(1).collect())
}
