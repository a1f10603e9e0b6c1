//! The flow-control wait shared by client outbounds and uplink outbounds: a publisher whose
//! deliveries pushed a buffer past its stall mark waits until the writer brings it back under,
//! or a bounded time (nats-server stalls a fast producer the same way, for at most a few ms,
//! rather than cutting off the consumer).

use std::time::Duration;

use event_listener::Event;

/// Longest wait of a stalled publisher per read batch (nats-server's `stallClientMaxDuration`).
pub const STALL_MAX: Duration = Duration::from_millis(5);

/// Waits until `stalled()` is false (re-checked whenever `event` fires), or `max` passed.
pub async fn wait_until_drained(event: &Event, max: Duration, stalled: impl Fn() -> bool) {
    let wait = async {
        loop {
            // Listen before checking, so a notify between the check and the await is not lost.
            let listener = event.listen();
            if !stalled() {
                return;
            }
            listener.await;
        }
    };
    futures_lite::FutureExt::or(wait, async {
        async_io::Timer::after(max).await;
    })
    .await;
}
