//! The OpenAPI 3.1 description served at `/openapi.json`: the endpoints
//! this server has today. A test checks that every route is described.

use serde_json::{Value, json};

/// The document.
pub fn document() -> Value {
    let error = json!({"$ref": "#/components/schemas/Error"});
    let err = |description: &str| json!({"description": description, "content": {"application/json": {"schema": error}}});
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
            }}
        },
        "components": {"schemas": {
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
                    "required": ["id", "title", "ok", "details", "failures"],
                    "properties": {
                        "id": {"type": "string"}, "title": {"type": "string"}, "ok": {"type": "boolean"},
                        "details": {"type": "array", "items": {"type": "string"}},
                        "failures": {"type": "array", "items": {"type": "object",
                            "properties": {"file": {"type": "string"}, "message": {"type": "string"}}}}
                    }}}
            }}
        }}
    })
}
