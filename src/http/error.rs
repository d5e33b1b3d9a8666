//! The API's one error format: `{"error":{"code","message","details"}}`.
//!
//! Every error the HTTP server emits — unknown routes, bad JSON, oversized
//! bodies, panics — goes through [`ApiError`], so clients parse one shape.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Response, StatusCode};
use serde::Serialize;
use serde_json::{json, Value};

use crate::store::StoreError;

/// The plan's error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// The request is malformed or fails validation (400, 405, 409, 413, 415).
    ValidationError,
    /// No valid session (401).
    AuthenticationError,
    /// A session without the right role (403).
    AuthorizationError,
    /// No such route or resource (404).
    NotFound,
    /// Too many attempts (429).
    RateLimited,
    /// Our fault (500), or a service we depend on failed (502).
    InternalError,
}

/// A field-level validation problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The offending field.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// An error answer of the API.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Machine-readable code.
    pub code: ErrorCode,
    /// Human-readable message.
    pub message: String,
    /// Extra structure: field errors, limits…
    pub details: Value,
    /// Seconds to wait (429, 503).
    pub retry_after: Option<u64>,
    /// Allowed methods (405).
    pub allow: Option<String>,
}

/// The result of an API handler.
pub type ApiResult = Result<Response<Full<Bytes>>, ApiError>;

impl ApiError {
    fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: Value::Null,
            retry_after: None,
            allow: None,
        }
    }

    /// 400 with a message.
    #[cold]
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorCode::ValidationError, message)
    }

    /// 400 with per-field details.
    #[cold]
    pub fn fields(message: impl Into<String>, fields: Vec<FieldError>) -> Self {
        let mut e = Self::validation(message);
        e.details = json!(fields);
        e
    }

    /// 401.
    #[cold]
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::AuthenticationError,
            message,
        )
    }

    /// 403.
    #[cold]
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            ErrorCode::AuthorizationError,
            message,
        )
    }

    /// 404.
    #[cold]
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, message)
    }

    /// 405 for a known path with another method.
    #[cold]
    pub fn method_not_allowed(method: &str, path: &str, allow: String) -> Self {
        let mut e = Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::ValidationError,
            format!("{method} is not allowed on {path}; allowed: {allow}"),
        );
        e.allow = Some(allow);
        e
    }

    /// 409: the request conflicts with the current state.
    #[cold]
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, ErrorCode::ValidationError, message)
    }

    /// 413 with the limit in the details.
    #[cold]
    pub fn payload_too_large(limit: usize) -> Self {
        let mut e = Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::ValidationError,
            format!("request body exceeds the limit of {limit} bytes"),
        );
        e.details = json!({ "limit_bytes": limit });
        e
    }

    /// 415.
    #[cold]
    pub fn unsupported_media_type(expected: &str) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::ValidationError,
            format!("expected Content-Type {expected}"),
        )
    }

    /// 429 with `Retry-After`.
    #[cold]
    pub fn rate_limited(message: impl Into<String>, retry_after_secs: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::RateLimited,
            message,
        );
        e.retry_after = Some(retry_after_secs);
        e
    }

    /// 503 with `Retry-After`: a bounded resource is taken; try again later.
    #[cold]
    pub fn unavailable(message: impl Into<String>, retry_after_secs: u64) -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::RateLimited,
            message,
        );
        e.retry_after = Some(retry_after_secs);
        e
    }

    /// 500. The cause is logged with the request id; the client gets only the id.
    #[cold]
    pub fn internal(request_id: &str, cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(request_id, error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::InternalError,
            format!("internal error; the log has details under request id {request_id}"),
        )
    }

    /// 502: a service we depend on (Twilio) did not answer usefully. Not the
    /// client's input, so not a validation error; the plan has no separate
    /// code for it, so it is `INTERNAL_ERROR` with `details.upstream` naming
    /// the service and a message saying what happened (no request id hiding
    /// it: nothing internal leaks).
    #[cold]
    pub fn bad_gateway(upstream: &str, message: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::BAD_GATEWAY, ErrorCode::InternalError, message);
        e.details = json!({ "upstream": upstream });
        e
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        json!({ "error": { "code": self.code, "message": self.message, "details": self.details } })
    }

    /// The full HTTP response.
    pub fn into_response(self) -> Response<Full<Bytes>> {
        let mut resp = Response::new(Full::new(Bytes::from(self.body().to_string())));
        *resp.status_mut() = self.status;
        let h = resp.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(secs) = self.retry_after {
            h.insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        if let Some(allow) = self
            .allow
            .as_deref()
            .and_then(|a| HeaderValue::from_str(a).ok())
        {
            h.insert(ALLOW, allow);
        }
        resp
    }

    /// Maps a storage error: not-found and conflicts are the client's business,
    /// anything else is ours.
    pub fn from_store(request_id: &str, err: StoreError) -> Self {
        match err {
            StoreError::NotFound { .. } => ApiError::not_found(err.to_string()),
            StoreError::Conflict(msg) => ApiError::conflict(msg),
            other => ApiError::internal(request_id, &other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_the_plan_shape() {
        let e = ApiError::fields(
            "invalid input",
            vec![FieldError {
                field: "email".into(),
                message: "invalid format".into(),
            }],
        );
        assert_eq!(
            e.body(),
            json!({"error": {"code": "VALIDATION_ERROR", "message": "invalid input", "details": [{"field": "email", "message": "invalid format"}]}})
        );
        let r = ApiError::rate_limited("locked", 900).into_response();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[RETRY_AFTER], "900");
        assert_eq!(r.headers()[CONTENT_TYPE], "application/json");
        let r = ApiError::method_not_allowed("PUT", "/health", "GET, HEAD".into()).into_response();
        assert_eq!(
            (r.status().as_u16(), r.headers()[ALLOW].to_str().ok()),
            (405, Some("GET, HEAD"))
        );
    }

    #[test]
    fn store_errors_map_to_client_or_server_faults() {
        assert_eq!(
            ApiError::from_store("r1", StoreError::not_found("user", 7)).status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            ApiError::from_store("r1", StoreError::Conflict("taken".into())).status,
            StatusCode::CONFLICT
        );
        let e = ApiError::from_store("r1", StoreError::Closed);
        assert_eq!(
            (e.status, e.code),
            (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::InternalError)
        );
        assert!(
            e.message.contains("r1") && !e.message.contains("closed"),
            "no internals leak: {}",
            e.message
        );
    }
}
