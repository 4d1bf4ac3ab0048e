//! The job state machine: the one place that says which state changes exist.
//!
//! ```text
//! queued ──claim──▶ validating ──▶ training ──▶ attesting ──▶ succeeded
//!   │                  │              │            │
//!   │                  ├──────────────┴────────────┴──▶ failed      (reason)
//!   ├──────────────────┴──────────────┴────────────┴──▶ cancelled   (reason)
//!   ◀──────────────────┴──────────────┴────────────┘  back to queued (lease lost, infra retry)
//! ```
//!
//! Terminal states (`succeeded`, `failed`, `cancelled`) have no way out, and
//! `succeeded` has exactly one way in: from `attesting`. Every write that
//! changes a job's state (claim, worker transition, cancel, lease sweep) is
//! planned by [`plan`] and then applied by the backend as a compare-and-swap
//! on the expected current state, so a failed job can never be reported as
//! succeeded, and two writers can never both win.

use crate::error::{Error, Result};
use crate::model::{Job, JobId, JobState, Lease, Reason, check_id};

/// Longest reason message stored.
pub const MAX_REASON_MESSAGE: usize = 4096;

/// Whether the state machine allows `from → to`.
pub fn allowed(from: JobState, to: JobState) -> bool {
    use JobState::*;
    matches!(
        (from, to),
        (Queued, Validating | Cancelled)
            | (Validating, Training | Failed | Cancelled | Queued)
            | (Training, Attesting | Failed | Cancelled | Queued)
            // The only way into `succeeded`.
            | (Attesting, Succeeded | Failed | Cancelled | Queued)
    )
}

/// Fails with `db.bad_transition` unless `from → to` is allowed.
pub fn check(from: JobState, to: JobState) -> Result<()> {
    if allowed(from, to) {
        Ok(())
    } else {
        Err(Error::BadTransition { from, to })
    }
}

/// A checked state change, ready for a backend to apply.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    pub from: JobState,
    pub to: JobState,
    pub reason: Option<Reason>,
    /// Set `finished_at` (terminal target).
    pub finished: bool,
    /// Drop the lease (the job leaves the running states).
    pub clear_lease: bool,
    /// Forget the worker (the job goes back to the queue for anyone).
    pub clear_worker: bool,
    /// Who made the change, recorded in the `state` event.
    pub by: &'static str,
}

/// Plans `from → to`: checks the move and the reason rule (failed and
/// cancelled need one, every other target must have none).
pub(crate) fn plan(
    from: JobState,
    to: JobState,
    reason: Option<Reason>,
    by: &'static str,
) -> Result<Plan> {
    check(from, to)?;
    let needs_reason = matches!(to, JobState::Failed | JobState::Cancelled);
    match (&reason, needs_reason) {
        (None, true) => {
            return Err(Error::BadReason {
                to,
                detail: "a reason code and message are required",
            });
        }
        (Some(_), false) => {
            return Err(Error::BadReason {
                to,
                detail: "only failed and cancelled jobs carry a reason",
            });
        }
        (Some(r), true) => {
            check_id("reason code", &r.code).map_err(|_| Error::BadReason {
                to,
                detail: "the reason code must be 1 to 256 bytes without control characters",
            })?;
            if r.message.len() > MAX_REASON_MESSAGE {
                return Err(Error::BadReason {
                    to,
                    detail: "the reason message is longer than 4096 bytes",
                });
            }
        }
        (None, false) => {}
    }
    Ok(Plan {
        from,
        to,
        reason,
        finished: to.is_terminal(),
        clear_lease: !to.is_running(),
        clear_worker: to == JobState::Queued,
        by,
    })
}

/// Extra conditions of a compare-and-swap besides the expected state.
#[derive(Clone, Debug)]
pub(crate) enum Fence {
    /// No condition (the owner cancelling a queued job).
    None,
    /// The worker must still hold this claim.
    Lease { worker_id: String, attempt: u32 },
    /// The lease of this claim must have run out by `now` (lease sweep).
    Expired {
        attempt: u32,
        now: chrono::DateTime<chrono::Utc>,
    },
}

