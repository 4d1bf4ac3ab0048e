//! Veritrain's main job, end to end, with no server: [`job::run_job`] turns
//! a model, a dataset, its definition and a job request into a signed
//! bundle (`docs/bundle.md`), and [`verify::verify_bundle`] checks such a
//! bundle fully offline. `veritrain train`, `verify` and `quickstart` wire
//! these to the command line; the service's worker runs the same job.
//!
//! Where it sits: this crate only orders the steps. Every step is a
//! function of another crate (intake gate, hashing, in-toto, DSSE, SLSA,
//! sandboxed training, AIBoM), named in `ARCHITECTURE.md`.

pub mod archive;
pub mod bundle;
pub mod error;
pub mod host;
pub mod job;
pub mod keydir;
pub mod layout;
pub mod manifest;
pub mod request;
#[cfg(feature = "test-support")]
#[doc(hidden)]
pub mod testing;
pub mod verify;

pub use error::{Error, Result};
pub use job::{JobInputs, JobSettings, JobSummary, PlatformBinary, Progress, Stage, run_job};
pub use keydir::JobKeys;
pub use request::JobRequest;
pub use verify::{
    BundleOptions, Check, CheckStatus, Failure, HeldArtifact, ROOT_NOT_PINNED, Report,
    verify_bundle,
};
