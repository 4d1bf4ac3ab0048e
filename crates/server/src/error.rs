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
}

impl ApiError {
    /// A client error (4xx) whose message the caller may read.
    pub fn client(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after_secs: None,
        }
    }

    /// A server error: `detail` is logged, the body says only what failed.
    pub fn internal(code: &'static str, detail: impl std::fmt::Display) -> Self {
        eprintln!("veritrain-server: internal error [{code}]: {detail}");
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code,
            message: "internal error; the details are in the server log".into(),
            retry_after_secs: None,
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
        let body = json!({"error": {"code": self.code, "message": self.message}});
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response
    }
}
