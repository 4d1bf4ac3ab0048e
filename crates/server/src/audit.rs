//! The audit log's API side: what the service records (`record`) and the
//! admin's view of it (`GET /v1/audit`, `GET /v1/audit/verify`). The log
//! itself, append-only and hash-chained, is `veritrain_db::audit`.
//!
//! Recorded: submissions and refusals, cancels, downloads of artifacts and
//! bundles, integrity checks and tamper alerts, public verifications, failed
//! sign-ins (per client address up to its rate limit), and changes of the
//! served key set.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use veritrain_auth::Principal;
use veritrain_db::JobId;

use crate::App;
use crate::error::{ApiError, from_db};
use crate::jobs::Peer;

/// How a principal is named in the log: `tenant/object_id`.
pub(crate) fn actor(p: &Principal) -> String {
    format!("{}/{}", p.tenant, p.object_id)
}

/// Appends an entry; a failure to write is logged and counted, and does not
/// fail the request that caused it.
pub(crate) async fn record(
    app: &App,
    kind: &str,
    who: Option<&Principal>,
    job: Option<JobId>,
    detail: Value,
) {
    let Some(jobs) = &app.jobs else { return };
    let who = who.map(actor);
    if let Err(e) = jobs.db.audit(kind, who.as_deref(), job, &detail).await {
        app.metrics.audit_failures.fetch_add(1, Relaxed);
        eprintln!(
            "veritrain-server: audit entry {kind} not written [{}]: {e}",
            e.code()
        );
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditQuery {
    #[serde(default)]
    after: Option<u64>,
    #[serde(default)]
    limit: Option<u32>,
}

async fn admin(app: &App, headers: &HeaderMap, peer: std::net::IpAddr) -> Result<(), ApiError> {
    let p = crate::jobs::authenticated(app, headers, peer).await?;
    if !p.is_admin() {
        return Err(ApiError::client(
            StatusCode::FORBIDDEN,
            "auth.forbidden",
            "the audit log is for admins",
        ));
    }
    Ok(())
}

/// `GET /v1/audit?after=&limit=` (admin): entries oldest first; `next` is
/// the `after` of the next page.
pub(crate) async fn list(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Peer(peer): Peer,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    admin(&app, &headers, peer).await?;
    let Query(q) = query
        .map_err(|e| ApiError::client(StatusCode::BAD_REQUEST, "audit.bad_query", e.body_text()))?;
    let jobs = crate::jobs::jobs(&app)?;
    let limit = q.limit.unwrap_or(100);
    let entries = jobs
        .db
        .audit_after(q.after.unwrap_or(0), limit)
        .await
        .map_err(|e| from_db(&e))?;
    let next = (entries.len() as u64 >= u64::from(limit.clamp(1, veritrain_db::MAX_EVENTS)))
        .then(|| entries.last().map(|e| e.seq))
        .flatten();
    Ok(axum::Json(json!({"entries": entries, "next": next})).into_response())
}

/// `GET /v1/audit/verify` (admin): the whole chain checked.
pub(crate) async fn verify(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Peer(peer): Peer,
) -> Result<Response, ApiError> {
    admin(&app, &headers, peer).await?;
    let jobs = crate::jobs::jobs(&app)?;
    let check = jobs.db.verify_audit().await.map_err(|e| from_db(&e))?;
    Ok(axum::Json(json!({
        "intact": check.intact(),
        "entries": check.entries,
        "head": check.head,
        "broken_at": check.broken.as_ref().map(|b| b.0),
        "problem": check.broken.as_ref().map(|b| b.1.clone()),
    }))
    .into_response())
}
