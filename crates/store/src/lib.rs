//! Veritrain's object storage.
//!
//! The service keeps every byte a job owns here: the uploaded model, dataset
//! and definition on their way from `POST /v1/jobs` to a worker, and the
//! bundle a worker signs, until `veritrain verify` or `GET /v1/jobs/{id}/integrity`
//! reads it back. One API, [`Store`], has two backends:
//! - local disk (`object_store`'s `LocalFileSystem`), the embedded default of
//!   `veritrain serve`;
//! - an S3-compatible bucket (MinIO in production, s3s-fs in CI), for API
//!   nodes and workers on different machines.
//!
//! What every backend guarantees:
//! - keys are [`ObjectKey`]s, built by the service, never from client file names;
//! - writes are create-only: nothing already stored is replaced (`store.exists`);
//! - uploads stream with a size limit enforced as bytes arrive, and a refused
//!   or failed upload leaves no object behind;
//! - every write reports the SHA-256 of what was stored, computed on the fly,
//!   and [`Store::rehash`] recomputes it from the stored bytes.
//!
//! See `docs/storage.md` for the design and how the tests run against S3.

mod config;
mod error;
pub mod jobs;
mod key;
mod store;

pub use config::{S3Config, SECRET_ENV, SecretString, StoreConfig};
pub use error::{Error, Result};
pub use jobs::{BundleIndex, IndexEntry, JobObjects};
pub use key::{MAX_KEY_LEN, MAX_SEGMENT_LEN, ObjectKey};
pub use store::{Download, ObjectEntry, ObjectInfo, PART_SIZE, Store};
