//! Cancelling a running job: a flag shared between whoever decides to stop
//! it (the worker, when a user cancels) and the supervisor that runs it.
//!
//! The supervisor's watchdog ([`crate::Bubblewrap`]) looks at the flag at
//! least every 200 ms while it waits for the job; once it is set, the job is
//! killed the way a timeout kills it (the whole cgroup, then the backend)
//! and its outcome is [`JobFailure::Cancelled`](crate::JobFailure::Cancelled).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A request to stop a job. Clones share one flag, so the worker keeps one
/// clone and hands another to [`SandboxCommand::cancel_on`](crate::SandboxCommand::cancel_on);
/// cancelling is one-way and cannot be undone.
#[derive(Clone, Debug, Default)]
pub struct CancelToken {
    cancelled: Arc<AtomicBool>,
}

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Ask for the job to stop. Safe to call from any thread, any number of
    /// times.
    pub fn cancel(&self) {
        // The flag carries no other data, so no ordering with other memory
        // is needed.
        self.cancelled.store(true, Ordering::Relaxed);
    }

    /// Whether [`cancel`](Self::cancel) was called on this token or any
    /// clone of it.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_one_flag() {
        let a = CancelToken::new();
        let b = a.clone();
        assert!(!a.is_cancelled() && !b.is_cancelled());
        b.cancel();
        assert!(a.is_cancelled(), "cancelling a clone cancels the original");
        assert!(b.is_cancelled());
        // A token made separately is not affected.
        assert!(!CancelToken::default().is_cancelled());
    }

    #[test]
    fn a_cancel_from_another_thread_is_seen() {
        fn send_sync<T: Send + Sync + 'static>() {}
        send_sync::<CancelToken>();
        let token = CancelToken::new();
        let remote = token.clone();
        std::thread::spawn(move || remote.cancel()).join().unwrap();
        assert!(token.is_cancelled());
    }
}
