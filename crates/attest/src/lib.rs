//! Veritrain's attestation library.
//!
//! Everything Veritrain signs, and everything an auditor verifies offline,
//! goes through this crate:
//! - [`hash`]: streaming SHA-256 manifests of files and directories;
//! - [`keys`]: ECDSA P-256 / Ed25519 keys with securesystemslib key IDs, and
//!   the [`keys::Signer`] trait;
//! - [`cjson`]: OLPC canonical JSON, byte-identical to securesystemslib;
//! - [`intoto`]: in-toto v0.9 layouts, links and the full verification
//!   algorithm;
//! - [`dsse`], [`statement`]: DSSE v1 envelopes, in-toto Statement v1 and
//!   SLSA Provenance v1;
//! - [`keyset`]: the root-signed list of online signing keys that keeps old
//!   attestations verifiable after rotation.
//!
//! Verification results are [`Verified`] values: only a verify function makes
//! one, so code that acts on a document can only see checked data.

pub mod cjson;
pub mod dsse;
pub mod error;
pub mod hash;
pub mod intoto;
pub mod keys;
pub mod keyset;
pub mod statement;
pub mod verified;

pub use error::{Error, Result};
pub use verified::Verified;
