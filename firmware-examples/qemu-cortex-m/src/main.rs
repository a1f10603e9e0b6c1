//! twig-core on an emulated Cortex-M4 (QEMU `mps2-an386`): runs the sans-IO client through a
//! scripted conversation with a server, subject matching and the MQTT mapping table, prints
//! each result over semihosting, and exits QEMU with status 0 only if every check passed.
//!
//! ```sh
//! cd firmware-examples && cargo run --release -p qemu-cortex-m
//! ```
#![no_std]
#![no_main]

mod check;
mod conversation;
mod flash_log;
mod mqtt_table;
mod stack;
mod subjects;

use core::panic::PanicInfo;

use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprintln};

/// One group of checks: its name and how to run it (the number of checks passed, or `Err`
/// after printing what failed).
type Group = (&'static str, fn() -> check::Outcome);

const GROUPS: [Group; 4] = [
    (
        "client conversation (CONNECT, SUB, PUB, MSG, HMSG, PING/PONG, -ERR, reconnect)",
        conversation::run,
    ),
    ("subject validation and wildcard matching", subjects::run),
    (
        "MQTT topic <-> NATS subject mapping (nats-server's table)",
        mqtt_table::run,
    ),
    (
        "flash log: offline backlog, acknowledgement, power cut anywhere, recovery",
        flash_log::run,
    ),
];

#[entry]
fn main() -> ! {
    let probe = stack::paint();
    hprintln!(
        "twig-core {} on QEMU mps2-an386 (Cortex-M4F)",
        env!("CARGO_PKG_VERSION")
    );
    let mut failed = 0u32;
    for (name, run) in GROUPS {
        match run() {
            Ok(n) => hprintln!("ok   {} ({} checks)", name, n),
            Err(()) => {
                failed += 1;
                hprintln!("FAIL {}", name);
            }
        }
    }
    hprintln!(
        "client session Client<4, 512, 128>: {} bytes of RAM",
        conversation::CLIENT_BYTES
    );
    hprintln!("stack high-water mark: {} bytes", probe.used());
    if failed == 0 {
        hprintln!("all {} groups passed", GROUPS.len());
        debug::exit(debug::EXIT_SUCCESS);
    } else {
        hprintln!("{} of {} groups FAILED", failed, GROUPS.len());
        debug::exit(debug::EXIT_FAILURE);
    }
    // Only reached when no debugger/semihosting host ends the run.
    loop {
        cortex_m::asm::wfi();
    }
}

/// A panic is a failed run: say where, and exit with a failure status.
#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    hprintln!("PANIC {}", info);
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}
