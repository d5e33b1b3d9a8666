//! Calls: the live ones (`GET /api/calls`, hold, hang up; admins) and the
//! history (`GET /api/cdrs` and its CSV export; a user sees the calls of
//! their numbers).

mod csv;

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE};
use hyper::{Method, Response, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::error::{ApiError, ApiResult, FieldError};
use super::request::{json_response, ApiRequest};
use super::router::{Access, Route};
use super::ServerState;
use crate::accounts::scope::Scope;
use crate::b2bua::Party;
use crate::clock::Timestamp;
use crate::constants::MAX_PAGE_SIZE;
use crate::endpoint::TransferRefused;
use crate::store::cdrs::{self, Cursor, Direction, Disposition, Filter};

/// The routes of this module.
pub fn routes() -> Vec<Route> {
    vec![
        Route::new(Method::GET, "/api/calls", Access::Admin, list),
        Route::new(Method::DELETE, "/api/calls/{id}", Access::Admin, hang_up),
        Route::new(Method::POST, "/api/calls/{id}/hold", Access::Admin, hold),
        Route::new(
            Method::POST,
            "/api/calls/{id}/transfer",
            Access::Admin,
            transfer,
        ),
        Route::new(Method::GET, "/api/cdrs", Access::User, history),
        Route::new(Method::GET, "/api/cdrs/export", Access::User, export),
    ]
}

fn sip(state: &ServerState) -> Result<&crate::endpoint::SipHandle, ApiError> {
    state
        .sip
        .as_ref()
        .ok_or_else(|| ApiError::conflict("the SIP service is not running"))
}

fn call_id(req: &ApiRequest) -> Result<u64, ApiError> {
    let id = req.id_param("id")?;
    u64::try_from(id).map_err(|_| ApiError::not_found("no such call"))
}

async fn list(state: Arc<ServerState>, _req: ApiRequest) -> ApiResult {
    let calls = sip(&state)?.calls().await;
    Ok(json_response(
        StatusCode::OK,
        &json!({ "items": calls, "total": calls.len() }),
    ))
}

async fn hang_up(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let id = call_id(&req)?;
    if sip(&state)?.hang_up(id).await {
        Ok(json_response(
            StatusCode::OK,
            &json!({ "id": id, "ended": true }),
        ))
    } else {
        Err(ApiError::not_found("no such call"))
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct HoldBody {
    #[serde(default = "yes")]
    on: bool,
}

fn yes() -> bool {
    true
}

async fn hold(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let id = call_id(&req)?;
    let body: HoldBody = req.json()?;
    let sip = sip(&state)?;
    if sip.hold(id, body.on).await {
        Ok(json_response(
            StatusCode::OK,
            &json!({ "id": id, "on_hold": body.on }),
        ))
    } else if sip.calls().await.iter().any(|c| c.id == id) {
        Err(ApiError::conflict("the call is not answered yet"))
    } else {
        Err(ApiError::not_found("no such call"))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TransferBody {
    /// The phone (SIP user name) that takes the call over.
    to: String,
    /// Which party is replaced: `a` (the caller's side) or `b`; by default
    /// the household's phone in the call.
    side: Option<Party>,
}

async fn transfer(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let id = call_id(&req)?;
    let body: TransferBody = req.json()?;
    match sip(&state)?.transfer(id, body.to.trim(), body.side).await {
        Ok(()) => Ok(json_response(
            StatusCode::ACCEPTED,
            &json!({ "id": id, "transferring_to": body.to.trim() }),
        )),
        Err(TransferRefused::NoSuchCall) => Err(ApiError::not_found("no such call")),
        Err(TransferRefused::NotNow) => Err(ApiError::conflict(
            "the call is not answered yet, or a transfer is already under way",
        )),
        Err(TransferRefused::UnknownExtension) => Err(ApiError::fields(
            "cannot transfer there",
            vec![field("to", "not one of the household's phones")],
        )),
    }
}

/// The filters of `GET /api/cdrs` and its export, validated.
fn history_filter(req: &ApiRequest) -> Result<Filter, ApiError> {
    let mut filter = Filter::default();
    let mut problems = Vec::new();
    for (k, v) in req.query() {
        match k.as_str() {
            "direction" if !v.is_empty() => match v.parse::<Direction>() {
                Ok(d) => filter.direction = Some(d),
                Err(_) => problems.push(field("direction", "inbound, outbound or internal")),
            },
            "disposition" if !v.is_empty() => match v.parse::<Disposition>() {
                Ok(d) => filter.disposition = Some(d),
                Err(_) => problems.push(field("disposition", "not a known disposition")),
            },
            "number" if !v.trim().is_empty() => match party(&v) {
                Some(n) => filter.number = Some(n),
                None => problems.push(field(
                    "number",
                    "a phone number (+15551234567) or a phone's extension",
                )),
            },
            "since" | "until" if !v.is_empty() => match Timestamp::parse_rfc3339(&v) {
                // Stored times are compared as text, so the bound is
                // written the way they are.
                Some(t) if k == "since" => filter.since = Some(t.to_string()),
                Some(t) => filter.until = Some(t.to_string()),
                None => problems.push(field(&k, "an RFC 3339 UTC time like 2026-11-21T10:00:00Z")),
            },
            _ => {}
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::fields("invalid filter", problems));
    }
    Ok(filter)
}

/// A `number` filter as stored: spaces, dots, dashes and brackets that
/// people type into phone numbers are dropped (`+1 (555) 123-4567`); an
/// extension (a phone's user name) is kept as it is.
fn party(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let squeezed: String = raw
        .chars()
        .filter(|c| !matches!(c, ' ' | '.' | '-' | '(' | ')'))
        .collect();
    let digits = squeezed.strip_prefix('+').unwrap_or(&squeezed);
    if !digits.is_empty() && digits.len() <= 20 && digits.bytes().all(|b| b.is_ascii_digit()) {
        return Some(squeezed);
    }
    let extension = raw.len() <= 64
        && !raw.is_empty()
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'+'));
    extension.then(|| raw.to_string())
}

/// `GET /api/cdrs`: newest first, `limit` rows after `cursor` (keyset
/// pages, cheap at any depth, no count), or the older `page`/`per_page`
/// window with its `total`. Both answer a `next_cursor`.
async fn history(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let me = req.principal()?;
    let mut filter = history_filter(&req)?;
    let query = req.query();
    let get = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let cursor = match get("cursor").filter(|c| !c.is_empty()) {
        Some(raw) => Some(Cursor::decode(raw).ok_or_else(|| {
            ApiError::fields(
                "invalid cursor",
                vec![field("cursor", "not a cursor from a previous answer")],
            )
        })?),
        None => None,
    };
    let legacy = get("page").is_some();
    if legacy && cursor.is_some() {
        return Err(ApiError::fields(
            "use either page or cursor",
            vec![field("cursor", "cannot be combined with page")],
        ));
    }
    let page = req.page()?;
    let limit = match get("limit") {
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => n,
            _ => {
                return Err(ApiError::fields(
                    "invalid pagination",
                    vec![field(
                        "limit",
                        &format!("must be a whole number from 1 to {MAX_PAGE_SIZE}"),
                    )],
                ))
            }
        },
        None => page.per_page,
    };
    let rid = req.request_id.clone();
    let (items, total) = state
        .db
        .read(move |c| {
            let scope = Scope::load(c, &me)?;
            filter.did_ids = scope.did_ids().map(<[i64]>::to_vec);
            if legacy {
                let rows = cdrs::list(c, &filter, page.window())?;
                Ok((rows.items, Some(rows.total)))
            } else {
                Ok((cdrs::page(c, &filter, cursor.as_ref(), limit + 1)?, None))
            }
        })
        .await
        .map_err(|e| ApiError::from_store(&rid, e))?;
    let mut items = items;
    let more = match total {
        Some(total) => u64::from(page.page) * u64::from(page.per_page) < total,
        None => items.len() > limit as usize,
    };
    items.truncate(if legacy { page.per_page } else { limit } as usize);
    let next_cursor = more
        .then(|| items.last().map(|c| Cursor::after(c).encode()))
        .flatten();
    let body = HistoryPage {
        items: &items,
        page: total.map(|_| page.page),
        per_page: if legacy { page.per_page } else { limit },
        total,
        next_cursor,
    };
    Ok(json_response(StatusCode::OK, &body))
}

/// The answer of `GET /api/cdrs`, serialised straight from the rows (no
/// intermediate JSON tree: this is the hottest list of the API).
#[derive(serde::Serialize)]
struct HistoryPage<'a> {
    items: &'a [cdrs::Cdr],
    #[serde(skip_serializing_if = "Option::is_none")]
    page: Option<u32>,
    per_page: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    total: Option<u64>,
    next_cursor: Option<String>,
}

/// Rows read per batch of the export (one short read each, so a long
/// export never holds a read transaction open, nor much memory).
const EXPORT_BATCH: u32 = 500;

/// `GET /api/cdrs/export`: every matching record, newest first, as CSV,
/// streamed batch by batch (a slow download waits; it costs no memory).
async fn export(state: Arc<ServerState>, req: ApiRequest) -> ApiResult {
    let me = req.principal()?;
    let mut filter = history_filter(&req)?;
    let rid = req.request_id.clone();
    filter.did_ids = state
        .db
        .read(move |c| Ok(Scope::load(c, &me)?.did_ids().map(<[i64]>::to_vec)))
        .await
        .map_err(|e| ApiError::from_store(&rid, e))?;
    let mut resp = Response::new(Full::new(Bytes::new()));
    let h = resp.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    h.insert(
        CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"calls.csv\""),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if req.method == Method::HEAD {
        return Ok(resp);
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    let db = state.db.clone();
    tokio::spawn(async move {
        let mut out = csv::header();
        let mut after: Option<Cursor> = None;
        loop {
            let (f, a) = (filter.clone(), after.clone());
            let rows = match db
                .read(move |c| cdrs::page(c, &f, a.as_ref(), EXPORT_BATCH))
                .await
            {
                Ok(rows) => rows,
                Err(e) => {
                    // The client sees a truncated download (no way to send
                    // a status any more); the log says why.
                    tracing::error!(request_id = %rid, error = %e, "call history export failed");
                    return;
                }
            };
            for c in &rows {
                csv::row(&mut out, c);
            }
            if tx
                .send(Bytes::from(std::mem::take(&mut out)))
                .await
                .is_err()
            {
                return; // the client went away
            }
            if rows.len() < EXPORT_BATCH as usize {
                return;
            }
            after = rows.last().map(Cursor::after);
        }
    });
    Ok(super::body::streamed(resp, rx))
}

fn field(name: &str, message: &str) -> FieldError {
    FieldError {
        field: name.into(),
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::testing::TestServer;
    use crate::store::dids;
    use crate::store::testing::t;
    use crate::store::users::Role;

    const PW: &str = "correct horse battery";

    fn record(i: i64, did: Option<i64>, disposition: Disposition) -> cdrs::Cdr {
        cdrs::Cdr {
            id: 0,
            call_sid: Some(format!("CA{i}")),
            sip_call_id: None,
            direction: Direction::Inbound,
            from_number: format!("+1555987{:04}", i % 3),
            to_number: "+15551230001".into(),
            did_id: did,
            device_id: None,
            started_at: t(i / 2).to_string(),
            answered_at: None,
            ended_at: None,
            duration_secs: 0,
            disposition,
            twilio_status: None,
            hangup_cause: None,
            recording_path: None,
            spam_score: None,
        }
    }

    #[tokio::test]
    async fn history_pages_by_cursor_filters_by_number_and_exports_csv() {
        let s = TestServer::start().await;
        s.seed_user("mum@x.org", Role::Admin, PW).await;
        let kid = s.seed_user("kid@x.org", Role::User, PW).await;
        s.state
            .db
            .call(move |c| {
                let home = dids::tests::make(c, "+15551230001");
                dids::assign(c, home, kid)?;
                for i in 0..45 {
                    let did = (i % 3 != 0).then_some(home);
                    let d = if i % 4 == 0 {
                        Disposition::Missed
                    } else {
                        Disposition::Answered
                    };
                    cdrs::insert(c, &record(i, did, d))?;
                }
                Ok::<_, crate::store::StoreError>(())
            })
            .await
            .expect("seed");
        let admin = s.login("mum@x.org", PW).await.expect("login");
        let kid_token = s.login("kid@x.org", PW).await.expect("login");
        let get = |path: String, token: String| {
            let s = &s;
            async move { s.call("GET", &path, Some(&token), None, &[]).await }
        };

        // Walk every record by cursor.
        let mut seen = Vec::new();
        let mut path = "/api/cdrs?limit=20".to_string();
        loop {
            let r = get(path.clone(), admin.clone()).await;
            assert_eq!(r.status, 200, "{}", r.body);
            let j = r.json();
            assert_eq!(j["per_page"], 20);
            assert!(j.get("total").is_none(), "no count on cursor pages");
            seen.extend(
                j["items"]
                    .as_array()
                    .expect("items")
                    .iter()
                    .map(|c| c["id"].clone()),
            );
            match j["next_cursor"].as_str() {
                Some(c) => path = format!("/api/cdrs?limit=20&cursor={c}"),
                None => break,
            }
        }
        assert_eq!(seen.len(), 45, "each record once");
        let mut sorted = seen.clone();
        sorted.dedup();
        assert_eq!(sorted.len(), 45);

        // The page/per_page form keeps its total, and hands out a cursor.
        let r = get("/api/cdrs?page=2&per_page=20".into(), admin.clone()).await;
        let j = r.json();
        assert_eq!(
            (j["page"].clone(), j["total"].clone()),
            (json!(2), json!(45))
        );
        assert_eq!(j["items"][0]["id"], seen[20]);
        assert!(j["next_cursor"].is_string());
        let r = get("/api/cdrs?page=3&per_page=20".into(), admin.clone()).await;
        assert!(r.json()["next_cursor"].is_null(), "the last page");

        // A user sees the calls of their numbers; the number filter matches
        // either party, typed the way people type numbers.
        let r = get("/api/cdrs?limit=100".into(), kid_token.clone()).await;
        assert_eq!(r.json()["items"].as_array().map(Vec::len), Some(30));
        let r = get(
            "/api/cdrs?limit=100&number=%2B1%20555%20987-0001".into(),
            admin.clone(),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.json()["items"].as_array().map(Vec::len), Some(15));
        let r = get(
            "/api/cdrs?limit=100&number=%2B15551230001&disposition=missed".into(),
            admin.clone(),
        )
        .await;
        assert_eq!(r.json()["items"].as_array().map(Vec::len), Some(12));

        for bad in [
            "/api/cdrs?cursor=nonsense",
            "/api/cdrs?page=1&cursor=MXwyMDI2LTExLTIxVDEwOjAwOjAwWg",
            "/api/cdrs?limit=0",
            "/api/cdrs?limit=101",
            "/api/cdrs?number=%3Bdrop",
            "/api/cdrs?since=yesterday",
        ] {
            let r = get(bad.into(), admin.clone()).await;
            assert_eq!(r.status, 400, "{bad}: {}", r.body);
            assert_eq!(r.json()["error"]["code"], "VALIDATION_ERROR", "{bad}");
        }

        // The export: every matching row, newest first, as CSV.
        let r = get("/api/cdrs/export?disposition=missed".into(), admin.clone()).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("text/csv; charset=utf-8"));
        assert_eq!(
            r.header("content-disposition"),
            Some("attachment; filename=\"calls.csv\"")
        );
        let body = dechunk(&r.body);
        let lines: Vec<&str> = body.lines().collect();
        assert!(lines[0].starts_with("id,started_at,"), "{}", lines[0]);
        assert_eq!(lines.len(), 1 + 12, "{body}");
        assert!(lines[1..].iter().all(|l| l.contains(",missed,")));
        let r = get("/api/cdrs/export".into(), kid_token.clone()).await;
        assert_eq!(dechunk(&r.body).lines().count(), 1 + 30, "a user's own");
        let r = s.call("GET", "/api/cdrs/export", None, None, &[]).await;
        assert_eq!(r.status, 401);
    }

    /// The body of a chunked response.
    fn dechunk(raw: &str) -> String {
        let mut out = String::new();
        let mut rest = raw;
        while let Some((size, tail)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).expect("chunk size");
            if n == 0 {
                break;
            }
            out.push_str(&tail[..n]);
            rest = &tail[n + 2..];
        }
        out
    }
}
