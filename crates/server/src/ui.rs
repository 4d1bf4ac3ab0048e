//! The web UI: a static single-page application (`crates/server/ui/`,
//! vanilla ES modules, no build step) compiled into the binary and served
//! from the same origin as the API, so an offline deployment needs nothing
//! else. The browser talks only to the public API (`/v1/...`, the trust
//! material); this module adds one public endpoint, `GET /v1/ui/config`,
//! which tells the page how users sign in. `docs/ui.md` describes the pages.
//!
//! Every UI response carries a strict Content-Security-Policy: scripts and
//! styles only from this origin (no inline script, so an injected string
//! cannot run), no framing (clickjacking), no plugins, no `<base>`
//! rewriting. `connect-src` adds the OIDC issuer's origins when OIDC sign-in
//! is configured, because the browser fetches the discovery document and
//! redeems the authorization code there itself.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::App;
use crate::error::ApiError;

/// One embedded file: its name under `/ui/`, content type and bytes.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

/// The UI's files. An allow-list: any other name under `/ui/` is a 404,
/// and nothing is ever read from disk.
const ASSETS: &[Asset] = &[
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../ui/app.js"),
    },
    Asset {
        name: "charts.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../ui/charts.js"),
    },
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../ui/app.css"),
    },
    Asset {
        name: "icon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("../ui/icon.svg"),
    },
];

const INDEX: &[u8] = include_bytes!("../ui/index.html");

/// The UI's routes.
pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/", get(index))
        .route("/ui/", get(index))
        .route("/ui/{name}", get(asset))
        .route("/v1/ui/config", get(config))
}

/// The Content-Security-Policy of every UI response for `app`.
fn csp(app: &App) -> String {
    let mut connect = vec!["'self'".to_owned()];
    if app.ui.oidc_client_id.is_some()
        && let Some(jobs) = &app.jobs
    {
        let oidc = jobs.auth.config();
        for url in [Some(oidc.issuer.as_str()), oidc.discovery_url.as_deref()]
            .into_iter()
            .flatten()
        {
            if let Some(origin) = origin(url)
                && !connect.contains(&origin)
            {
                connect.push(origin);
            }
        }
    }
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
         connect-src {}; object-src 'none'; base-uri 'none'; form-action 'self'; \
         frame-ancestors 'none'",
        connect.join(" ")
    )
}

/// `scheme://host[:port]` of an absolute http(s) URL.
fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme != "https" && scheme != "http" {
        return None;
    }
    let host = rest.split(['/', '?', '#']).next()?;
    // A character that could end the CSP directive is never copied into it.
    if host.is_empty()
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
    {
        return None;
    }
    Some(format!("{scheme}://{host}"))
}

fn with_headers(
    app: &App,
    content_type: &'static str,
    cache: &'static str,
    body: &'static [u8],
) -> Response {
    let mut res = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(v) = HeaderValue::from_str(&csp(app)) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    res
}

/// `GET /`: the application shell. Not cached, so a new release's shell
/// (and through it the new assets) is picked up at once.
async fn index(State(app): State<Arc<App>>) -> Response {
    with_headers(&app, "text/html; charset=utf-8", "no-cache", INDEX)
}

/// `GET /ui/{name}`: an embedded asset. Revalidated on every use
/// (`no-cache`): the files are small and the names carry no version.
async fn asset(State(app): State<Arc<App>>, Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.name == name) {
        Some(a) => with_headers(&app, a.content_type, "no-cache", a.body),
        None => ApiError::client(StatusCode::NOT_FOUND, "ui.not_found", "no such UI file")
            .into_response(),
    }
}

/// `GET /v1/ui/config` (public): how this server signs users in, and the
/// upload limits the submit form checks before sending.
async fn config(State(app): State<Arc<App>>) -> Response {
    let (dev, jobs_api, oidc, limits) = match &app.jobs {
        Some(jobs) => {
            let oidc = match (&app.ui.oidc_client_id, jobs.dev.is_some()) {
                (Some(client_id), false) => {
                    let c = jobs.auth.config();
                    let discovery = c.discovery_url.clone().unwrap_or_else(|| {
                        format!(
                            "{}/.well-known/openid-configuration",
                            c.issuer.trim_end_matches('/')
                        )
                    });
                    json!({
                        "issuer": c.issuer,
                        "discovery_url": discovery,
                        "client_id": client_id,
                        "scopes": app.ui.oidc_scopes,
                    })
                }
                _ => serde_json::Value::Null,
            };
            let l = &jobs.limits;
            let limits = json!({
                "max_model_bytes": l.max_model_bytes,
                "max_dataset_bytes": l.max_dataset_bytes,
                "max_definition_bytes": l.max_definition_bytes,
                "max_request_bytes": l.max_request_bytes,
            });
            (jobs.dev.is_some(), true, oidc, limits)
        }
        None => (
            false,
            false,
            serde_json::Value::Null,
            serde_json::Value::Null,
        ),
    };
    let body = json!({
        "jobs": jobs_api,
        "dev": dev,
        "oidc": oidc,
        "limits": limits,
        "verify_max_bytes": app.limits.max_bytes,
    });
    let mut res = axum::Json(body).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

#[cfg(test)]
mod tests {
    use super::origin;

    #[test]
    fn origin_keeps_scheme_host_and_port_only() {
        assert_eq!(
            origin("https://login.example.com:8443/tenant/v2.0?x=1").as_deref(),
            Some("https://login.example.com:8443")
        );
        assert_eq!(
            origin("http://127.0.0.1:5000").as_deref(),
            Some("http://127.0.0.1:5000")
        );
    }

    #[test]
    fn origin_refuses_what_could_break_out_of_the_csp() {
        // `;` would start a new directive of the policy.
        assert_eq!(origin("https://evil.example; script-src *"), None);
        assert_eq!(origin("javascript:alert(1)"), None);
        assert_eq!(origin("https:///path"), None);
    }
}
