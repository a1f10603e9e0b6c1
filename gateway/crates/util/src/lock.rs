//! Locking a mutex whose data stays consistent even if a holder panicked.
//!
//! Every shared structure of the gateway is updated in steps that leave it valid (whole ops
//! appended, counters added, entries inserted), so a poisoned lock carries no half-written
//! state: taking the data anyway keeps a panic in one task from taking the process down.
use std::sync::{Mutex, MutexGuard};

/// Locks `m`, ignoring poisoning (see the module docs).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
