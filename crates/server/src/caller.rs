//! Who is calling: every jobs route starts with [`authenticate`], which
//! checks the bearer token with the configured [`Authenticator`] and
//! returns the [`Principal`]; failures are counted and answered 401 (bad or
//! missing token), 403 (a valid token without a Veritrain role) or 503 (the
//! identity provider cannot be reached).

use std::sync::atomic::Ordering::Relaxed;

use axum::http::{HeaderMap, StatusCode, header};
use veritrain_auth::{Authenticator, Principal};
use veritrain_db::{Owner, Visibility};

use crate::error::ApiError;
use crate::metrics::Metrics;

/// Authenticates the request's `Authorization` header.
pub(crate) async fn authenticate(
    auth: &Authenticator,
    metrics: &Metrics,
    headers: &HeaderMap,
) -> Result<Principal, ApiError> {
    let header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    auth.authenticate(header).await.map_err(|e| {
        metrics.auth_failures.fetch_add(1, Relaxed);
        refusal(&e)
    })
}

/// The response to a refused token.
fn refusal(e: &veritrain_auth::Error) -> ApiError {
    use veritrain_auth::Error as E;
    match e {
        E::NoRole => ApiError::client(StatusCode::FORBIDDEN, e.code(), e.to_string()),
        E::IdpUnreachable(_) | E::Config(_) => ApiError::busy(
            StatusCode::SERVICE_UNAVAILABLE,
            e.code(),
            "the identity provider cannot be reached to check the token; retry shortly",
            5,
        ),
        E::Missing => ApiError::client(StatusCode::UNAUTHORIZED, e.code(), e.to_string())
            .with_challenge("Bearer"),
        _ => ApiError::client(StatusCode::UNAUTHORIZED, e.code(), e.to_string())
            .with_challenge("Bearer error=\"invalid_token\""),
    }
}

/// The owner a principal's jobs are stored under.
pub(crate) fn owner(p: &Principal) -> Result<Owner, ApiError> {
    Owner::new(p.tenant.clone(), p.object_id.clone()).map_err(|e| {
        ApiError::client(
            StatusCode::FORBIDDEN,
            "auth.bad_identity",
            format!("the token's identity cannot own jobs: {e}"),
        )
    })
}

/// Which jobs a principal may read: auditors and admins all, developers
/// their own. Another user's job then reads as `404`, never `403`, so ids
/// of other users' jobs cannot be probed.
pub(crate) fn read_visibility(p: &Principal) -> Result<Visibility, ApiError> {
    if p.can_read_all() || p.is_admin() {
        Ok(Visibility::All)
    } else {
        owner(p).map(Visibility::Owner)
    }
}

/// Which jobs a principal may change (cancel): admins all, everyone else
/// their own. Auditors read; they do not act on other users' jobs.
pub(crate) fn write_visibility(p: &Principal) -> Result<Visibility, ApiError> {
    if p.is_admin() {
        Ok(Visibility::All)
    } else {
        owner(p).map(Visibility::Owner)
    }
}
