//! A tiny check harness for firmware: count checks, print the first failure with its line.

use core::fmt;

/// Checks passed in a group, or `Err(())` after the failure was printed.
pub type Outcome = Result<u32, ()>;

/// Counts the checks of one group.
#[derive(Default)]
pub struct Checks {
    pub count: u32,
}

/// `ensure!(checks, condition, "format", args…)`: counts a check; on failure prints the
/// message with its source line and returns `Err(())` from the enclosing function.
#[macro_export]
macro_rules! ensure {
    ($checks:expr, $cond:expr, $($msg:tt)+) => {{
        $checks.count += 1;
        if !$cond {
            cortex_m_semihosting::hprintln!(
                "  check failed at {}:{}: {}",
                file!(),
                line!(),
                format_args!($($msg)+)
            );
            return Err(());
        }
    }};
}

/// `fail!("format", args…)`: prints a failure with its source line and returns `Err(())`.
#[macro_export]
macro_rules! fail {
    ($($msg:tt)+) => {{
        cortex_m_semihosting::hprintln!(
            "  check failed at {}:{}: {}",
            file!(),
            line!(),
            format_args!($($msg)+)
        );
        return Err(());
    }};
}

/// Bytes shown as text, with anything unprintable escaped (`\r`, `\n`, `\xNN`).
pub struct Show<'a>(pub &'a [u8]);

impl fmt::Display for Show<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for &b in self.0 {
            match b {
                b'\r' => f.write_str("\\r")?,
                b'\n' => f.write_str("\\n")?,
                b'"' => f.write_str("\\\"")?,
                0x20..=0x7e => write!(f, "{}", b as char)?,
                _ => write!(f, "\\x{:02x}", b)?,
            }
        }
        f.write_str("\"")
    }
}

impl fmt::Debug for Show<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
