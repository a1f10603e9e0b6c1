//! The sensor application of the board examples (`stm32f4-sensor`, `esp32c3-sensor`): every
//! period it takes a reading and publishes it to `sensors.<device>.temp` through a twig gateway;
//! it answers commands on `cmd.<device>`; while the gateway is unreachable it appends readings
//! to a [`Backlog`] (a flash log on the boards) and drains it, oldest first, once connected
//! again, each reading with a stable `Nats-Msg-Id` so a JetStream stream upstream drops
//! duplicates.
//!
//! The board crate brings the network stack (embassy-net over Ethernet or Wi-Fi), the sensor
//! and the backlog's storage, and calls [`run`]. The NATS session is twig-core's sans-IO
//! [`Client`]: this crate is its I/O shell (socket, clock, timers).
#![no_std]

mod backlog;
pub mod session;

pub use backlog::{Backlog, FlashBacklog, RamBacklog};
pub use session::{RECORD, run};

use core::net::Ipv4Addr;

/// Where the gateway is and who this device is.
#[derive(Clone, Copy, Debug)]
pub struct AppConfig<'a> {
    /// The twig gateway's client port.
    pub gateway: (Ipv4Addr, u16),
    /// Device name: the NATS connection name and the subject token (`sensors.<device>.temp`).
    pub device: &'a str,
    /// User and password, if the gateway requires them.
    pub credentials: Option<(&'a str, &'a str)>,
    /// This device's own user nkey seed (`SU...`): the gateway knows its public key and gives
    /// it its own permissions (e.g. `sensors.<device>.>` only). Takes precedence over
    /// `credentials` on a gateway that sends a nonce.
    pub nkey_seed: Option<&'a str>,
    /// Time between readings, in milliseconds (changed at run time by `interval <ms>`).
    pub period_ms: u64,
}

/// A source of readings.
pub trait Sensor {
    /// The temperature in hundredths of a degree Celsius.
    fn read_centi_celsius(&mut self) -> i32;
}

/// The client session this application runs: 2 subscriptions, 1 KiB to send, 96 bytes of names.
pub type Client<'a> = twig_core::client::Client<'a, 2, 1024, 96>;

/// Parses `a.b.c.d[:port]` (port 4222 when absent), e.g. from a build-time environment
/// variable.
pub fn parse_endpoint(s: &str) -> Option<(Ipv4Addr, u16)> {
    let (ip, port) = match s.split_once(':') {
        Some((ip, port)) => (ip, port.parse().ok()?),
        None => (s, 4222),
    };
    Some((ip.parse().ok()?, port))
}
