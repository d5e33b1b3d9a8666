//! Account administration (admins only): `GET/POST /api/users`,
//! `GET/PUT/DELETE /api/users/{id}`, `DELETE /api/users/{id}/lockout`
//! (lift a login lockout). Reads carry `locked_until`.
//!
//! The last admin can be neither deleted nor demoted (409): the appliance
//! must always have someone who can administer it from the web UI. The check
//! and the change run in one transaction on the database thread, so two
//! admins demoting each other at once cannot both succeed.

use std::sync::Arc;

use hyper::{Method, StatusCode};
use serde::{Deserialize, Serialize};

use super::error::{ApiError, ApiResult, FieldError};
use super::request::{json_response, paged_response, ApiRequest};
use super::router::{Access, Route};
use super::ServerState;
use crate::accounts::{check_email, lockout, password};
use crate::store::users::{self, NewUser, Role};
use crate::store::{sessions, StoreError};

/// Longest display name.
const MAX_DISPLAY_NAME: usize = 100;

/// The routes of this module.
pub fn routes() -> Vec<Route> {
    vec![
        Route::new(Method::GET, "/api/users", Access::Admin, list),
        Route::new(Method::POST, "/api/users", Access::Admin, create),
        Route::new(Method::GET, "/api/users/{id}", Access::Admin, get),
        Route::new(Method::PUT, "/api/users/{id}", Access::Admin, update),
        Route::new(Method::DELETE, "/api/users/{id}", Access::Admin, delete),
        Route::new(
            Method::DELETE,
            "/api/users/{id}/lockout",
            Access::Admin,
            unlock,
        ),
    ]
}

