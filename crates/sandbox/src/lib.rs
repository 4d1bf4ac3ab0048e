//! Veritrain's trainer sandbox.
//!
//! The trust model rests on one fact: the user's model runs where it cannot
//! touch the signing keys, the network, the inputs or the platform. This
//! crate runs one command under a [`Policy`] through a [`Sandbox`] backend
//! and reports an [`Outcome`]: how the job ended (with a stable failure
//! code), what it used, what it printed, what it left in `/out`, and the
//! applied policy as [`PolicyFacts`] for the AIBoM.
//!
//! In the job's data flow it sits between the intake gate (which has
//! accepted the model and data) and the attestation step (which signs what
//! the job produced): the worker calls [`Sandbox::run_streaming`] with the
//! trainer command, the runtime, the trainer code, the job's inputs and an
//! empty output directory.
//!
//! ```no_run
//! use veritrain_sandbox::{Bubblewrap, Policy, Sandbox, SandboxCommand};
//! # fn main() -> Result<(), veritrain_sandbox::Error> {
//! let sandbox = Bubblewrap::new()?;
//! let cmd = SandboxCommand::new("/opt/venv/bin/python")
//!     .args(["-I", "/opt/app/train.py", "/in/job.json"])
//!     .runtime("/var/lib/veritrain/runtime")
//!     .code("/usr/share/veritrain/trainer")
//!     .inputs("/var/lib/veritrain/jobs/42/in")
//!     .output("/var/lib/veritrain/jobs/42/out");
//! let outcome = sandbox.run_streaming(&cmd, &Policy::default(), &mut |line| {
//!     println!("progress: {line}");
//! })?;
//! if let Some(f) = outcome.failure() {
//!     eprintln!("{}: {f}", f.code());
//! }
//! # Ok(()) }
//! ```
//!
//! The design, threat model and every control are in `docs/sandbox.md`.

mod bwrap;
mod cancel;
mod cgroup;
mod command;
mod error;
mod facts;
mod outcome;
mod output;
mod policy;
mod seccomp;
mod staging;
mod sys;

pub use bwrap::{Bubblewrap, DEFAULT_BWRAP, DEFAULT_WORK_DIR};
pub use cancel::CancelToken;
pub use cgroup::{CgroupFacts, CgroupStats};
pub use command::{Bind, BindRole, CODE_DIR, INPUTS_DIR, OUTPUT_DIR, RUNTIME_DIR, SandboxCommand};
pub use error::{Error, Result};
pub use facts::{FACTS_SCHEMA, LimitFact, MountFact, PolicyFacts};
pub use outcome::{Captured, JobFailure, JobStatus, Outcome};
pub use output::{OutputReport, RefusedEntry};
pub use policy::{
    CgroupParent, DEFAULT_SERVICE_USER, Gpu, HostIdentity, Limits, Policy, SANDBOX_GID, SANDBOX_UID,
};
pub use seccomp::{CLONE_NEW_MASK, DeniedSyscall, DenyAction, SeccompFacts, SeccompProgram};

/// A way to run a command under a [`Policy`]. One backend today
/// ([`Bubblewrap`]); an OCI runtime can be added behind the same trait, and
/// the escape test suite runs against every backend.
pub trait Sandbox: Send + Sync {
    /// The backend's name, as in the facts.
    fn name(&self) -> &'static str;

    /// The facts of the policy this backend would apply to `cmd`, without
    /// running anything.
    fn facts(&self, cmd: &SandboxCommand, policy: &Policy) -> Result<PolicyFacts>;

    /// Run `cmd` to completion (or to the wall-clock limit, or until its
    /// [`CancelToken`] is cancelled). Every line the
    /// job writes to stdout is handed to `on_line` as it arrives (on the
    /// calling thread); the tails of stdout and stderr are kept in the
    /// outcome.
    ///
    /// `Err` means the platform could not run the job as the policy demands
    /// (or could not clean up after it); a job that ran and failed is
    /// `Ok` with a failed [`JobStatus`].
    fn run_streaming(
        &self,
        cmd: &SandboxCommand,
        policy: &Policy,
        on_line: &mut dyn FnMut(&str),
    ) -> Result<Outcome>;

    /// [`run_streaming`](Self::run_streaming) without a line callback.
    fn run(&self, cmd: &SandboxCommand, policy: &Policy) -> Result<Outcome> {
        self.run_streaming(cmd, policy, &mut |_| {})
    }
}