impl Fence {
    pub(crate) fn of(lease: &Lease) -> Self {
        Fence::Lease {
            worker_id: lease.worker_id.clone(),
            attempt: lease.attempt,
        }
    }
}

/// Explains a compare-and-swap that matched no row, from the job as it is
/// now: a replay of a change that already happened is success (transitions
/// are idempotent); anything else is the precise error.
pub(crate) fn explain_miss(
    id: JobId,
    current: Option<Job>,
    plan: &Plan,
    fence: &Fence,
) -> Result<Job> {
    let job = current.ok_or(Error::NotFound { id })?;
    if let Fence::Lease { worker_id, attempt } = fence {
        let same_claim = job.attempts == *attempt
            && (job.worker_id.as_deref() == Some(worker_id.as_str())
                // Releasing to the queue forgets the worker; a replay still matches.
                || (plan.to == JobState::Queued && job.state == JobState::Queued));
        if !same_claim {
            return Err(Error::LeaseLost {
                id,
                worker_id: worker_id.clone(),
            });
        }
    }
    if job.state == plan.to {
        return Ok(job);
    }
    if job.state == plan.from && plan.to == JobState::Succeeded && job.bundle_key.is_none() {
        return Err(Error::BundleMissing { id });
    }
    Err(Error::StateConflict {
        id,
        expected: plan.from,
        actual: job.state,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use JobState::*;

    #[test]
    fn the_table_is_exactly_this() {
        let mut allowed_pairs = Vec::new();
        for from in JobState::ALL {
            for to in JobState::ALL {
                if allowed(from, to) {
                    allowed_pairs.push((from, to));
                }
            }
        }
        assert_eq!(
            allowed_pairs,
            vec![
                (Queued, Validating),
                (Queued, Cancelled),
                (Validating, Queued),
                (Validating, Training),
                (Validating, Failed),
                (Validating, Cancelled),
                (Training, Queued),
                (Training, Attesting),
                (Training, Failed),
                (Training, Cancelled),
                (Attesting, Queued),
                (Attesting, Succeeded),
                (Attesting, Failed),
                (Attesting, Cancelled),
            ]
        );
    }

    #[test]
    fn terminal_states_never_change_and_succeeded_needs_attesting() {
        for from in JobState::ALL {
            for to in JobState::ALL {
                if from.is_terminal() {
                    assert_eq!(check(from, to).unwrap_err().code(), "db.bad_transition");
                }
                if to == Succeeded && from != Attesting {
                    assert!(!allowed(from, to), "{from} -> succeeded must be refused");
                }
            }
        }
        // The prior art's bug, by name: a failed job reported as success.
        assert!(check(Failed, Succeeded).is_err());
    }

    #[test]
    fn reasons_only_on_failed_and_cancelled() {
        let r = || Some(Reason::new("x.y", "why"));
        assert!(plan(Training, Failed, r(), "t").is_ok());
        assert_eq!(
            plan(Training, Failed, None, "t").unwrap_err().code(),
            "db.bad_reason"
        );
        assert_eq!(
            plan(Training, Attesting, r(), "t").unwrap_err().code(),
            "db.bad_reason"
        );
        assert!(plan(Training, Failed, Some(Reason::new("", "m")), "t").is_err());
        let long = "m".repeat(MAX_REASON_MESSAGE + 1);
        assert!(plan(Training, Failed, Some(Reason::new("c", long)), "t").is_err());
    }

    #[test]
    fn plans_clear_what_the_target_needs() {
        let p = plan(Training, Queued, None, "t").unwrap();
        assert!(p.clear_worker && p.clear_lease && !p.finished);
        let p = plan(Attesting, Succeeded, None, "t").unwrap();
        assert!(!p.clear_worker && p.clear_lease && p.finished);
        let p = plan(Validating, Training, None, "t").unwrap();
        assert!(!p.clear_worker && !p.clear_lease && !p.finished);
    }
}
