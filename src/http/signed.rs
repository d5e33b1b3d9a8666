//! Twilio-signed requests. `http::dispatch` checks `X-Twilio-Signature`
//! against the public URL (`system.public_url` + path + query) and the auth
//! token for every [`Access::Webhook`](super::router::Access::Webhook) route
//! before its handler runs, so a new webhook cannot forget the check; the
//! handler reads the verified parameters from [`ApiRequest::signed`].
//! Refusals are 403 in the API's error format, also when the check cannot be
//! made (Twilio or the public URL not set up).

use super::error::ApiError;
use super::request::{parse_query, ApiRequest};
use super::ServerState;
use crate::sysconfig;
use crate::twilio::signature;

/// A request whose signature checked out.
#[derive(Debug)]
pub struct Signed {
    /// The POST parameters.
    form: Vec<(String, String)>,
    /// The query parameters (our own, put into callback URLs).
    query: Vec<(String, String)>,
    /// `system.public_url`, without a trailing slash.
    public: String,
}

impl Signed {
    /// A POST parameter, empty when absent.
    pub fn get(&self, name: &str) -> &str {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// A query parameter of the callback URL, empty when absent.
    pub fn query(&self, name: &str) -> &str {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// `system.public_url` without a trailing slash.
    pub fn public(&self) -> &str {
        &self.public
    }

    /// The public URL of one of our paths (`/api/…?…`).
    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.public)
    }
}

/// Checks the signature; 403 (in the API's error format) otherwise.
pub(super) async fn verify(state: &ServerState, req: &ApiRequest) -> Result<Signed, ApiError> {
    let secrets = state.secrets.clone();
    let ctx = state
        .db
        .call(move |c| {
            let creds = sysconfig::twilio_credentials(c, &secrets)?;
            Ok::<_, sysconfig::ConfigError>((
                creds.map(|c| c.auth_token),
                sysconfig::public_url(c)?,
            ))
        })
        .await
        .map_err(|e| ApiError::internal(&req.request_id, &e))?;
    let (Some(token), Some(public)) = ctx else {
        tracing::warn!(request_id = %req.request_id, path = %req.uri.path(), "Twilio webhook refused: Twilio credentials or system.public_url not configured");
        return Err(ApiError::forbidden(
            "webhooks are refused until the Twilio credentials and system.public_url are configured",
        ));
    };
    let form = parse_query(&String::from_utf8_lossy(&req.body));
    let url = match req.uri.query() {
        Some(q) => format!("{public}{}?{q}", req.uri.path()),
        None => format!("{public}{}", req.uri.path()),
    };
    let header = req
        .headers
        .get("x-twilio-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if header.is_empty() || !signature::is_valid(&token, &url, &form, header) {
        tracing::warn!(request_id = %req.request_id, peer = %req.peer, %url, "Twilio webhook refused: bad or missing X-Twilio-Signature");
        return Err(ApiError::forbidden("invalid X-Twilio-Signature"));
    }
    Ok(Signed {
        form,
        query: req.uri.query().map(parse_query).unwrap_or_default(),
        public,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use hyper::{Method, StatusCode};

    use crate::clock::Clock as _;
    use crate::http::request::json_response;
    use crate::http::router::{Access, Route};
    use crate::http::testing::TestServer;
    use crate::store;
    use crate::sysconfig;
    use crate::twilio::signature;

    const TOKEN: &str = "0123456789abcdef0123456789abcdef";
    const PUBLIC: &str = "https://home.example.net";
    const PROBE: &str = "/api/webhooks/probe";

    /// A server with one more webhook route whose handler counts its calls
    /// and echoes a verified parameter: it declares no check of its own.
    async fn server(calls: Arc<AtomicUsize>) -> TestServer {
        let probe = Route::new(Method::POST, PROBE, Access::Webhook, move |_, req| {
            let calls = calls.clone();
            async move {
                calls.fetch_add(1, Ordering::AcqRel);
                let from = req.signed()?.get("From").to_string();
                Ok(json_response(
                    StatusCode::OK,
                    &serde_json::json!({ "from": from }),
                ))
            }
        });
        TestServer::start_with_routes(vec![probe]).await
    }

    async fn configure_twilio(s: &TestServer) {
        let sealed = s
            .state
            .secrets
            .seal(sysconfig::TWILIO_AUTH_TOKEN, TOKEN.as_bytes())
            .expect("seal");
        let now = s.clock.now();
        s.state
            .db
            .call(move |c| {
                store::config::set(c, sysconfig::TWILIO_ACCOUNT_SID, &format!("AC{TOKEN}"), now)?;
                store::config::set(c, sysconfig::SYSTEM_PUBLIC_URL, &format!("{PUBLIC}/"), now)?;
                store::secrets::set(c, sysconfig::TWILIO_AUTH_TOKEN, &sealed, now)
            })
            .await
            .expect("configure");
    }

    async fn post(s: &TestServer, signature: Option<&str>) -> crate::http::testing::Resp {
        let mut headers = vec![(
            "Content-Type".to_string(),
            "application/x-www-form-urlencoded".to_string(),
        )];
        if let Some(sig) = signature {
            headers.push(("X-Twilio-Signature".into(), sig.into()));
        }
        s.raw(
            "POST",
            &format!("{PROBE}?did=1"),
            &headers,
            "From=%2B15550001",
        )
        .await
    }

    fn assert_refused(r: &crate::http::testing::Resp, message: &str) {
        assert_eq!(r.status, 403, "{}", r.body);
        let body = r.json();
        assert_eq!(body["error"]["code"], "AUTHORIZATION_ERROR", "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains(message),
            "{body}"
        );
    }

    #[tokio::test]
    async fn every_webhook_route_is_refused_without_a_valid_signature() {
        let calls = Arc::new(AtomicUsize::new(0));
        let s = server(calls.clone()).await;
        // Nothing configured: the check cannot be made.
        assert_refused(&post(&s, Some("x")).await, "are refused until");
        configure_twilio(&s).await;
        assert_refused(&post(&s, None).await, "invalid X-Twilio-Signature");
        assert_refused(
            &post(&s, Some("bm90IGl0")).await,
            "invalid X-Twilio-Signature",
        );
        // Signed for another URL (the query is part of what is signed).
        let params = vec![("From".to_string(), "+15550001".to_string())];
        let other = signature::compute(TOKEN, &format!("{PUBLIC}{PROBE}?did=2"), &params);
        assert_refused(&post(&s, Some(&other)).await, "invalid X-Twilio-Signature");
        assert_eq!(calls.load(Ordering::Acquire), 0, "the handler never ran");

        let good = signature::compute(TOKEN, &format!("{PUBLIC}{PROBE}?did=1"), &params);
        let r = post(&s, Some(&good)).await;
        assert_eq!(
            (r.status, r.json()["from"].as_str()),
            (200, Some("+15550001"))
        );
        assert_eq!(calls.load(Ordering::Acquire), 1);
    }

    #[tokio::test]
    async fn a_handler_outside_a_webhook_route_gets_no_signed_parameters() {
        let s = TestServer::start_with_routes(vec![Route::new(
            Method::GET,
            "/api/probe-public",
            Access::Public,
            |_, req| async move {
                req.signed()?;
                Ok(json_response(StatusCode::OK, &"reached"))
            },
        )])
        .await;
        let r = s.call("GET", "/api/probe-public", None, None, &[]).await;
        assert_eq!(r.status, 403, "{}", r.body);
    }
}
