//! The open files limit: raised from its soft value to the hard one at start, as the Go
//! runtime does for nats-server. Every client connection is a descriptor, and a service
//! manager's usual soft limit (1024) would refuse the 1025th device of a reconnect storm
//! while the hard limit (often 524288) allows it.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Raises the soft `RLIMIT_NOFILE` to the hard one; returns (before, after) when it changed.
/// A failure leaves the limit as it was: twig then serves as many as it may.
pub fn raise() -> Option<(u64, u64)> {
    let Rlimit { current, maximum } = getrlimit(Resource::Nofile);
    let soft = current?;
    // `None` is RLIM_INFINITY; the kernel refuses more than `fs.nr_open` for this resource.
    let hard = maximum.unwrap_or_else(nr_open);
    let target = hard.min(nr_open());
    if target <= soft {
        return None;
    }
    let new = Rlimit {
        current: Some(target),
        maximum,
    };
    setrlimit(Resource::Nofile, new).ok()?;
    Some((soft, target))
}

/// The kernel's ceiling for the open files limit (`fs.nr_open`, 1048576 by default).
fn nr_open() -> u64 {
    std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1 << 20)
}

#[cfg(test)]
mod tests {
    #[test]
    fn after_raising_the_soft_limit_is_the_hard_one() {
        super::raise();
        let l = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        assert_eq!(
            l.current.unwrap().min(super::nr_open()),
            l.maximum.unwrap_or(u64::MAX).min(super::nr_open())
        );
    }
}
