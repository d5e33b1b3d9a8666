//! `GET /api/openapi.json`: the API contract, an OpenAPI 3.1 document.
//!
//! The document is a checked-in file (`src/http/openapi.json`) embedded at
//! build time, not generated from the handlers: it is written for the
//! people and clients who read it. What keeps it true is tests: the unit
//! test below fails when a route of [`super::routes`] is missing from it,
//! when it documents a route that does not exist, or when an operation's
//! `x-access` differs from the route's [`Access`]; `tests/openapi.rs`
//! checks what the running server answers against the documented schemas.
//!
//! Served like the UI's `index.html`: `no-cache` plus a strong ETag, so a
//! client revalidates cheaply and sees a new version at once.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use hyper::{Method, Response, StatusCode};

use super::error::ApiResult;
use super::request::ApiRequest;
use super::router::{Access, Route};
use super::ServerState;

/// The document, as checked in.
pub const DOCUMENT: &str = include_str!("openapi.json");

/// Where it is served.
pub const PATH: &str = "/api/openapi.json";

/// The routes of this module.
pub fn routes() -> Vec<Route> {
    vec![Route::new(Method::GET, PATH, Access::Public, serve)]
}

/// A strong validator of [`DOCUMENT`]: the first 128 bits of its SHA-256,
/// computed once.
fn etag() -> &'static str {
    static ETAG: OnceLock<String> = OnceLock::new();
    ETAG.get_or_init(|| {
        let digest = ring::digest::digest(&ring::digest::SHA256, DOCUMENT.as_bytes());
        let hex: String = digest.as_ref()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("\"{hex}\"")
    })
}

