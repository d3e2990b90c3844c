//! The admin API, on a listener of its own (loopback by default, `admin_listen`), every request
//! authenticated with the bearer token of `HOME/admin.token` (ATTACKS F16):
//! `/api/v1/{health,channels,channels/ID,payments,payments/HASHLOCK,liquidity,openapi.json}`
//! and `/metrics`. Lists are pages (`?limit=1..1000&after=CURSOR`, the cursor from the previous
//! page's `next`). Refusals are JSON `{"code", "message"}`: 400 malformed input, 401 no valid
//! token, 404 unknown id or path, 405 a method other than GET, 503 store unavailable.

pub mod token;
pub mod views;

use crate::shared::Shared;
use serde::Serialize;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
pub use token::AdminToken;
use views::PageQuery;
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

/// The OpenAPI description of this API, served at `/api/v1/openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");

#[derive(Debug, Clone, thiserror::Error)]
pub enum AdminError {
    #[error("missing or wrong bearer token (see HOME/admin.token)")]
    Unauthorized,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("only GET is served")]
    MethodNotAllowed,
    #[error("hub store unavailable: {0}")]
    Unavailable(String),
}

impl warp::reject::Reject for AdminError {}

impl From<crate::store::StoreError> for AdminError {
    fn from(e: crate::store::StoreError) -> Self {
        AdminError::Unavailable(e.to_string())
    }
}

impl AdminError {
    pub fn code(&self) -> &'static str {
        match self {
            AdminError::Unauthorized => "unauthorized",
            AdminError::BadRequest(_) => "bad_request",
            AdminError::NotFound(_) => "not_found",
            AdminError::MethodNotAllowed => "method_not_allowed",
            AdminError::Unavailable(_) => "unavailable",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            AdminError::Unauthorized => StatusCode::UNAUTHORIZED,
            AdminError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AdminError::NotFound(_) => StatusCode::NOT_FOUND,
            AdminError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            AdminError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn reply(&self) -> warp::reply::Response {
        let body = serde_json::json!({ "code": self.code(), "message": self.to_string() });
        let mut r =
            warp::reply::with_status(warp::reply::json(&body), self.status()).into_response();
        let (name, value) = match self {
            AdminError::Unauthorized => ("www-authenticate", "Bearer"),
            AdminError::MethodNotAllowed => ("allow", "GET, HEAD"),
            _ => return r,
        };
        r.headers_mut()
            .insert(name, warp::http::HeaderValue::from_static(value));
        r
    }
}

fn ok<T: Serialize>(r: Result<T, AdminError>) -> Result<warp::reply::Response, Rejection> {
    match r {
        Ok(v) => Ok(warp::reply::json(&v).into_response()),
        Err(e) => Err(warp::reject::custom(e)),
    }
}

/// Every admin route behind the token; refusals become typed JSON answers.
pub fn routes(
    sh: Arc<Shared>,
    token: AdminToken,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Infallible> + Clone {
    let auth = warp::header::optional::<String>("authorization")
        .and_then(move |h: Option<String>| {
            let admitted = token.admits(h.as_deref());
            async move {
                match admitted {
                    true => Ok(()),
                    false => Err(warp::reject::custom(AdminError::Unauthorized)),
                }
            }
        })
        .untuple_one();
    let with = warp::any().map(move || sh.clone());
    let v1 = warp::path("api").and(warp::path("v1"));
    let query = warp::query::<HashMap<String, String>>();
    let channels = v1
        .and(warp::path!("channels"))
        .and(query)
        .and(with.clone())
        .and_then(|q: HashMap<String, String>, sh: Arc<Shared>| async move {
            let r = async { views::channels(&sh, PageQuery::parse(&q)?).await }.await;
            ok(r)
        });
    let channel = v1
        .and(warp::path!("channels" / String))
        .and(with.clone())
        .and_then(|id: String, sh: Arc<Shared>| async move { ok(views::channel(&sh, &id).await) });
    let payments = v1
        .and(warp::path!("payments"))
        .and(query)
        .and(with.clone())
        .and_then(|q: HashMap<String, String>, sh: Arc<Shared>| async move {
            let r = async { views::payments(&sh, PageQuery::parse(&q)?).await }.await;
            ok(r)
        });
    let payment = v1
        .and(warp::path!("payments" / String))
        .and(with.clone())
        .and_then(|h: String, sh: Arc<Shared>| async move { ok(views::payment(&sh, &h).await) });
    let liquidity = v1
        .and(warp::path!("liquidity"))
        .and(with.clone())
        .and_then(|sh: Arc<Shared>| async move { ok(views::liquidity(&sh).await) });
    let health =
        v1.and(warp::path!("health"))
            .and(with.clone())
            .then(|sh: Arc<Shared>| async move {
                let (up, body) = views::health(&sh).await;
                let status = match up {
                    true => StatusCode::OK,
                    false => StatusCode::SERVICE_UNAVAILABLE,
                };
                warp::reply::with_status(warp::reply::json(&body), status).into_response()
            });
    let openapi = v1.and(warp::path!("openapi.json")).map(|| {
        warp::reply::with_header(OPENAPI, "content-type", "application/json").into_response()
    });
    let metrics = warp::path!("metrics")
        .and(with)
        .then(|sh: Arc<Shared>| async move {
            views::record_channel_totals(&sh).await;
            let text = sh.metrics.render();
            warp::reply::with_header(text, "content-type", "text/plain; version=0.0.4")
                .into_response()
        });
    let any = channels
        .or(channel)
        .unify()
        .or(payments)
        .unify()
        .or(payment)
        .unify()
        .or(liquidity)
        .unify()
        .or(health)
        .unify()
        .or(openapi)
        .unify()
        .or(metrics)
        .unify();
    auth.and(warp::get().or(warp::head()).unify())
        .and(any)
        .recover(|r: Rejection| async move { Ok::<_, Infallible>(refusal(&r).reply()) })
        .unify()
}

/// The typed refusal for whatever warp or a handler rejected.
fn refusal(r: &Rejection) -> AdminError {
    if let Some(e) = r.find::<AdminError>() {
        return e.clone();
    }
    if r.find::<warp::reject::MethodNotAllowed>().is_some() {
        return AdminError::MethodNotAllowed;
    }
    if r.find::<warp::reject::InvalidQuery>().is_some() {
        return AdminError::BadRequest("malformed query string".into());
    }
    AdminError::NotFound("no such endpoint".into())
}
