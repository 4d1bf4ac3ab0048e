//! The one HTTP error boundary: every error the API returns is an
//! [`ApiError`] with a status, a stable code and a sentence, as
//! `{"error": {"code", "message"}}`. Server errors (5xx) carry a generic
//! message; their details go to the log only.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after_secs: Option<u64>,
    challenge: Option<&'static str>,
    details: Option<serde_json::Value>,
}

impl ApiError {
    /// A client error (4xx) whose message the caller may read.
    pub fn client(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after_secs: None,
            challenge: None,
            details: None,
        }
    }

    /// This error with a `WWW-Authenticate` challenge (401 responses).
    pub fn with_challenge(mut self, challenge: &'static str) -> Self {
        self.challenge = Some(challenge);
        self
    }

    /// This error with structured details (`error.details` in the body):
    /// the gate's findings, the form field concerned.
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }

    /// A server error: `detail` is logged, the body says only what failed.
    pub fn internal(code: &'static str, detail: impl std::fmt::Display) -> Self {
        eprintln!("veritrain-server: internal error [{code}]: {detail}");
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code,
            message: "internal error; the details are in the server log".into(),
            retry_after_secs: None,
            challenge: None,
            details: None,
        }
    }

    /// The service cannot take the request now; retry after `secs`.
    pub fn busy(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
        secs: u64,
    ) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after_secs: Some(secs),
            challenge: None,
            details: None,
        }
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({"error": {"code": self.code, "message": self.message}});
        if let (Some(details), Some(error)) = (
            self.details,
            body.get_mut("error").and_then(|e| e.as_object_mut()),
        ) {
            error.insert("details".into(), details);
        }
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        if let Some(c) = self.challenge {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(c));
        }
        response
    }
}

/// The response for a job-database error.
pub(crate) fn from_db(e: &veritrain_db::Error) -> ApiError {
    use veritrain_db::Error as E;
    match e {
        E::NotFound { .. } | E::BadId(_) => {
            ApiError::client(StatusCode::NOT_FOUND, "jobs.not_found", "no such job")
        }
        E::BadCursor(_) => {
            ApiError::client(StatusCode::BAD_REQUEST, "jobs.bad_cursor", e.to_string())
        }
        E::InvalidInput { .. } => {
            ApiError::client(StatusCode::BAD_REQUEST, e.code(), e.to_string())
        }
        E::Backend(_) => {
            eprintln!("veritrain-server: database unavailable [{}]: {e}", e.code());
            ApiError::busy(
                StatusCode::SERVICE_UNAVAILABLE,
                "db.unavailable",
                "the job database is unavailable; retry shortly",
                5,
            )
        }
        _ => ApiError::internal(e.code(), e),
    }
}

/// The response for an object-store error.
pub(crate) fn from_store(e: &veritrain_store::Error) -> ApiError {
    use veritrain_store::Error as E;
    match e {
        E::NotFound { .. } => ApiError::internal(
            e.code(),
            format!("a stored object the job record names is missing: {e}"),
        ),
        E::TooLarge { limit, .. } => ApiError::client(
            StatusCode::PAYLOAD_TOO_LARGE,
            "jobs.too_large",
            format!("the upload is over the limit of {limit} bytes"),
        ),
        E::Source { .. } => ApiError::client(
            StatusCode::BAD_REQUEST,
            "jobs.upload_interrupted",
            "the upload stopped before it was complete",
        ),
        E::Backend { .. } | E::Io { .. } => {
            eprintln!(
                "veritrain-server: object store unavailable [{}]: {e}",
                e.code()
            );
            ApiError::busy(
                StatusCode::SERVICE_UNAVAILABLE,
                "store.unavailable",
                "the object store is unavailable; retry shortly",
                5,
            )
        }
        _ => ApiError::internal(e.code(), e),
    }
}
