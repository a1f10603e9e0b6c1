//! Lame duck mode (SIGUSR2, `twig --signal ldm`), as nats-server's `lameDuckMode`:
//!
//! 1. the listeners are already closed (no client arrives after the others were told);
//! 2. every client that takes async INFO (CONNECT `protocol` 1, first PONG sent) gets an INFO
//!    with `"ldm":true`, so its library can move to another server before it is cut off;
//! 3. after `lame_duck_grace_period` the clients are closed one by one, spread over
//!    `lame_duck_duration` minus the grace period (at most 1 s apart, each gap random between
//!    half and all of its share, so a fleet of clients does not reconnect in one burst);
//! 4. then the server shuts down and twig exits 0.
//!
//! SIGINT during lame duck mode stops at once; SIGTERM is ignored, as nats-server does (the
//! app decides, see `app.rs`). A second SIGUSR2 changes nothing.
use std::sync::Arc;
use std::time::Duration;

use super::Control;
use super::state::Shared;
use twig_router::client::ClientShared;
use twig_router::outbound::CloseReason;
use twig_util::lock::lock;

/// When the clients are closed: the pause before the first, and between later ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Wait before closing the first client (`lame_duck_grace_period`).
    pub grace: Duration,
    /// Each client's share of the rest of `lame_duck_duration`, at most 1 s.
    pub interval: Duration,
}

impl Schedule {
    /// The schedule for `clients` connections (nats-server's arithmetic).
    pub fn new(clients: usize, duration: Duration, grace: Duration) -> Schedule {
        let spread = duration
            .checked_sub(grace)
            .filter(|d| !d.is_zero())
            .unwrap_or(Duration::from_secs(1));
        let n = u32::try_from(clients.max(1)).unwrap_or(u32::MAX);
        Schedule {
            grace,
            interval: (spread / n).clamp(Duration::from_nanos(1), Duration::from_secs(1)),
        }
    }

    /// The gap before the next close: uniform in [interval/2, interval) given a random
    /// `fraction` in [0, 1).
    pub fn gap(&self, fraction: f64) -> Duration {
        let half = self.interval / 2;
        half + (self.interval - half).mul_f64(fraction.clamp(0.0, 1.0))
    }
}

/// Runs lame duck mode to its end (every client closed), or until `control` says Stop.
pub async fn run(shared: &Arc<Shared>, control: &async_channel::Receiver<Control>) {
    tracing::info!("Entering lame duck mode, stop accepting new clients");
    shared.enter_lame_duck();
    let clients: Vec<Arc<ClientShared>> = lock(&shared.clients).values().cloned().collect();
    if clients.is_empty() {
        return;
    }
    for c in &clients {
        if c.takes_async_info() {
            let _ = c.out.push_bytes(shared.lame_duck_info_line(c).as_bytes());
            c.flush();
        }
    }
    let config = &shared.config;
    let schedule = Schedule::new(
        clients.len(),
        config.lame_duck_duration,
        config.lame_duck_grace_period,
    );
    if !wait(schedule.grace, control).await {
        return;
    }
    tracing::info!("Closing existing clients");
    let last = clients.len().saturating_sub(1);
    for (i, c) in clients.iter().enumerate() {
        c.out.close(CloseReason::ServerShutdown);
        if i < last && !wait(schedule.gap(random_fraction()), control).await {
            return;
        }
    }
}

/// Sleeps `d`; false when `control` asked to stop first (other requests are ignored).
async fn wait(d: Duration, control: &async_channel::Receiver<Control>) -> bool {
    let deadline = std::time::Instant::now() + d;
    loop {
        let timer = async {
            async_io::Timer::at(deadline).await;
            None
        };
        let asked = futures_lite::future::or(timer, async { Some(control.recv().await) }).await;
        match asked {
            None => return true,
            Some(Ok(Control::Stop)) | Some(Err(_)) => return false,
            Some(Ok(Control::LameDuck)) => {}
        }
    }
}

/// A random number in [0, 1) (0.5 without OS randomness: the midpoint is as good a spread).
fn random_fraction() -> f64 {
    let mut b = [0u8; 4];
    if twig_util::id::fill(&mut b).is_err() {
        return 0.5;
    }
    f64::from(u32::from_le_bytes(b)) / (f64::from(u32::MAX) + 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn clients_are_spread_over_the_duration_at_most_a_second_apart() {
        // nats-server's defaults: 2 minutes, 10 s grace.
        let s = Schedule::new(1000, S(120), S(10));
        assert_eq!(s.grace, S(10));
        assert_eq!(s.interval, Duration::from_millis(110));
        // Few clients: no more than a second between closes.
        assert_eq!(Schedule::new(3, S(120), S(10)).interval, S(1));
        // A grace period as long as the duration leaves one second to spread over.
        assert_eq!(
            Schedule::new(4, S(30), S(30)).interval,
            Duration::from_millis(250)
        );
        // Millions of clients never make a zero interval.
        assert!(!Schedule::new(usize::MAX, S(30), S(1)).interval.is_zero());
    }

    #[test]
    fn each_gap_is_between_half_and_all_of_the_interval() {
        let s = Schedule::new(10, S(30), S(1));
        assert_eq!(s.gap(0.0), s.interval / 2);
        assert!(s.gap(0.999) < s.interval);
        assert!(s.gap(0.999) > s.gap(0.5));
        assert_eq!(s.gap(7.0), s.interval);
        for _ in 0..100 {
            let f = random_fraction();
            assert!((0.0..1.0).contains(&f));
        }
    }
}
