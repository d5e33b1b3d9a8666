//! A small router: a table of routes, each with a method, a path pattern
//! (`/api/devices/{id}`), the access it requires, and a handler.
//!
//! The table is data, so tests can walk every route (the access-matrix test
//! of the security model is generated from [`Router::routes`]), and a route
//! cannot exist without declaring who may call it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use hyper::Method;

use super::error::ApiResult;
use super::request::ApiRequest;
use super::ServerState;

/// Who may call a route. `http::dispatch` enforces it before the handler
/// runs (see `http::auth`), so a handler never sees a request its route does
/// not admit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone on the network: health checks, login, the setup wizard. No
    /// session is looked up; state-changing requests must still prove they
    /// come from our own pages (CSRF check, which also stops login CSRF).
    Public,
    /// Twilio's webhooks, reachable from the internet through the router's
    /// port-forward. No session and no CSRF check (Twilio sends neither);
    /// instead the handler must verify `X-Twilio-Signature` before acting.
    /// `http::webhooks` checks it (403 otherwise).
    Webhook,
    /// Any logged-in account. What it may see is narrowed by its
    /// `accounts::scope::Scope`: admins everything, users their own.
    User,
    /// Administrators only; other accounts get 403.
    Admin,
}

type BoxFuture = Pin<Box<dyn Future<Output = ApiResult> + Send + 'static>>;
type Handler = Arc<dyn Fn(Arc<ServerState>, ApiRequest) -> BoxFuture + Send + Sync>;

/// One entry of the route table.
#[derive(Clone)]
pub struct Route {
    /// HTTP method (GET routes also answer HEAD).
    pub method: Method,
    /// Path pattern, matchit syntax.
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
    handler: Handler,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} ({:?})", self.method, self.path, self.access)
    }
}

impl Route {
    /// Declares a route.
    pub fn new<F, Fut>(method: Method, path: &'static str, access: Access, handler: F) -> Route
    where
        F: Fn(Arc<ServerState>, ApiRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ApiResult> + Send + 'static,
    {
        Route {
            method,
            path,
            access,
            handler: Arc::new(move |s, r| Box::pin(handler(s, r))),
        }
    }

    /// Runs the handler.
    pub fn call(
        &self,
        state: Arc<ServerState>,
        req: ApiRequest,
    ) -> impl Future<Output = ApiResult> + Send + 'static {
        (self.handler)(state, req)
    }
}

/// What a lookup found.
#[derive(Debug)]
pub enum Lookup<'a> {
    /// A route and its path parameters.
    Found(&'a Route, Vec<(String, String)>),
    /// The path exists with other methods (their list, for `Allow`).
    MethodNotAllowed(String),
    /// No route has this path.
    NotFound,
}

/// The route table with its path index.
pub struct Router {
    routes: Vec<Route>,
    paths: matchit::Router<Vec<usize>>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(&self.routes).finish()
    }
}

/// Two routes collide, or a pattern is malformed.
#[derive(Debug, thiserror::Error)]
#[error("route table: {0}")]
pub struct RouteError(String);

impl Router {
    /// Indexes the table; duplicate method+path pairs are rejected.
    pub fn new(routes: Vec<Route>) -> Result<Router, RouteError> {
        let mut by_path: Vec<(&'static str, Vec<usize>)> = Vec::new();
        for (i, r) in routes.iter().enumerate() {
            match by_path.iter_mut().find(|(p, _)| *p == r.path) {
                Some((_, ids)) => {
                    if ids.iter().any(|&j| routes[j].method == r.method) {
                        return Err(RouteError(format!(
                            "{} {} is declared twice",
                            r.method, r.path
                        )));
                    }
                    ids.push(i);
                }
                None => by_path.push((r.path, vec![i])),
            }
        }
        let mut paths = matchit::Router::new();
        for (path, ids) in by_path {
            paths
                .insert(path, ids)
                .map_err(|e| RouteError(format!("{path}: {e}")))?;
        }
        Ok(Router { routes, paths })
    }

    /// Every route, for documentation and tests.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// Finds the route for `method` and `path`; HEAD falls back to GET.
    pub fn lookup(&self, method: &Method, path: &str) -> Lookup<'_> {
        let Ok(m) = self.paths.at(path) else {
            return Lookup::NotFound;
        };
        let want = |x: &Method| x == method || (*method == Method::HEAD && *x == Method::GET);
        match m
            .value
            .iter()
            .map(|&i| &self.routes[i])
            .find(|r| want(&r.method))
        {
            Some(r) => Lookup::Found(
                r,
                m.params
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            None => {
                let mut allow: Vec<&str> = m
                    .value
                    .iter()
                    .map(|&i| self.routes[i].method.as_str())
                    .collect();
                if allow.contains(&"GET") {
                    allow.push("HEAD");
                }
                Lookup::MethodNotAllowed(allow.join(", "))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request::json_response;
    use hyper::StatusCode;

    fn r(method: Method, path: &'static str) -> Route {
        Route::new(method, path, Access::Public, |_, _| async {
            Ok(json_response(StatusCode::OK, &"ok"))
        })
    }

    #[test]
    fn lookup_params_methods_and_head() {
        let router = Router::new(vec![
            r(Method::GET, "/api/x/{id}"),
            r(Method::DELETE, "/api/x/{id}"),
            r(Method::GET, "/health"),
        ])
        .expect("valid table");
        match router.lookup(&Method::GET, "/api/x/42") {
            Lookup::Found(route, params) => assert_eq!(
                (route.path, params),
                ("/api/x/{id}", vec![("id".into(), "42".into())])
            ),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            router.lookup(&Method::HEAD, "/health"),
            Lookup::Found(..)
        ));
        match router.lookup(&Method::POST, "/api/x/1") {
            Lookup::MethodNotAllowed(allow) => assert_eq!(allow, "GET, DELETE, HEAD"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            router.lookup(&Method::GET, "/api/nope"),
            Lookup::NotFound
        ));
        assert_eq!(router.routes().len(), 3);
    }

    #[test]
    fn duplicate_routes_are_rejected() {
        let err = Router::new(vec![r(Method::GET, "/a"), r(Method::GET, "/a")]).unwrap_err();
        assert!(err.to_string().contains("declared twice"));
    }
}