fn field(field: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

fn check_display_name(name: &str, problems: &mut Vec<FieldError>) {
    if name.chars().count() > MAX_DISPLAY_NAME {
        problems.push(field(
            "display_name",
            format!("at most {MAX_DISPLAY_NAME} characters"),
        ));
    } else if name.chars().any(char::is_control) {
        problems.push(field("display_name", "must not contain control characters"));
    }
}

/// An account as the admin pages show it: the row plus `locked_until`
/// (RFC 3339, or null when the account is not locked out after failed logins).
#[derive(Serialize)]
struct AccountView {
    #[serde(flatten)]
    user: users::User,
    locked_until: Option<String>,
}

fn with_lockout(
    c: &rusqlite::Connection,
    user: users::User,
    now: crate::clock::Timestamp,
) -> Result<AccountView, StoreError> {
    let until = lockout::account_locked_until(c, &user.email, now)?;
    Ok(AccountView {
        user,
        locked_until: until.map(|t| t.to_string()),
    })
}

async fn list(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let page = req.page()?;
    let now = state.clock.now();
    let rows = state
        .db
        .call(move |c| {
            let rows = users::list(c, page.window())?;
            let items = rows
                .items
                .into_iter()
                .map(|u| with_lockout(c, u, now))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(crate::store::Paged {
                items,
                total: rows.total,
            })
        })
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    Ok(paged_response(page, rows))
}

/// Lifts the login lockout of an account (its counter is forgotten).
async fn unlock(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let id = req.id_param("id")?;
    let me = req.principal()?;
    let now = state.clock.now();
    let user = state
        .db
        .call(move |c| {
            let user = users::get(c, id)?;
            lockout::clear_account(c, &user.email)?;
            with_lockout(c, user, now)
        })
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    tracing::info!(user_id = id, by = me.user_id, "login lockout lifted");
    Ok(json_response(StatusCode::OK, &user))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewAccount {
    #[serde(default)]
    email: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    password: String,
    #[serde(default = "default_role")]
    role: Role,
}

fn default_role() -> Role {
    Role::User
}

async fn create(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let body: NewAccount = req.json()?;
    let rid = req.request_id.as_str();
    let email = body.email.trim().to_string();
    let display_name = body.display_name.trim().to_string();
    let mut problems = Vec::new();
    if let Err(m) = check_email(&email) {
        problems.push(field("email", m));
    }
    check_display_name(&display_name, &mut problems);
    if let Err(e) = password::check_policy(&body.password) {
        problems.push(field("password", e.to_string()));
    }
    if !problems.is_empty() {
        return Err(ApiError::fields("the account was not created", problems));
    }
    let hash = state
        .hashes
        .hash(body.password)
        .await
        .map_err(|e| ApiError::internal(rid, &e))?;
    let (role, now) = (body.role, state.clock.now());
    let user = state
        .db
        .call(move |c| {
            let id = users::insert(
                c,
                &NewUser {
                    email: &email,
                    display_name: &display_name,
                    password_hash: &hash,
                    role,
                },
                now,
            )?;
            users::get(c, id)
        })
        .await
        .map_err(|e| ApiError::from_store(rid, e))?;
    tracing::info!(user_id = user.id, role = %user.role, "account created");
    Ok(json_response(StatusCode::CREATED, &user))
}

async fn get(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let id = req.id_param("id")?;
    let now = state.clock.now();
    let user = state
        .db
        .call(move |c| with_lockout(c, users::get(c, id)?, now))
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    Ok(json_response(StatusCode::OK, &user))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountChange {
    display_name: Option<String>,
    role: Option<Role>,
    /// A new password set by an admin (a family member forgot theirs); ends
    /// all of that account's sessions.
    password: Option<String>,
}

const LAST_ADMIN: &str = "the last administrator cannot be demoted or deleted; make another account an administrator first";

async fn update(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let id = req.id_param("id")?;
    let me = req.principal()?;
    let body: AccountChange = req.json()?;
    let rid = req.request_id.as_str();
    let display_name = body.display_name.map(|n| n.trim().to_string());
    let mut problems = Vec::new();
    if let Some(name) = &display_name {
        check_display_name(name, &mut problems);
    }
    if let Some(pw) = &body.password {
        if let Err(e) = password::check_policy(pw) {
            problems.push(field("password", e.to_string()));
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::fields("the account was not changed", problems));
    }
    // Fail fast on a missing account before spending a hash on it.
    state
        .db
        .call(move |c| users::get(c, id))
        .await
        .map_err(|e| ApiError::from_store(rid, e))?;
    let new_hash = match body.password {
        Some(pw) => Some(
            state
                .hashes
                .hash(pw)
                .await
                .map_err(|e| ApiError::internal(rid, &e))?,
        ),
        None => None,
    };
    let (role, now) = (body.role, state.clock.now());
    let user = state
        .db
        .call(move |c| {
            let tx = c.transaction()?;
            let current = users::get(&tx, id)?;
            let role = role.unwrap_or(current.role);
            if current.role == Role::Admin && role != Role::Admin && users::count_admins(&tx)? <= 1
            {
                return Err(StoreError::Conflict(LAST_ADMIN.into()));
            }
            let name = display_name.unwrap_or(current.display_name);
            users::update(&tx, id, &name, role, now)?;
            if let Some(hash) = &new_hash {
                users::set_password_hash(&tx, id, hash, now)?;
                // Keep the admin's own session if they reset their own password here.
                let keep = (id == me.user_id).then_some(me.session_id);
                sessions::delete_for_user(&tx, id, keep)?;
            }
            let user = users::get(&tx, id)?;
            tx.commit()?;
            Ok(user)
        })
        .await
        .map_err(|e| ApiError::from_store(rid, e))?;
    // Its open event streams re-check their session and what they may see.
    state
        .events
        .publish(crate::events::Event::SessionsChanged { user_id: id });
    tracing::info!(user_id = id, by = me.user_id, "account changed");
    Ok(json_response(StatusCode::OK, &user))
}

async fn delete(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let id = req.id_param("id")?;
    let me = req.principal()?;
    state
        .db
        .call(move |c| {
            let tx = c.transaction()?;
            let current = users::get(&tx, id)?;
            if current.role == Role::Admin && users::count_admins(&tx)? <= 1 {
                return Err(StoreError::Conflict(LAST_ADMIN.into()));
            }
            users::delete(&tx, id)?;
            tx.commit()?;
            Ok(())
        })
        .await
        .map_err(|e| ApiError::from_store(&req.request_id, e))?;
    state
        .events
        .publish(crate::events::Event::SessionsChanged { user_id: id });
    tracing::info!(user_id = id, by = me.user_id, "account deleted");
    // Their phones no longer ring for their numbers, nor call out as them.
    state.events.directory_changed().await;
    Ok(json_response(
        StatusCode::OK,
        &serde_json::json!({ "deleted": id }),
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::http::testing::TestServer;
    use crate::store::users::Role;

    const PW: &str = "blue kettle on the hob";

    #[tokio::test]
    async fn admins_manage_accounts_but_never_lose_the_last_admin() {
        let s = TestServer::start().await;
        let mum = s.seed_user("mum@x.org", Role::Admin, PW).await;
        let admin = s.login("mum@x.org", PW).await.expect("login");

        let new = json!({"email": "kid@x.org", "display_name": "Kid", "password": PW}).to_string();
        let r = s
            .call("POST", "/api/users", Some(&admin), Some(&new), &[])
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        assert_eq!(r.json()["role"], "user", "user by default");
        let kid = r.json()["id"].as_i64().expect("id");
        let r = s
            .call("POST", "/api/users", Some(&admin), Some(&new), &[])
            .await;
        assert_eq!(r.status, 409, "duplicate e-mail: {}", r.body);
        let bad = json!({"email": "nope", "password": "short", "role": "root"}).to_string();
        let r = s
            .call("POST", "/api/users", Some(&admin), Some(&bad), &[])
            .await;
        assert_eq!(r.status, 400, "{}", r.body);

        let r = s
            .call(
                "GET",
                "/api/users?per_page=1&page=2",
                Some(&admin),
                None,
                &[],
            )
            .await;
        assert_eq!((r.status, r.json()["total"].clone()), (200, json!(2)));
        assert!(!r.body.contains("argon2"), "no hashes: {}", r.body);

        for (method, body) in [
            ("PUT", Some(json!({"role": "user"}).to_string())),
            ("DELETE", None),
        ] {
            let r = s
                .call(
                    method,
                    &format!("/api/users/{mum}"),
                    Some(&admin),
                    body.as_deref(),
                    &[],
                )
                .await;
            assert_eq!(r.status, 409, "{method} of the last admin: {}", r.body);
            assert_eq!(r.json()["error"]["code"], "VALIDATION_ERROR");
        }

        let promote = json!({"role": "admin", "display_name": "Big kid"}).to_string();
        let r = s
            .call(
                "PUT",
                &format!("/api/users/{kid}"),
                Some(&admin),
                Some(&promote),
                &[],
            )
            .await;
        assert_eq!((r.status, r.json()["role"].clone()), (200, json!("admin")));
        // Two admins now: one may step down.
        let r = s
            .call(
                "PUT",
                &format!("/api/users/{mum}"),
                Some(&admin),
                Some(&json!({"role": "user"}).to_string()),
                &[],
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let r = s.call("GET", "/api/users", Some(&admin), None, &[]).await;
        assert_eq!(r.status, 403, "a demotion takes effect at once");

        let kid_admin = s.login("kid@x.org", PW).await.expect("login");
        let reset = json!({"password": "green teapot in the hall"}).to_string();
        let r = s
            .call(
                "PUT",
                &format!("/api/users/{mum}"),
                Some(&kid_admin),
                Some(&reset),
                &[],
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(
            s.call("GET", "/api/me", Some(&admin), None, &[])
                .await
                .status,
            401,
            "a reset ends the account's sessions"
        );
        let r = s
            .call(
                "DELETE",
                &format!("/api/users/{mum}"),
                Some(&kid_admin),
                None,
                &[],
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let r = s
            .call(
                "GET",
                &format!("/api/users/{mum}"),
                Some(&kid_admin),
                None,
                &[],
            )
            .await;
        assert_eq!(r.status, 404);
    }
}
