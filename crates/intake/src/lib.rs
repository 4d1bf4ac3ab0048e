//! Veritrain's intake gate.
//!
//! Everything a user uploads is hostile until proven otherwise. This crate
//! runs in the trusted worker, in Rust, before any Python process sees the
//! files, and turns each upload into a verdict: the facts observed (dataset
//! statistics, the model's layer summary) and every finding with a stable
//! code and its location. The AIBoM records those verdicts as facts the
//! platform observed.

pub mod csv;
pub mod definition;
pub mod error;
pub mod finding;
pub mod gate;
pub mod image;
pub mod keras;
pub mod tfrecord;
pub mod zip;

pub use error::{Error, Result};
pub use finding::{Finding, Location};
