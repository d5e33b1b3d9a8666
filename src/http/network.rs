//! The router API (admins only): `GET /api/network` shows the public
//! address and where it came from, the last check, the forwards and the
//! dynamic-DNS name; `POST /api/network/refresh` checks again now and
//! answers with the new state. The work is done by [`crate::netaddr`].

use std::sync::Arc;
use std::time::Duration;

use hyper::{Method, StatusCode};

use super::error::{ApiError, ApiResult};
use super::request::{json_response, ApiRequest};
use super::router::{Access, Route};
use super::ServerState;

/// How long `POST /api/network/refresh` waits for the check (STUN's
/// retransmissions and SSDP take up to about 15 s).
const REFRESH_LIMIT: Duration = Duration::from_secs(30);

/// The routes of this module.
pub fn routes() -> Vec<Route> {
    vec![
        Route::new(Method::GET, "/api/network", Access::Admin, get),
        Route::new(Method::POST, "/api/network/refresh", Access::Admin, refresh),
    ]
}

async fn get(state: Arc<ServerState>, _req: ApiRequest) -> ApiResult {
    Ok(json_response(StatusCode::OK, &state.network.state()))
}

async fn refresh(state: Arc<ServerState>, _req: ApiRequest) -> ApiResult {
    if !state.network.refresh(REFRESH_LIMIT).await {
        return Err(ApiError::unavailable(
            "the network check did not finish; try again in a moment",
            5,
        ));
    }
    Ok(json_response(StatusCode::OK, &state.network.state()))
}
