//! The crate's one lock helper.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks a mutex, ignoring poisoning: every critical section in this crate leaves its
/// data consistent at each step, and a transport catches a panicking turn, so refusing
/// to go on would turn one bug into a dead server.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
