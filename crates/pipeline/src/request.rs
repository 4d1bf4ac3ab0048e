//! The job request (`job.yaml`): what the user says about the model they
//! want trained and how to fit it. It ends up, unchanged, in
//! `inputs/job.yaml` (signed by the intake link), in the SLSA provenance's
//! `externalParameters` and, field by field, in the AIBoM.
//!
//! ```yaml
//! model:     # veritrain_bom::input::ModelRequest: name, version, description, authors, license, ...
//! dataset:   # veritrain_bom::input::DatasetRequest: description, source, license, owners, ...
//! fit:       # veritrain_runtime::FitRequest: epochs, batch_size, seed, ...
//! ```
//!
//! Unknown keys anywhere are refused with their key path, so a misspelt
//! field is an error instead of a silently dropped fact (one of the prior
//! art's defects).

use serde::{Deserialize, Serialize};
use veritrain_bom::input::{DatasetRequest, ModelRequest};
use veritrain_intake::definition::{DefinitionLimits, yaml_to_json};
use veritrain_runtime::FitRequest;

use crate::error::{Error, Result};

/// Longest job request accepted.
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;

/// A job request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobRequest {
    /// The trained model's identity and intended use.
    pub model: ModelRequest,
    /// What the user says about the dataset.
    #[serde(default)]
    pub dataset: DatasetRequest,
    /// Fit parameters; unset values get the platform's defaults.
    #[serde(default)]
    pub fit: FitRequest,
}

impl JobRequest {
    /// Parse a `job.yaml` (YAML 1.2; JSON is YAML too).
    ///
    /// # Errors
    /// [`Error::Request`] with the key path of the first problem; YAML-level
    /// problems (size, anchors, duplicate keys) keep the intake codes.
    pub fn parse(yaml: &[u8]) -> Result<JobRequest> {
        if yaml.len() > MAX_REQUEST_BYTES {
            return Err(Error::Request {
                path: "-".into(),
                message: format!(
                    "the request is {} bytes; the limit is {MAX_REQUEST_BYTES}",
                    yaml.len()
                ),
            });
        }
        let limits = DefinitionLimits {
            max_bytes: MAX_REQUEST_BYTES,
            ..DefinitionLimits::default()
        };
        let json = yaml_to_json(yaml, &limits)?;
        let request: JobRequest =
            serde_path_to_error::deserialize(json).map_err(|e| Error::Request {
                path: e.path().to_string(),
                message: e.inner().to_string(),
            })?;
        request.check()?;
        Ok(request)
    }

    /// The request a job without `--job` runs with: the model is named
    /// after its file, everything else is the platform's default.
    pub fn default_for(model_name: &str) -> JobRequest {
        JobRequest {
            model: ModelRequest {
                name: model_name.to_owned(),
                version: "1".to_owned(),
                ..ModelRequest::default()
            },
            ..JobRequest::default()
        }
    }

    fn check(&self) -> Result<()> {
        for (path, value) in [
            ("model.name", &self.model.name),
            ("model.version", &self.model.version),
        ] {
            if value.trim().is_empty() {
                return Err(Error::Request {
                    path: path.into(),
                    message: "must not be empty".into(),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[test]
    fn full_request_parses() {
        let r = JobRequest::parse(
            b"model:\n  name: m\n  version: '2'\n  authors: [{name: A, email: a@example.org}]\n\
              dataset:\n  owners: [{organization: {name: Org}}]\nfit:\n  epochs: 3\n  seed: 7\n",
        )
        .unwrap();
        assert_eq!(r.model.name, "m");
        assert_eq!(r.model.authors[0].email.as_deref(), Some("a@example.org"));
        assert_eq!(r.fit.epochs, Some(3));
        assert_eq!(r.dataset.owners.len(), 1);
    }

    #[test]
    fn misspelt_key_is_named_with_its_path() {
        let e = JobRequest::parse(
            b"model:\n  name: m\n  version: '1'\n  authors: [{name: A, emial: x}]\n",
        )
        .unwrap_err();
        assert_eq!(e.code(), "job.request_invalid");
        let text = e.to_string();
        assert!(text.contains("model.authors[0]"), "{text}");
        assert!(text.contains("emial"), "{text}");
    }

    #[test]
    fn empty_name_and_unknown_top_level_key_are_refused() {
        let e = JobRequest::parse(b"model: {name: ' ', version: '1'}\n").unwrap_err();
        assert!(e.to_string().contains("model.name"), "{e}");
        let e = JobRequest::parse(b"model: {name: m, version: '1'}\nfitt: {}\n").unwrap_err();
        assert!(e.to_string().contains("fitt"), "{e}");
    }

    #[test]
    fn fit_values_of_the_wrong_type_are_refused() {
        let e =
            JobRequest::parse(b"model: {name: m, version: '1'}\nfit: {epochs: ten}\n").unwrap_err();
        assert!(e.to_string().contains("fit.epochs"), "{e}");
    }

    #[test]
    fn yaml_anchors_keep_the_intake_code() {
        let e = JobRequest::parse(b"model: &a {name: m, version: '1'}\ndataset: *a\n").unwrap_err();
        assert!(e.code().starts_with("definition."), "{}", e.code());
    }
}
