//! Logging in and out, and the caller's own account:
//! `POST /api/auth/login`, `POST /api/auth/logout`, `GET /api/me`,
//! `PUT /api/me/password`.
//!
//! Login protection (see `accounts::lockout`): a locked client address or
//! account gets 429 with `Retry-After` before its password is even looked
//! at, and the same answer whether the account exists or not; unknown
//! accounts are verified against a dummy hash so the timing matches too.

use std::sync::Arc;

use hyper::header::{SET_COOKIE, USER_AGENT};
use hyper::{Method, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::auth;
use super::error::{ApiError, ApiResult, FieldError};
use super::request::{json_response, ApiRequest};
use super::router::{Access, Route};
use super::ServerState;
use crate::accounts::lockout::{self, Keys};
use crate::accounts::password::{self, HashSlot};
use crate::accounts::{session, MAX_EMAIL_LEN};
use crate::constants::MAX_PASSWORD_LEN;
use crate::events::Event;
use crate::store::{sessions, users};

/// The routes of this module.
pub fn routes() -> Vec<Route> {
    vec![
        Route::new(Method::POST, "/api/auth/login", Access::Public, login),
        Route::new(Method::POST, "/api/auth/logout", Access::User, logout),
        Route::new(Method::GET, "/api/me", Access::User, me),
        Route::new(
            Method::PUT,
            "/api/me/password",
            Access::User,
            change_password,
        ),
    ]
}

/// The 429 of a lockout, in the error format with `Retry-After`.
pub(crate) fn locked_out(wait: std::time::Duration) -> ApiError {
    let secs = lockout::retry_after_secs(wait);
    let mut e = ApiError::rate_limited(
        format!(
            "too many failed attempts; try again in {} minute{}",
            secs.div_ceil(60),
            if secs.div_ceil(60) == 1 { "" } else { "s" }
        ),
        secs,
    );
    e.details = json!({ "retry_after_secs": secs });
    e
}

fn field(field: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

/// The `User-Agent` as stored with a session (bounded: it is client input).
pub(crate) fn user_agent(req: &ApiRequest) -> Option<String> {
    req.headers
        .get(USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().take(256).collect())
}

#[derive(Deserialize)]
struct LoginBody {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

/// Verifies a password for the lockout keys `keys` while holding `slot`:
/// `Ok(true)` on a match; on a mismatch the failure is counted and the
/// error is 429 if that started a lockout, else `on_mismatch`.
/// Takes a hashing place, then refuses a locked-out client or account (429)
/// and reads the account's password hash. The place is held from the
/// lockout check until the failure is counted, so parallel guesses queue here
/// instead of all passing the check at once.
async fn slot_unless_locked(
    state: &ServerState,
    req: &ApiRequest,
    keys: &Keys,
    email: &str,
) -> Result<(HashSlot, Option<(i64, String)>), ApiError> {
    let rid = req.request_id.as_str();
    let slot = state
        .hashes
        .slot()
        .await
        .map_err(|e| ApiError::internal(rid, &e))?;
    let (k, e, now) = (keys.clone(), email.to_string(), state.clock.now());
    let (locked, account) = state
        .db
        .call(move |c| {
            Ok::<_, crate::store::StoreError>((
                lockout::locked_for(c, &k, now)?,
                users::password_hash_by_email(c, &e)?,
            ))
        })
        .await
        .map_err(|e| ApiError::internal(rid, &e))?;
    if let Some(wait) = locked {
        tracing::info!(client = %req.client_ip, path = %req.uri.path(), "refused: locked out");
        return Err(locked_out(wait));
    }
    Ok((slot, account))
}

pub(crate) async fn verify_counted(
    state: &ServerState,
    slot: &HashSlot,
    keys: &Keys,
    password: String,
    phc: Option<String>,
    request_id: &str,
    on_mismatch: ApiError,
) -> Result<(), ApiError> {
    let ok = slot
        .verify(password, phc.clone())
        .await
        .map_err(|e| ApiError::internal(request_id, &e))?;
    if ok && phc.is_some() {
        return Ok(());
    }
    let (k, now) = (keys.clone(), state.clock.now());
    let locked = state
        .db
        .call(move |c| lockout::record_failure(c, &k, now))
        .await
        .map_err(|e| ApiError::internal(request_id, &e))?;
    Err(match locked {
        Some(wait) => locked_out(wait),
        None => on_mismatch,
    })
}

async fn login(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let body: LoginBody = req.json()?;
    let email = body.email.trim().to_string();
    let mut problems = Vec::new();
    if email.is_empty() {
        problems.push(field("email", "required"));
    } else if email.len() > MAX_EMAIL_LEN {
        problems.push(field("email", "too long"));
    }
    if body.password.is_empty() {
        problems.push(field("password", "required"));
    } else if body.password.chars().count() > MAX_PASSWORD_LEN {
        problems.push(field("password", "too long"));
    }
    if !problems.is_empty() {
        return Err(ApiError::fields(
            "e-mail and password are required",
            problems,
        ));
    }
    let rid = req.request_id.as_str();
    let keys = Keys::new(req.client_ip, &email);
    let (slot, account) = slot_unless_locked(&state, &req, &keys, &email).await?;
    let user_id = account.as_ref().map(|(id, _)| *id);
    let wrong = ApiError::unauthenticated("wrong e-mail or password");
    if let Err(e) = verify_counted(
        &state,
        &slot,
        &keys,
        body.password,
        account.map(|(_, phc)| phc),
        rid,
        wrong,
    )
    .await
    {
        tracing::info!(client = %req.client_ip, status = e.status.as_u16(), "login failed");
        return Err(e);
    }
    drop(slot);
    let Some(user_id) = user_id else {
        return Err(ApiError::unauthenticated("wrong e-mail or password"));
    };

    let token = session::new_token().map_err(|e| ApiError::internal(rid, &e))?;
    let cookie = auth::session_cookie(&token.token, req.https, rid)?;
    let (ua, ip, now) = (
        user_agent(&req),
        req.client_ip.to_string(),
        state.clock.now(),
    );
    let user = state
        .db
        .call(move |c| {
            lockout::clear(c, &keys)?;
            users::record_login(c, user_id, now)?;
            session::open(c, &token.hash, user_id, ua.as_deref(), Some(&ip), now)?;
            users::get(c, user_id)
        })
        .await
        .map_err(|e| ApiError::from_store(rid, e))?;
    tracing::info!(user_id, client = %req.client_ip, "logged in");
    let mut resp = json_response(StatusCode::OK, &json!({ "user": user }));
    resp.headers_mut().insert(SET_COOKIE, cookie);
    Ok(resp)
}

async fn logout(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let me = req.principal()?;
    let rid = req.request_id.as_str();
    state
        .db
        .call(move |c| sessions::delete(c, me.session_id))
        .await
        .map_err(|e| ApiError::internal(rid, &e))?;
    state.events.publish(Event::SessionsChanged {
        user_id: me.user_id,
    });
    let mut resp = json_response(StatusCode::OK, &json!({ "logged_out": true }));
    resp.headers_mut()
        .insert(SET_COOKIE, auth::clearing_cookie(req.https, rid)?);
    Ok(resp)
}

async fn me(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let me = req.principal()?;
    let user = state
        .db
        .call(move |c| users::get(c, me.user_id))
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    Ok(json_response(StatusCode::OK, &json!({ "user": user })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordChange {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
}

/// Changes the caller's password after checking the current one (a wrong
/// one counts as a failed login: a stolen session must not become a way to
/// guess passwords), then ends the caller's other sessions.
async fn change_password(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let me = req.principal()?;
    let body: PasswordChange = req.json()?;
    let rid = req.request_id.as_str();
    let mut problems = Vec::new();
    if body.current_password.is_empty() {
        problems.push(field("current_password", "required"));
    } else if body.current_password.chars().count() > MAX_PASSWORD_LEN {
        problems.push(field("current_password", "too long"));
    }
    if let Err(e) = password::check_policy(&body.new_password) {
        problems.push(field("new_password", e.to_string()));
    }
    if !problems.is_empty() {
        return Err(ApiError::fields("the password was not changed", problems));
    }
    let user = state
        .db
        .call(move |c| users::get(c, me.user_id))
        .await
        .map_err(|e| ApiError::from_store(rid, e))?;
    let keys = Keys::new(req.client_ip, &user.email);
    let (slot, account) = slot_unless_locked(&state, &req, &keys, &user.email).await?;
    verify_counted(
        &state,
        &slot,
        &keys,
        body.current_password,
        account.map(|(_, phc)| phc),
        rid,
        ApiError::fields(
            "the password was not changed",
            vec![field(
                "current_password",
                "this is not your current password",
            )],
        ),
    )
    .await?;
    let new_hash = slot
        .hash(body.new_password)
        .await
        .map_err(|e| ApiError::internal(rid, &e))?;
    drop(slot);
    let now = state.clock.now();
    let ended = state
        .db
        .call(move |c| {
            let tx = c.transaction()?;
            users::set_password_hash(&tx, me.user_id, &new_hash, now)?;
            let ended = sessions::delete_for_user(&tx, me.user_id, Some(me.session_id))?;
            lockout::clear(&tx, &keys)?;
            tx.commit()?;
            Ok(ended)
        })
        .await
        .map_err(|e| ApiError::from_store(rid, e))?;
    state.events.publish(Event::SessionsChanged {
        user_id: me.user_id,
    });
    tracing::info!(
        user_id = me.user_id,
        other_sessions_ended = ended,
        "password changed"
    );
    Ok(json_response(
        StatusCode::OK,
        &json!({ "password_changed": true, "other_sessions_ended": ended }),
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use crate::clock::Clock;
    use crate::constants::{LOGIN_LOCKOUT, SESSION_DURATION, SESSION_REFRESH_INTERVAL};
    use crate::http::testing::TestServer;
    use crate::settings::RawInputs;
    use crate::store::users::Role;

    const PW: &str = "blue kettle on the hob";

    fn behind_proxy() -> RawInputs {
        RawInputs {
            env: BTreeMap::from([(
                "HOMELINE_HTTP_TRUSTED_PROXY".to_string(),
                "127.0.0.1".to_string(),
            )]),
            ..RawInputs::default()
        }
    }

    async fn last_seen(s: &TestServer) -> Vec<String> {
        s.state
            .db
            .call(|c| {
                let mut st = c.prepare("SELECT last_seen_at || ' ' || expires_at FROM sessions")?;
                let rows = st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
                Ok::<_, crate::store::StoreError>(rows)
            })
            .await
            .expect("query")
    }

    #[tokio::test]
    async fn session_expires_a_day_after_the_last_extension_and_slides_with_activity() {
        let s = TestServer::start().await;
        s.seed_user("kid@x.org", Role::User, PW).await;
        let tok = s.login("kid@x.org", PW).await.expect("login");
        let before = last_seen(&s).await;

        s.clock
            .advance(SESSION_REFRESH_INTERVAL - Duration::from_secs(1));
        let r = s.call("GET", "/api/me", Some(&tok), None, &[]).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.header("set-cookie"), None, "not due: no new cookie");
        assert_eq!(last_seen(&s).await, before, "not due: nothing written");

        s.clock.advance(Duration::from_secs(1));
        let r = s.call("GET", "/api/me", Some(&tok), None, &[]).await;
        assert_eq!(r.status, 200);
        assert_eq!(
            r.session_token().as_deref(),
            Some(tok.as_str()),
            "the same session, re-sent with a fresh Max-Age"
        );
        assert!(r
            .header("set-cookie")
            .is_some_and(|c| c.contains("Max-Age=86400")));
        assert_ne!(last_seen(&s).await, before, "extended once");

        // Used now and then for three days: still logged in.
        for _ in 0..6 {
            s.clock.advance(Duration::from_secs(12 * 3600));
            let r = s.call("GET", "/api/me", Some(&tok), None, &[]).await;
            assert_eq!(r.status, 200, "{}", r.body);
        }
        // Idle for a whole day: gone.
        s.clock.advance(SESSION_DURATION);
        let r = s.call("GET", "/api/me", Some(&tok), None, &[]).await;
        assert_eq!(r.status, 401, "{}", r.body);
        assert_eq!(r.json()["error"]["code"], "AUTHENTICATION_ERROR");
    }

    #[tokio::test]
    async fn five_failures_lock_with_429_and_retry_after_until_fifteen_minutes_pass() {
        let s = TestServer::start().await;
        s.seed_user("mum@x.org", Role::Admin, PW).await;
        for i in 1..5 {
            let r = s.login("mum@x.org", "wrong password!").await.unwrap_err();
            assert_eq!(r.status, 401, "failure {i}: {}", r.body);
            assert_eq!(r.json()["error"]["code"], "AUTHENTICATION_ERROR");
        }
        let r = s.login("mum@x.org", "wrong password!").await.unwrap_err();
        assert_eq!(r.status, 429, "the fifth failure locks: {}", r.body);
        assert_eq!(r.json()["error"]["code"], "RATE_LIMITED");
        assert_eq!(r.header("retry-after"), Some("900"));

        let r = s.login("mum@x.org", PW).await.unwrap_err();
        assert_eq!(r.status, 429, "locked: not even the right password");
        let r = s.login("nobody@x.org", PW).await.unwrap_err();
        assert_eq!(r.status, 429, "the address is locked for every account");

        s.clock.advance(LOGIN_LOCKOUT - Duration::from_secs(1));
        let r = s.login("mum@x.org", PW).await.unwrap_err();
        assert_eq!(
            (r.status, r.header("retry-after")),
            (429, Some("1")),
            "14:59 in, still locked (GoSIP let people in after a minute)"
        );
        s.clock.advance(Duration::from_secs(1));
        s.login("mum@x.org", PW)
            .await
            .expect("released after 15 minutes");
    }

    #[tokio::test]
    async fn lockout_answer_is_the_same_for_unknown_accounts() {
        let s = TestServer::start_with(behind_proxy()).await;
        s.seed_user("mum@x.org", Role::Admin, PW).await;
        let login_from = |ip: String, email: &'static str| {
            let s = &s;
            async move {
                let body = serde_json::json!({ "email": email, "password": "wrong password!" })
                    .to_string();
                s.call(
                    "POST",
                    "/api/auth/login",
                    None,
                    Some(&body),
                    &[("X-Forwarded-For", &ip)],
                )
                .await
            }
        };
        // Spread over many addresses (behind the trusted proxy): the account
        // counter locks, whether the account exists or not.
        let mut last = Vec::new();
        for email in ["mum@x.org", "nobody@x.org"] {
            for i in 0..5 {
                let r = login_from(format!("198.51.100.{i}"), email).await;
                if i < 4 {
                    assert_eq!(r.status, 401, "{email} {i}");
                }
            }
            let r = login_from("203.0.113.1".into(), email).await;
            last.push((r.status, r.header("retry-after").map(str::to_owned), r.body));
        }
        assert_eq!(last[0].0, 429);
        assert_eq!(last[0], last[1], "no way to tell which account exists");
    }

    #[tokio::test]
    async fn a_spoofed_forwarded_for_is_ignored_without_a_trusted_proxy() {
        let s = TestServer::start().await;
        s.seed_user("mum@x.org", Role::Admin, PW).await;
        for i in 0..5 {
            let body = serde_json::json!({ "email": format!("u{i}@x.org"), "password": "wrong password!" }).to_string();
            let ip = format!("203.0.113.{i}");
            s.call(
                "POST",
                "/api/auth/login",
                None,
                Some(&body),
                &[("X-Forwarded-For", &ip), ("X-Real-IP", &ip)],
            )
            .await;
        }
        let r = s
            .call(
                "POST",
                "/api/auth/login",
                None,
                Some(&serde_json::json!({ "email": "mum@x.org", "password": PW }).to_string()),
                &[("X-Forwarded-For", "198.51.100.99")],
            )
            .await;
        assert_eq!(
            r.status, 429,
            "rotating the header does not reset the count: {}",
            r.body
        );
    }

    #[tokio::test]
    async fn cookie_attributes_and_secure_only_via_the_trusted_proxy() {
        let s = TestServer::start_with(behind_proxy()).await;
        s.seed_user("mum@x.org", Role::Admin, PW).await;
        let body = serde_json::json!({ "email": "mum@x.org", "password": PW }).to_string();
        let r = s
            .call("POST", "/api/auth/login", None, Some(&body), &[])
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let cookie = r.header("set-cookie").expect("cookie").to_string();
        let tok = r.session_token().expect("token");
        assert_eq!(tok.len(), 64, "256 bits, hex");
        for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=86400"] {
            assert!(cookie.split("; ").any(|a| a == attr), "{attr} in {cookie}");
        }
        assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
        assert_eq!(r.json()["user"]["email"], "mum@x.org");
        assert!(r.json()["user"].get("password_hash").is_none());

        let r = s
            .call(
                "POST",
                "/api/auth/login",
                None,
                Some(&body),
                &[("X-Forwarded-Proto", "https")],
            )
            .await;
        assert!(
            r.header("set-cookie")
                .is_some_and(|c| c.ends_with("; Secure")),
            "HTTPS at the trusted proxy: {:?}",
            r.header("set-cookie")
        );
        let stored: Vec<u8> = s
            .state
            .db
            .call(|c| {
                Ok::<_, crate::store::StoreError>(c.query_row(
                    "SELECT token_hash FROM sessions LIMIT 1",
                    [],
                    |r| r.get(0),
                )?)
            })
            .await
            .expect("query");
        assert_eq!(stored.len(), 32, "only the SHA-256 is stored");
        assert!(!String::from_utf8_lossy(&stored).contains(&tok));

        let plain = TestServer::start().await;
        plain.seed_user("mum@x.org", Role::Admin, PW).await;
        let r = plain
            .call(
                "POST",
                "/api/auth/login",
                None,
                Some(&body),
                &[("X-Forwarded-Proto", "https")],
            )
            .await;
        assert!(
            r.header("set-cookie")
                .is_some_and(|c| !c.contains("Secure")),
            "a client cannot claim HTTPS"
        );
    }

    #[tokio::test]
    async fn csrf_checks_on_state_changing_requests() {
        let s = TestServer::start().await;
        s.seed_user("mum@x.org", Role::Admin, PW).await;
        let body = serde_json::json!({ "email": "mum@x.org", "password": PW }).to_string();
        let bare = |extra: Vec<(String, String)>| {
            let mut h = vec![("Content-Type".to_string(), "application/json".to_string())];
            h.extend(extra);
            h
        };
        let r = s.raw("POST", "/api/auth/login", &bare(vec![]), &body).await;
        assert_eq!(r.status, 403, "login CSRF: no custom header: {}", r.body);
        assert_eq!(r.json()["error"]["code"], "AUTHORIZATION_ERROR");
        for (k, v) in [
            ("Origin", "http://evil.example"),
            ("Origin", "null"),
            ("Sec-Fetch-Site", "cross-site"),
            ("Sec-Fetch-Site", "same-site"),
        ] {
            let r = s
                .call("POST", "/api/auth/login", None, Some(&body), &[(k, v)])
                .await;
            assert_eq!(r.status, 403, "{k}: {v}");
        }
        let own = format!("http://{}", s.addr);
        let r = s
            .call(
                "POST",
                "/api/auth/login",
                None,
                Some(&body),
                &[("Origin", &own), ("Sec-Fetch-Site", "same-origin")],
            )
            .await;
        assert_eq!(r.status, 200, "our own page: {}", r.body);
        let tok = r.session_token().expect("token");

        // Session routes: reads need no header, writes do.
        let cookie = format!("homeline_session={tok}");
        let r = s
            .raw("GET", "/api/me", &[("Cookie".into(), cookie.clone())], "")
            .await;
        assert_eq!(r.status, 200);
        let change =
            serde_json::json!({"current_password": PW, "new_password": "green teapot in the hall"})
                .to_string();
        let r = s
            .raw(
                "PUT",
                "/api/me/password",
                &bare(vec![("Cookie".into(), cookie.clone())]),
                &change,
            )
            .await;
        assert_eq!(r.status, 403, "{}", r.body);
        let r = s
            .call(
                "PUT",
                "/api/me/password",
                Some(&tok),
                Some(&change),
                &[("Origin", "https://evil.example")],
            )
            .await;
        assert_eq!(r.status, 403, "{}", r.body);

        // The configured public URL is our origin too.
        let now = s.clock.now();
        s.state
            .db
            .call(move |c| {
                crate::store::config::set(c, "system.public_url", "https://home.example.org", now)
            })
            .await
            .expect("set public URL");
        let r = s
            .call(
                "POST",
                "/api/auth/login",
                None,
                Some(&body),
                &[("Origin", "https://home.example.org")],
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let r = s
            .call(
                "POST",
                "/api/auth/login",
                None,
                Some(&body),
                &[("Origin", "http://home.example.org")],
            )
            .await;
        assert_eq!(r.status, 403, "another scheme is another origin");
    }

    #[tokio::test]
    async fn logout_and_password_change_end_sessions() {
        let s = TestServer::start().await;
        s.seed_user("kid@x.org", Role::User, PW).await;
        let a = s.login("kid@x.org", PW).await.expect("login a");
        let b = s.login("kid@x.org", PW).await.expect("login b");
        let c = s.login("kid@x.org", PW).await.expect("login c");

        let r = s
            .call("POST", "/api/auth/logout", Some(&c), None, &[])
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(r
            .header("set-cookie")
            .is_some_and(|v| v.contains("Max-Age=0")));
        assert_eq!(
            s.call("GET", "/api/me", Some(&c), None, &[]).await.status,
            401
        );

        let wrong = serde_json::json!({"current_password": "not my password", "new_password": "green teapot in the hall"}).to_string();
        let r = s
            .call("PUT", "/api/me/password", Some(&a), Some(&wrong), &[])
            .await;
        assert_eq!(r.status, 400, "{}", r.body);
        assert_eq!(r.json()["error"]["details"][0]["field"], "current_password");
        let weak =
            serde_json::json!({"current_password": PW, "new_password": "password123"}).to_string();
        let r = s
            .call("PUT", "/api/me/password", Some(&a), Some(&weak), &[])
            .await;
        assert_eq!(
            (r.status, r.json()["error"]["details"][0]["field"].clone()),
            (400, "new_password".into())
        );

        let good =
            serde_json::json!({"current_password": PW, "new_password": "green teapot in the hall"})
                .to_string();
        let r = s
            .call("PUT", "/api/me/password", Some(&a), Some(&good), &[])
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.json()["other_sessions_ended"], 1);
        assert_eq!(
            s.call("GET", "/api/me", Some(&a), None, &[]).await.status,
            200,
            "this session stays"
        );
        assert_eq!(
            s.call("GET", "/api/me", Some(&b), None, &[]).await.status,
            401,
            "the others end"
        );
        assert!(s.login("kid@x.org", PW).await.is_err());
        s.login("kid@x.org", "green teapot in the hall")
            .await
            .expect("new password");
    }
}
