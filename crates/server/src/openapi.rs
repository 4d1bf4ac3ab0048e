//! The OpenAPI 3.1 description served at `/openapi.json`. Tests check that
//! every route is described and every described route exists.

use serde_json::{Value, json};

/// The document.
pub fn document() -> Value {
    let error = json!({"$ref": "#/components/schemas/Error"});
    let err = |description: &str| json!({"description": description, "content": {"application/json": {"schema": error}}});
    let job = json!({"$ref": "#/components/schemas/Job"});
    let bearer = json!([{"bearer": []}]);
    let id_param = json!({"name": "id", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}});
    let auth_errors = |extra: &[(&str, Value)]| {
        let mut r = serde_json::Map::new();
        r.insert(
            "401".into(),
            err("no or invalid bearer token (`auth.*`; WWW-Authenticate: Bearer)"),
        );
        r.insert("403".into(), err("the token maps to no Veritrain role (`auth.no_role`), or the role may not do this (`auth.forbidden`)"));
        r.insert("503".into(), err("the identity provider, the database or the store is unavailable (`auth.idp_unreachable`, `db.unavailable`, `store.unavailable`; see Retry-After)"));
        for (k, v) in extra {
            r.insert((*k).into(), v.clone());
        }
        Value::Object(r)
    };
    let with = |mut base: Value, ok: (&str, Value)| {
        if let Some(m) = base.as_object_mut() {
            m.insert(ok.0.into(), ok.1);
        }
        base
    };
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Veritrain API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Trusted training with signed, offline-verifiable provenance. Errors are {\"error\": {\"code\", \"message\"}} with stable codes."
        },
        "paths": {
            "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {"description": "up"}}}},
            "/readyz": {"get": {"summary": "Readiness: trust material loaded, scratch space writable",
                "responses": {"200": {"description": "ready"}, "503": {"description": "not ready"}}}},
            "/metrics": {"get": {"summary": "Prometheus counters",
                "responses": {"200": {"description": "text exposition format", "content": {"text/plain": {}}}}}},
            "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3.1"}}}},
            "/.well-known/veritrain/root.pub": {"get": {"summary": "The root public key (SPKI PEM); pin it out of band",
                "responses": {"200": {"description": "PEM", "content": {"application/x-pem-file": {}}}}}},
            "/.well-known/veritrain/keyset.json": {"get": {"summary": "The root-signed key set (DSSE envelope)",
                "responses": {"200": {"description": "DSSE envelope", "content": {"application/json": {}}}}}},
            "/.well-known/veritrain/layout": {"get": {"summary": "The current in-toto layout, signed by the root key",
                "responses": {"200": {"description": "in-toto metablock", "content": {"application/json": {}}}}}},
            "/v1/verify": {"post": {
                "summary": "Verify a bundle, as `veritrain verify --root-key <the operator's root> --keyset <the latest key set>` would",
                "description": "Public, rate-limited per client address and bounded in size. The body is the bundle ZIP (`veritrain bundle pack`), or a form with a `bundle` part and up to 8 `artifact` parts to match against the bundle by digest.",
                "requestBody": {"required": true, "content": {
                    "application/zip": {"schema": {"type": "string", "contentMediaType": "application/zip"}},
                    "multipart/form-data": {"schema": {"type": "object", "required": ["bundle"], "properties": {
                        "bundle": {"type": "string", "contentMediaType": "application/zip"},
                        "artifact": {"type": "array", "items": {"type": "string", "contentMediaType": "application/octet-stream"}}
                    }}}
                }},
                "responses": {
                    "200": {"description": "The report: every check with ✓/✗ facts and failures; `passed` is true only when all passed",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Report"}}}},
                    "400": err("malformed form or body (`verify.bad_form`, `verify.no_bundle`)"),
                    "413": err("over the size limit (`verify.too_large`)"),
                    "415": err("not a ZIP or a form (`verify.media_type`)"),
                    "422": err("not a readable bundle archive (the ZIP reader's `zip.*` code)"),
                    "429": err("rate limited (`verify.rate_limited`; see Retry-After)"),
                    "503": err("every verification slot is busy (`verify.busy`; see Retry-After)")
                }
            }},
            "/v1/jobs": {
                "post": {
                    "summary": "Submit a training job (developer role)",
                    "description": "A multipart form with the parts, in this order: `job` (the job request, YAML or JSON: model metadata and fit parameters; docs/bundle.md), `definition` (the dataset definition YAML), `model` (the Keras v3 `.keras` file), and last `dataset` (CSV, image ZIP or TFRecord). The request, the definition schema and the `.keras` scan are checked before the dataset is read; the dataset streams into the object store, hashed on the way. A refused submission stores nothing.",
                    "security": bearer,
                    "requestBody": {"required": true, "content": {"multipart/form-data": {"schema": {"type": "object",
                        "required": ["job", "definition", "model", "dataset"],
                        "properties": {
                            "job": {"type": "string", "contentMediaType": "application/yaml"},
                            "definition": {"type": "string", "contentMediaType": "application/yaml"},
                            "model": {"type": "string", "contentMediaType": "application/zip"},
                            "dataset": {"type": "string", "contentMediaType": "application/octet-stream"}
                        }}}}},
                    "responses": auth_errors(&[
                        ("201", json!({"description": "queued; Location names the job", "content": {"application/json": {"schema": job}}})),
                        ("400", err("malformed form, parts out of order or missing (`jobs.bad_form`, `jobs.form_order`, `jobs.missing_part`)")),
                        ("413", err("a part is over its limit (`jobs.too_large`; `details.field` names it)")),
                        ("415", err("not a multipart form (`jobs.media_type`)")),
                        ("422", err("refused by the intake checks with the gate's codes (`job.request_invalid`, `definition.*`, `keras.*`, `zip.*`; `details.field` and `details.findings`)")),
                        ("429", err("too many queued or running jobs for this user (`jobs.too_many_active`)")),
                    ])
                },
                "get": {
                    "summary": "List jobs, newest first: the caller's own (developers), every job (auditors, admins)",
                    "security": bearer,
                    "parameters": [
                        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}},
                        {"name": "after", "in": "query", "description": "the `next` cursor of the previous page", "schema": {"type": "string"}},
                        {"name": "scope", "in": "query", "schema": {"enum": ["all", "mine"]}}
                    ],
                    "responses": auth_errors(&[
                        ("200", json!({"description": "a page", "content": {"application/json": {"schema": {"type": "object",
                            "properties": {"jobs": {"type": "array", "items": job}, "next": {"type": ["string", "null"]}}}}}})),
                        ("400", err("bad query or cursor (`jobs.bad_query`, `jobs.bad_cursor`)")),
                    ])
                }
            },
            "/v1/jobs/{id}": {"get": {
                "summary": "A job: state, reason code when failed or cancelled, progress (epoch and metrics)",
                "security": bearer, "parameters": [id_param],
                "responses": auth_errors(&[
                    ("200", json!({"description": "the job", "content": {"application/json": {"schema": job}}})),
                    ("404", err("no such job, or another user's (`jobs.not_found`)")),
                ])
            }},
            "/v1/jobs/{id}/events": {"get": {
                "summary": "Live progress and log as Server-Sent Events; resumable with Last-Event-ID",
                "description": "Each event: `id` = sequence number, `event` = kind (`state`, `progress`, `log`, `step`, `failure`, `retry`, `bundle`, `integrity`), `data` = JSON `{seq, at, kind, data}`. After a finished job's last event an `end` event closes the stream.",
                "security": bearer, "parameters": [id_param, {"name": "after", "in": "query", "schema": {"type": "integer"}}],
                "responses": auth_errors(&[
                    ("200", json!({"description": "the event stream", "content": {"text/event-stream": {}}})),
                    ("404", err("no such job (`jobs.not_found`)")),
                ])
            }},
            "/v1/jobs/{id}/cancel": {"post": {
                "summary": "Cancel a job (its owner or an admin): a queued job at once, a running one by its worker",
                "security": bearer, "parameters": [id_param],
                "responses": auth_errors(&[
                    ("200", json!({"description": "cancelled", "content": {"application/json": {"schema": job}}})),
                    ("202", json!({"description": "the worker was asked to stop it", "content": {"application/json": {"schema": job}}})),
                    ("404", err("no such job (`jobs.not_found`)")),
                    ("409", err("already finished (`jobs.already_finished`)")),
                ])
            }},
            "/v1/jobs/{id}/artifacts": {"get": {
                "summary": "The job's files: the bundle's once it succeeded, else the uploads",
                "security": bearer, "parameters": [id_param, {"name": "presign", "in": "query", "schema": {"type": "boolean"}}],
                "responses": auth_errors(&[
                    ("200", json!({"description": "`{job, complete, artifacts: [{name, size, sha256, url, presigned_url?}]}`", "content": {"application/json": {}}})),
                    ("404", err("no such job (`jobs.not_found`)")),
                ])
            }},
            "/v1/jobs/{id}/artifacts/{name}": {"get": {
                "summary": "One file, streamed (Repr-Digest: sha-256); with presign=true a presigned S3 URL instead",
                "security": bearer,
                "parameters": [id_param, {"name": "name", "in": "path", "required": true, "description": "a bundle path, e.g. outputs/model.keras", "schema": {"type": "string"}}, {"name": "presign", "in": "query", "schema": {"type": "boolean"}}],
                "responses": auth_errors(&[
                    ("200", json!({"description": "the file", "content": {"application/octet-stream": {}}})),
                    ("404", err("no such job or artifact (`jobs.not_found`, `jobs.no_such_artifact`)")),
                    ("409", err("presigned URLs need an S3 store (`store.presign_unsupported`)")),
                ])
            }},
            "/v1/jobs/{id}/bundle": {"get": {
                "summary": "The whole bundle as one ZIP; `veritrain verify` takes it directly",
                "security": bearer, "parameters": [id_param],
                "responses": auth_errors(&[
                    ("200", json!({"description": "the bundle", "content": {"application/zip": {}}})),
                    ("404", err("no such job (`jobs.not_found`)")),
                    ("409", err("no bundle yet (`jobs.no_bundle`), or a stored object changed (`jobs.integrity_failed`)")),
                ])
            }},
            "/v1/jobs/{id}/integrity": {"get": {
                "summary": "Re-hash every stored object of the job and verify the assembled bundle against the operator's root key and latest key set",
                "security": bearer, "parameters": [id_param],
                "responses": auth_errors(&[
                    ("200", json!({"description": "`{job, checked_at, passed, objects: [{name, status: ok|mismatch|missing, recorded_sha256, found_sha256, size}], verification: Report}`", "content": {"application/json": {}}})),
                    ("404", err("no such job (`jobs.not_found`)")),
                    ("409", err("no bundle yet (`jobs.no_bundle`)")),
                ])
            }},
            "/v1/audit": {"get": {
                "summary": "The audit log (admin): submissions, refusals, cancels, downloads, integrity checks and alerts, public verifications, failed sign-ins, key set changes; hash-chained",
                "security": bearer,
                "parameters": [{"name": "after", "in": "query", "schema": {"type": "integer"}}, {"name": "limit", "in": "query", "schema": {"type": "integer", "maximum": 1000}}],
                "responses": auth_errors(&[("200", json!({"description": "`{entries: [{seq, at, kind, actor, job_id, detail, prev_hash, hash}], next}`"}))])
            }},
            "/v1/audit/verify": {"get": {
                "summary": "Check the audit log's hash chain (admin)",
                "security": bearer,
                "responses": auth_errors(&[("200", json!({"description": "`{intact, entries, head, broken_at, problem}`"}))])
            }},
            "/v1/admin/sweep": {"post": {
                "summary": "Run the tamper sweep now (admin): every succeeded job's stored objects against its signed bundle",
                "security": bearer,
                "responses": auth_errors(&[("200", json!({"description": "`{checked, alerts: [job id], errors: [[job id, code]]}`"}))])
            }},
            "/v1/me": {"get": {
                "summary": "The caller's identity and Veritrain roles",
                "security": bearer,
                "responses": auth_errors(&[("200", json!({"description": "`{tenant, object_id, display_name, roles}`"}))])
            }},
            "/v1/dev/token": {"post": {
                "summary": "Dev mode only, loopback only: a token from the in-process dev issuer",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["subject"],
                    "properties": {"subject": {"type": "string"}, "roles": {"type": "array", "items": {"enum": ["developer", "auditor", "admin"]}}}}}}},
                "responses": with(json!({
                    "400": err("bad subject or roles (`auth.bad_request`)"),
                    "403": err("not from this machine (`auth.dev_remote`)"),
                    "404": err("dev sign-in is off (`api.not_found`)")
                }), ("200", json!({"description": "`{access_token, token_type, expires_in, subject, roles}`"})))
            }}
        },
        "components": {"securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                "description": "An OIDC access token (RS256 or ES256) from the configured issuer; docs/auth.md"}
        }, "schemas": {
            "Job": {"type": "object", "required": ["id", "state", "created_at"], "properties": {
                "id": {"type": "string", "format": "uuid"},
                "state": {"enum": ["queued", "validating", "training", "attesting", "succeeded", "failed", "cancelled"]},
                "reason": {"type": ["object", "null"], "properties": {"code": {"type": "string"}, "message": {"type": "string"}}},
                "owner": {"type": "object", "properties": {"tenant": {"type": "string"}, "object_id": {"type": "string"}}},
                "created_at": {"type": "string", "format": "date-time"},
                "updated_at": {"type": "string", "format": "date-time"},
                "started_at": {"type": ["string", "null"], "format": "date-time"},
                "finished_at": {"type": ["string", "null"], "format": "date-time"},
                "duration_secs": {"type": ["number", "null"]},
                "progress": {"type": ["object", "null"], "properties": {
                    "epoch": {"type": "integer"}, "total_epochs": {"type": "integer"}, "metrics": {"type": "object"}}},
                "cancel_requested": {"type": "boolean"},
                "attempts": {"type": "integer"},
                "request": {"type": "object", "description": "the job request as parsed: model metadata and fit parameters"},
                "inputs": {"type": "array", "items": {"type": "object", "properties": {
                    "name": {"type": "string"}, "size": {"type": "integer"}, "sha256": {"type": "string"}}}},
                "links": {"type": "object"}
            }},
            "Error": {"type": "object", "required": ["error"], "properties": {"error": {
                "type": "object", "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}},
            "Report": {"type": "object", "required": ["passed", "checks"], "properties": {
                "passed": {"type": "boolean"},
                "root_pinned": {"type": "boolean"},
                "root_keyid": {"type": ["string", "null"]},
                "job_id": {"type": ["string", "null"]},
                "model_sha256": {"type": ["string", "null"]},
                "signing_time": {"type": ["string", "null"], "format": "date-time"},
                "notes": {"type": "array", "items": {"type": "string"}},
                "checks": {"type": "array", "items": {"type": "object",
                    "required": ["id", "title", "status", "ok", "details", "failures"],
                    "properties": {
                        "id": {"type": "string"}, "title": {"type": "string"},
                        "status": {"enum": ["passed", "failed", "not_run"],
                            "description": "not_run: the check (or, with failures or details, the rest of it) could not run because a check it needs failed; see `needs`"},
                        "ok": {"type": "boolean", "description": "status == passed (kept for older clients)"},
                        "needs": {"type": "string", "description": "what it needed that an earlier check did not establish"},
                        "details": {"type": "array", "items": {"type": "string"}},
                        "failures": {"type": "array", "items": {"type": "object",
                            "required": ["file", "message"],
                            "properties": {"file": {"type": "string", "description": "the file at fault (bundle path); two files that disagree are joined with \", \""},
                                "code": {"type": "string", "description": "stable error code, where there is one"},
                                "message": {"type": "string"}}}}
                    }}}
            }}
        }}
    })
}
