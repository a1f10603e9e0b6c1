//! (logging: being written)
