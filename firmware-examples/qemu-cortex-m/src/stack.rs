//! Stack high-water mark: paint the free RAM below the stack with a pattern at boot, and find
//! the lowest word the program overwrote at the end.

use core::ptr::addr_of;

/// Written into every free word at boot.
const PAINT: u32 = 0x5a5a_a5a5;
/// Left unpainted below the current stack pointer (the painting loop's own frame).
const MARGIN: usize = 256;

unsafe extern "C" {
    /// cortex-m-rt: the first free byte after `.bss` and `.uninit` (the heap's start; this
    /// firmware has no heap, so the stack may grow down to here).
    static __sheap: u32;
    /// cortex-m-rt: the initial stack pointer (the top of RAM).
    static _stack_start: u32;
}

/// The painted range: free RAM from the end of `.bss` up to the stack's top.
pub struct Probe {
    bottom: usize,
    top: usize,
}

/// Paints the free RAM below the stack pointer.
pub fn paint() -> Probe {
    let bottom = addr_of!(__sheap) as usize;
    let top = addr_of!(_stack_start) as usize;
    let sp = cortex_m::register::msp::read() as usize;
    let end = sp.saturating_sub(MARGIN);
    let mut p = bottom;
    while p + 4 <= end {
        // SAFETY: [bottom, sp - MARGIN) is RAM that nothing uses yet: above the statics
        // (cortex-m-rt's `__sheap`), below the live stack frames, no heap, no other thread.
        // The address is word aligned (`__sheap` is 4-aligned by link.x).
        unsafe { (p as *mut u32).write_volatile(PAINT) };
        p += 4;
    }
    Probe { bottom, top }
}

impl Probe {
    /// Bytes of stack used at most since [`paint`].
    pub fn used(&self) -> usize {
        let mut p = self.bottom;
        while p + 4 <= self.top {
            // SAFETY: reads a word of RAM inside the range painted above (aligned, mapped).
            if unsafe { (p as *const u32).read_volatile() } != PAINT {
                break;
            }
            p += 4;
        }
        self.top - p
    }
}
