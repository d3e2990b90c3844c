//! The HTTP API (warp). JSON bodies, bounded by `max_body`; errors are `TowerError` JSON with a
//! matching status. `GET /appointments` and `DELETE /appointments/{channel_id}` carry their
//! `UserAuth` as JSON in the `X-Sluice-Auth` header (actions `list` with an all-zero body digest,
//! and `delete` with the channel id as body digest).
//!
//! - `POST /register` (`RegisterRequest`) → `Registered`
//! - `POST /appointments` (`AppointmentRequest`) → `Receipt`
//! - `GET /appointments` → `[AppointmentSummary]`
//! - `DELETE /appointments/{channel_id}` → `{"deleted": channel_id}`
//! - `GET /health` → `Health`; `GET /metrics` → Prometheus text

use crate::error::ApiError;
use crate::tower::Tower;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sluice_protocol::wire::tower::UserAuth;
use sluice_protocol::Hash32;
use std::convert::Infallible;
use std::sync::Arc;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};
use warp::{Filter, Rejection};

pub const AUTH_HEADER: &str = "x-sluice-auth";

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::Malformed(e.to_string()))
}

fn auth(header: Option<String>) -> Result<UserAuth, ApiError> {
    let header = header.ok_or(ApiError::MissingAuth)?;
    serde_json::from_str(&header).map_err(|e| ApiError::Malformed(format!("auth header: {e}")))
}

fn error_reply(e: &ApiError) -> Response {
    warp::reply::with_status(warp::reply::json(&e.body()), e.status()).into_response()
}

fn respond<T: Serialize>(tower: &Tower, r: Result<T, ApiError>) -> Response {
    match r {
        Ok(v) => warp::reply::json(&v).into_response(),
        Err(e) => {
            tower.metrics.refused.with_label_values(&[e.code()]).inc();
            tracing::debug!(code = e.code(), error = %e, "request refused");
            error_reply(&e)
        }
    }
}

/// All routes, with warp's own rejections turned into `TowerError` JSON.
pub fn routes(
    tower: Arc<Tower>,
    max_body: u64,
) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    let t = warp::any().map(move || tower.clone());
    let body = warp::body::content_length_limit(max_body).and(warp::body::bytes());
    let header = warp::header::optional::<String>(AUTH_HEADER);

    let register = warp::path!("register")
        .and(warp::post())
        .and(t.clone())
        .and(body)
        .then(|t: Arc<Tower>, b: warp::hyper::body::Bytes| async move {
            let r = async { t.register(parse(&b)?).await }.await;
            respond(&t, r)
        });
    let submit = warp::path!("appointments")
        .and(warp::post())
        .and(t.clone())
        .and(body)
        .then(|t: Arc<Tower>, b: warp::hyper::body::Bytes| async move {
            let r = async { t.submit(parse(&b)?).await }.await;
            respond(&t, r)
        });
    let list = warp::path!("appointments")
        .and(warp::get())
        .and(t.clone())
        .and(header)
        .then(|t: Arc<Tower>, h: Option<String>| async move {
            let r = async { t.list(auth(h)?).await }.await;
            respond(&t, r)
        });
    let delete = warp::path!("appointments" / String)
        .and(warp::delete())
        .and(t.clone())
        .and(header)
        .then(|id: String, t: Arc<Tower>, h: Option<String>| async move {
            let r = async {
                let channel_id: Hash32 = id
                    .parse()
                    .map_err(|_| ApiError::Malformed(format!("channel id {id:?}")))?;
                t.delete(auth(h)?, channel_id).await?;
                Ok(serde_json::json!({ "deleted": channel_id }))
            }
            .await;
            respond(&t, r)
        });
    let health =
        warp::path!("health")
            .and(warp::get())
            .and(t.clone())
            .then(|t: Arc<Tower>| async move {
                let r = t.health().await;
                respond(&t, r)
            });
    let metrics = warp::path!("metrics")
        .and(warp::get())
        .and(t)
        .map(|t: Arc<Tower>| t.metrics.render().into_response());

    register
        .or(submit)
        .unify()
        .or(list)
        .unify()
        .or(delete)
        .unify()
        .or(health)
        .unify()
        .or(metrics)
        .unify()
        .recover(move |r: Rejection| rejection(r, max_body))
        .unify()
}

async fn rejection(r: Rejection, max_body: u64) -> Result<Response, Infallible> {
    use warp::reject::{LengthRequired, MethodNotAllowed, PayloadTooLarge};
    let e = if r.find::<PayloadTooLarge>().is_some() {
        ApiError::TooLarge(max_body)
    } else if r.find::<LengthRequired>().is_some() {
        ApiError::LengthRequired
    } else if r.find::<MethodNotAllowed>().is_some() {
        return Ok(status_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ));
    } else if r.is_not_found() {
        ApiError::NotFound
    } else {
        ApiError::Malformed(format!("{r:?}"))
    };
    Ok(error_reply(&e))
}

fn status_error(status: StatusCode, code: &str) -> Response {
    let body = sluice_protocol::wire::tower::TowerError {
        code: code.into(),
        message: status.canonical_reason().unwrap_or("error").into(),
    };
    warp::reply::with_status(warp::reply::json(&body), status).into_response()
}
