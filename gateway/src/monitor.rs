//! (monitor: being written)
