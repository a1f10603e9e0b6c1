//! The `twig` binary.
fn main() {}
