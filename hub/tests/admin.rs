//! The admin API as an operator meets it: its own listener, the bearer token `init` (or the first
//! start) wrote, paged lists, typed refusals; the session listener serves nothing of it (F16).

mod common;

use common::*;
use sluice_protocol::Keypair;
use sluice_test_support::HubAdmin;

async fn hub_with_channels(dir: &std::path::Path, n: usize) -> (sluice_hub::Hub, HubAdmin) {
    let hub = start_hub(dir, quick_config()).await;
    for _ in 0..n {
        open_channel(&hub, &Keypair::generate(), 1_000, 1_000).await;
    }
    (hub, HubAdmin::of(dir).unwrap())
}

#[tokio::test]
async fn every_request_needs_the_token_and_the_session_listener_serves_none() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, admin) = hub_with_channels(dir.path(), 1).await;
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("admin.token"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "the token file is the operator's alone"
    );
    for path in [
        "/api/v1/health",
        "/api/v1/channels",
        "/api/v1/liquidity",
        "/metrics",
        "/nope",
    ] {
        for token in [None, Some("0000")] {
            let r = admin.request("GET", path, token).await.unwrap();
            assert_eq!(r.status, 401, "{path} with {token:?}");
            assert_eq!(r.json()["code"], "unauthorized");
        }
        assert!(!admin.get(path).await.unwrap().body.contains("unauthorized"));
    }
    let public = HubAdmin {
        addr: hub.addr.to_string(),
        token: admin.token.clone(),
    };
    for path in [
        "/api/v1/health",
        "/api/v1/channels",
        "/metrics",
        "/api/channels",
    ] {
        assert_eq!(
            public.get(path).await.unwrap().status,
            404,
            "{path} on the session listener"
        );
    }
    let health = admin.get("/api/v1/health").await.unwrap();
    assert_eq!(
        (health.status, health.json()["ok"].clone()),
        (200, true.into())
    );
    assert!(admin
        .get("/metrics")
        .await
        .unwrap()
        .body
        .contains("sluice_hub_"));
    hub.shutdown().await;
}

#[tokio::test]
async fn lists_are_pages_that_cover_every_channel_once() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, admin) = hub_with_channels(dir.path(), 5).await;
    let mut seen = Vec::new();
    let mut path = "/api/v1/channels?limit=2".to_string();
    for _ in 0..5 {
        let page = admin.get(&path).await.unwrap().json();
        for c in page["items"].as_array().unwrap() {
            seen.push(c["id"].as_str().unwrap().to_string());
        }
        match page["next"].as_str() {
            Some(next) => path = format!("/api/v1/channels?limit=2&after={next}"),
            None => break,
        }
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((seen.len(), unique.len()), (5, 5), "{seen:?}");
    let one = admin
        .get(&format!("/api/v1/channels/{}", seen[0]))
        .await
        .unwrap();
    assert_eq!(
        (one.status, one.json()["id"].as_str()),
        (200, Some(seen[0].as_str()))
    );
    let liquidity = admin.get("/api/v1/liquidity").await.unwrap().json();
    assert_eq!(
        liquidity["channels"], 5,
        "totals cover every channel, not one page"
    );
    hub.shutdown().await;
}

#[tokio::test]
async fn bad_input_gets_a_typed_refusal_never_a_5xx() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, admin) = hub_with_channels(dir.path(), 1).await;
    let zero = "00".repeat(32);
    let cases = [
        ("/api/v1/channels?limit=0", 400, "bad_request"),
        ("/api/v1/channels?limit=1001", 400, "bad_request"),
        ("/api/v1/channels?limit=ten", 400, "bad_request"),
        ("/api/v1/channels?color=red", 400, "bad_request"),
        ("/api/v1/channels?after=zz", 400, "bad_request"),
        ("/api/v1/payments?after=1.2", 400, "bad_request"),
        (
            &format!("/api/v1/payments?after=9223372036854775808.{zero}.{zero}"),
            400,
            "bad_request",
        ),
        ("/api/v1/channels/xyz", 400, "bad_request"),
        ("/api/v1/payments/123", 400, "bad_request"),
        (
            &format!("/api/v1/channels/{zero}") as &str,
            404,
            "not_found",
        ),
        (&format!("/api/v1/payments/{zero}"), 404, "not_found"),
        ("/api/v2/channels", 404, "not_found"),
    ];
    for (path, status, code) in cases {
        let r = admin.get(path).await.unwrap();
        assert_eq!(
            (r.status, r.json()["code"].as_str()),
            (status, Some(code)),
            "{path}: {}",
            r.body
        );
    }
    let post = admin
        .request("POST", "/api/v1/channels", Some(&admin.token))
        .await
        .unwrap();
    assert_eq!(post.status, 405);
    let empty = admin.get("/api/v1/payments").await.unwrap().json();
    assert_eq!(empty["items"].as_array().map(Vec::len), Some(0));
    assert_eq!(
        admin.get("/api/v1/health").await.unwrap().status,
        200,
        "still healthy"
    );
    hub.shutdown().await;
}

#[tokio::test]
async fn the_openapi_document_describes_every_route_served() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, admin) = hub_with_channels(dir.path(), 1).await;
    let doc = admin.get("/api/v1/openapi.json").await.unwrap().json();
    let paths: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
    assert_eq!(paths.len(), 8, "{paths:?}");
    for p in paths.iter().filter(|p| !p.contains('{')) {
        assert_eq!(admin.get(p).await.unwrap().status, 200, "{p}");
    }
    hub.shutdown().await;
}

#[tokio::test]
async fn health_answers_503_with_the_reason_when_the_store_is_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let (hub, admin) = hub_with_channels(dir.path(), 1).await;
    hub.shared.store.close().await;
    let health = admin.get("/api/v1/health").await.unwrap();
    assert_eq!(health.status, 503, "{}", health.body);
    let body = health.json();
    assert_eq!(body["ok"], false, "{body}");
    assert_eq!(body["reason"], "store unreachable", "{body}");
    assert!(body["store_error"].is_string(), "{body}");
    hub.shutdown().await;
}