async fn serve(_state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let tag = etag();
    let not_modified = req
        .headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    let mut r = if not_modified {
        let mut r = Response::new(Full::new(Bytes::new()));
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        Response::new(Full::new(Bytes::from_static(DOCUMENT.as_bytes())))
    };
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(tag) {
        h.insert(ETAG, v);
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use serde_json::Value;

    use super::*;
    use crate::constants::SESSION_COOKIE;
    use crate::http::auth::{CSRF_HEADER, CSRF_VALUE};
    use crate::http::error::ErrorCode;
    use crate::http::testing::TestServer;

    const FILE: &str = "src/http/openapi.json";
    const METHODS: &[&str] = &["get", "put", "post", "delete", "patch", "head", "options"];

    fn document() -> Value {
        serde_json::from_str(DOCUMENT).unwrap_or_else(|e| panic!("{FILE} is not valid JSON: {e}"))
    }

    /// `(METHOD, path)` → operation, for every operation of the document.
    fn operations(doc: &Value) -> BTreeMap<(String, String), &Value> {
        let mut ops = BTreeMap::new();
        let paths = doc["paths"]
            .as_object()
            .unwrap_or_else(|| panic!("{FILE}: `paths` must be an object"));
        for (path, item) in paths {
            let item = item
                .as_object()
                .unwrap_or_else(|| panic!("{FILE}: paths[{path}] must be an object"));
            for (key, op) in item {
                if METHODS.contains(&key.as_str()) {
                    ops.insert((key.to_ascii_uppercase(), path.clone()), op);
                } else {
                    assert!(
                        ["parameters", "summary", "description"].contains(&key.as_str()),
                        "{FILE}: paths[{path}] has an unknown key {key:?}"
                    );
                }
            }
        }
        ops
    }

    /// The served routes, without the test-only ones (`test-hooks`), which
    /// are not part of the contract.
    fn served() -> BTreeMap<(String, String), Access> {
        #[allow(unused_mut)]
        let mut hidden: BTreeSet<(String, String)> = BTreeSet::new();
        #[cfg(feature = "test-hooks")]
        hidden.extend(
            crate::http::test_hooks::routes()
                .iter()
                .map(|r| (r.method.to_string(), r.path.to_string())),
        );
        crate::http::routes()
            .into_iter()
            .map(|r| ((r.method.to_string(), r.path.to_string()), r.access))
            .filter(|(k, _)| !hidden.contains(k))
            .collect()
    }

    fn access_name(a: Access) -> &'static str {
        // No wildcard: a new Access variant must get a name here.
        match a {
            Access::Public => "public",
            Access::Webhook => "webhook",
            Access::User => "user",
            Access::Admin => "admin",
        }
    }

    /// Resolves a local reference (`#/components/schemas/User`).
    fn resolve<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
        doc.pointer(reference.strip_prefix('#')?)
    }

    /// Follows `$ref` until a concrete object.
    fn deref<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
        match v.get("$ref").and_then(Value::as_str) {
            Some(r) => deref(
                doc,
                resolve(doc, r).unwrap_or_else(|| panic!("{FILE}: unresolved $ref {r}")),
            ),
            None => v,
        }
    }

    fn collect_refs<'a>(v: &'a Value, at: String, out: &mut Vec<(String, &'a str)>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    if k == "$ref" {
                        if let Some(r) = x.as_str() {
                            out.push((at.clone(), r));
                        }
                    } else {
                        collect_refs(x, format!("{at}/{k}"), out);
                    }
                }
            }
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    collect_refs(x, format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn every_route_is_documented_and_every_documented_route_exists() {
        let doc = document();
        let ops = operations(&doc);
        let served = served();
        let mut problems = Vec::new();
        for ((method, path), access) in &served {
            match ops.get(&(method.clone(), path.clone())) {
                None => problems.push(format!(
                    "{method} {path} is served by http::routes() but not documented: add it to {FILE}"
                )),
                Some(op) => {
                    let want = access_name(*access);
                    if op["x-access"] != want {
                        problems.push(format!(
                            "{method} {path}: x-access is {} in {FILE} but the route declares Access::{access:?} (\"{want}\")",
                            op["x-access"]
                        ));
                    }
                }
            }
        }
        for (method, path) in ops.keys() {
            if !served.contains_key(&(method.clone(), path.clone())) {
                problems.push(format!(
                    "{method} {path} is documented in {FILE} but http::routes() has no such route: remove it there, or add the route"
                ));
            }
        }
        assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
    }

    #[test]
    fn the_document_is_well_formed_openapi_3_1() {
        let doc = document();
        let version = doc["openapi"].as_str().unwrap_or("");
        assert!(
            version.starts_with("3.1."),
            "{FILE}: openapi must be 3.1.x, is {version:?}"
        );
        assert!(doc["info"]["title"].is_string(), "{FILE}: info.title");
        assert_eq!(
            doc["info"]["version"],
            env!("CARGO_PKG_VERSION"),
            "{FILE}: info.version must be the crate's version"
        );
        let mut refs = Vec::new();
        collect_refs(&doc, String::new(), &mut refs);
        assert!(refs.len() > 50, "the document uses shared components");
        let unresolved: Vec<String> = refs
            .iter()
            .filter(|(_, r)| resolve(&doc, r).is_none())
            .map(|(at, r)| format!("{at}: $ref {r} does not resolve"))
            .collect();
        assert!(unresolved.is_empty(), "{FILE}:\n{}", unresolved.join("\n"));

        let mut ids = BTreeSet::new();
        let mut problems = Vec::new();
        for ((method, path), op) in operations(&doc) {
            let name = format!("{method} {path}");
            for key in ["summary", "operationId"] {
                if op[key].as_str().is_none_or(str::is_empty) {
                    problems.push(format!("{name}: needs a {key}"));
                }
            }
            if let Some(id) = op["operationId"].as_str() {
                if !ids.insert(id.to_string()) {
                    problems.push(format!("{name}: operationId {id} is used twice"));
                }
            }
            let Some(responses) = op["responses"].as_object() else {
                problems.push(format!("{name}: needs responses"));
                continue;
            };
            if !responses.keys().any(|s| s.starts_with('2')) {
                problems.push(format!("{name}: needs a success (2xx) response"));
            }
            // Every error answer is the one error format.
            for (status, resp) in responses {
                let is_error = status == "default" || status.starts_with(['4', '5']);
                let resp = deref(&doc, resp);
                if resp["description"].as_str().is_none() {
                    problems.push(format!("{name}: response {status} needs a description"));
                }
                if !is_error {
                    continue;
                }
                let schema = &resp["content"]["application/json"]["schema"];
                let is_error_schema = schema["$ref"] == "#/components/schemas/Error"
                    || (status == "503" && schema["$ref"] == "#/components/schemas/Readiness");
                if !is_error_schema {
                    problems.push(format!(
                        "{name}: response {status} must be application/json with the Error schema"
                    ));
                }
            }
            // Path parameters match the pattern's `{name}`s.
            let in_path: BTreeSet<String> = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                .map(str::to_string)
                .collect();
            let params: Vec<&Value> = op["parameters"]
                .as_array()
                .map(|a| a.iter().map(|p| deref(&doc, p)).collect())
                .unwrap_or_default();
            let declared: BTreeSet<String> = params
                .iter()
                .filter(|p| p["in"] == "path")
                .filter_map(|p| p["name"].as_str().map(str::to_string))
                .collect();
            if in_path != declared {
                problems.push(format!(
                    "{name}: path parameters {declared:?} differ from the pattern's {in_path:?}"
                ));
            }
            // The gate of http::auth, stated per operation.
            let access = op["x-access"].as_str().unwrap_or("");
            let writes = !matches!(method.as_str(), "GET" | "HEAD" | "OPTIONS");
            let csrf = params
                .iter()
                .any(|p| p["in"] == "header" && p["name"] == "X-Requested-With");
            let security = &op["security"];
            let (want_security, want_csrf) = match access {
                "public" => (serde_json::json!([]), writes),
                "webhook" => (serde_json::json!([{ "twilioSignature": [] }]), false),
                "user" | "admin" => (serde_json::json!([{ "session": [] }]), writes),
                other => {
                    problems.push(format!(
                        "{name}: x-access {other:?} is not public|webhook|user|admin"
                    ));
                    continue;
                }
            };
            if *security != want_security {
                problems.push(format!(
                    "{name}: security must be {want_security} for {access} routes"
                ));
            }
            if csrf != want_csrf {
                problems.push(format!(
                    "{name}: the X-Requested-With parameter ({}) must be listed exactly on state-changing non-webhook operations",
                    if csrf { "listed" } else { "missing" }
                ));
            }
            let has = |s: &str| responses.contains_key(s);
            if matches!(access, "user" | "admin") && !has("401") {
                problems.push(format!("{name}: a session route answers 401"));
            }
            if (access == "admin" || want_csrf || access == "webhook") && !has("403") {
                problems.push(format!("{name}: answers 403 (role, CSRF or signature)"));
            }
            if !in_path.is_empty() && !has("404") {
                problems.push(format!("{name}: a path with parameters answers 404"));
            }
        }
        assert!(problems.is_empty(), "{FILE}:\n{}", problems.join("\n"));
    }

    /// What the document says about the gate and the error format is what
    /// `http::auth` and `http::error` do.
    #[test]
    fn security_and_error_codes_match_the_server() {
        let doc = document();
        let session = &doc["components"]["securitySchemes"]["session"];
        assert_eq!(
            (&session["type"], &session["in"], &session["name"]),
            (&"apiKey".into(), &"cookie".into(), &SESSION_COOKIE.into())
        );
        let sig = &doc["components"]["securitySchemes"]["twilioSignature"];
        assert_eq!(
            (&sig["in"], &sig["name"]),
            (&"header".into(), &"X-Twilio-Signature".into())
        );
        let csrf = &doc["components"]["parameters"]["CsrfHeader"];
        assert_eq!(
            csrf["name"]
                .as_str()
                .map(str::to_ascii_lowercase)
                .as_deref(),
            Some(CSRF_HEADER)
        );
        assert_eq!(
            (&csrf["in"], &csrf["required"], &csrf["schema"]["const"]),
            (&"header".into(), &true.into(), &CSRF_VALUE.into())
        );

        let all = [
            ErrorCode::ValidationError,
            ErrorCode::AuthenticationError,
            ErrorCode::AuthorizationError,
            ErrorCode::NotFound,
            ErrorCode::RateLimited,
            ErrorCode::InternalError,
        ];
        // No wildcard: a new code must be added to the list above.
        for c in all {
            match c {
                ErrorCode::ValidationError
                | ErrorCode::AuthenticationError
                | ErrorCode::AuthorizationError
                | ErrorCode::NotFound
                | ErrorCode::RateLimited
                | ErrorCode::InternalError => {}
            }
        }
        let codes: Vec<Value> = all.iter().map(|c| serde_json::json!(c)).collect();
        assert_eq!(
            doc["components"]["schemas"]["ErrorCode"]["enum"],
            Value::Array(codes),
            "{FILE}: ErrorCode's enum lists http::error::ErrorCode"
        );
    }

    #[tokio::test]
    async fn served_as_json_with_an_etag() {
        let s = TestServer::start().await;
        let r = s.call("GET", PATH, None, None, &[]).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("cache-control"), Some("no-cache"));
        assert_eq!(r.json(), document());
        let tag = r.header("etag").expect("etag").to_string();
        assert_eq!(tag.len(), 34, "a quoted 128-bit hex digest: {tag}");
        let r = s
            .call("GET", PATH, None, None, &[("If-None-Match", &tag)])
            .await;
        assert_eq!((r.status, r.body.as_str()), (304, ""));
        let r = s
            .call("GET", PATH, None, None, &[("If-None-Match", "\"other\"")])
            .await;
        assert_eq!(r.status, 200);
    }
}
