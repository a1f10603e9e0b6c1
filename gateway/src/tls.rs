//! (tls: being written)
