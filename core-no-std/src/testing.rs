//! Helpers for twig's own tests and benchmarks (hidden from the docs; no API promise).

/// xorshift64*: seeded, dependency-free randomness, so every property test and benchmark
/// replays the same cases on every run.
#[derive(Clone, Debug)]
pub struct Rng(pub u64);

impl Rng {
    /// A generator from `seed` (0 is replaced, since xorshift would stay at 0).
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0.max(1);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform-ish in `0..n`; 0 when `n` is 0.
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// True with `percent` % probability.
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    /// One of `items` (which must not be empty).
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// A backlog as twig's forwarder sends it: `count` JSON sensor readings (about 105-115 bytes
/// each), each an `HMSG` with a reply subject and a `Nats-Msg-Id` header, sequence numbers
/// from `first_seq` on. What the S2 tests, benchmarks and fuzz seeds compress.
#[cfg(any(test, feature = "alloc"))]
pub fn sensor_backlog(rng: &mut Rng, first_seq: u64, count: usize) -> alloc::vec::Vec<u8> {
    use alloc::format;
    use alloc::vec::Vec;
    let mut out = Vec::new();
    let mut ts = 1_764_620_000_000u64 + rng.below(1000) as u64;
    let mut values = [215i64; 16];
    for i in 0..count {
        let seq = first_seq + i as u64;
        let sensor = rng.below(16);
        values[sensor] += rng.below(21) as i64 - 10;
        ts += 200 + rng.below(100) as u64;
        let status = if rng.chance(3) { "warn" } else { "ok" };
        let payload = format!(
            "{{\"sensor\":\"temp-{sensor:02}\",\"site\":\"plant-3\",\"ts\":{ts},\"seq\":{seq},\
             \"value\":{}.{:02},\"unit\":\"C\",\"status\":\"{status}\"}}",
            values[sensor] / 10,
            (values[sensor] % 10).abs() * 10 + rng.below(10) as i64
        );
        let headers = format!("NATS/1.0\r\nNats-Msg-Id: edge-gw-01.telemetry.{seq}\r\n\r\n");
        out.extend_from_slice(
            format!(
                "HMSG sensors.plant-3.temp-{sensor:02} _TWIG_FWD.edge-gw-01.telemetry.{seq} {} {}\r\n",
                headers.len(),
                headers.len() + payload.len()
            )
            .as_bytes(),
        );
        out.extend_from_slice(headers.as_bytes());
        out.extend_from_slice(payload.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}
