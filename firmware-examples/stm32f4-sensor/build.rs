//! defmt's linker script, for this firmware only (the other thumbv7em firmware has no defmt).
//! memory.x comes from embassy-stm32's `memory-x` feature (the F429ZI's 2 MiB flash, 192 KiB RAM).
fn main() {
    println!("cargo:rustc-link-arg-bins=-Tdefmt.x");
    println!("cargo:rerun-if-changed=build.rs");
}
