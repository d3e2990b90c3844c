//! The HTTP API against a real server on a real SQLite file: what a user sends and sees, and a
//! test for every kind of bad input (each asserting a clear error and that nothing was stored).

use reqwest::StatusCode;
use sluice_protocol::wire::tower::{AppointmentRequest, Receipt, TowerError};
use sluice_protocol::{Address, Hash32, Keypair, Signature};
use sluice_watchtower::fixtures::{appointment_request, auth, register_request, TestChannel};
use sluice_watchtower::store::AppointmentSummary;
use sluice_watchtower::{config, nonces, Config, Health, Registered, Running};

const CHAIN: u64 = 7;

struct Fx {
    _dir: tempfile::TempDir,
    run: Running,
    url: String,
    tower: Address,
    http: reqwest::Client,
}

async fn tower(quota: u64) -> Fx {
    tower_with(|cfg| cfg.quota = quota).await
}

/// A tower on the default settings as changed by `tune`.
async fn tower_with(tune: impl FnOnce(&mut Config)) -> Fx {
    let dir = tempfile::tempdir().unwrap();
    // No node listens there: the API works without the chain.
    config::init(dir.path(), CHAIN, Some("127.0.0.1:1")).unwrap();
    let mut cfg = Config::load(dir.path()).unwrap();
    cfg.listen_addr = "127.0.0.1:0".into();
    tune(&mut cfg);
    let run = sluice_watchtower::start(dir.path(), cfg).await.unwrap();
    let addr = std::fs::read_to_string(dir.path().join("tower.addr")).unwrap();
    assert_eq!(addr, run.addr.to_string());
    Fx {
        url: format!("http://{addr}"),
        tower: run.tower.address(),
        run,
        _dir: dir,
        http: sluice_home::tls::http_client(),
    }
}

impl Fx {
    /// The tower's `/metrics` text.
    async fn metrics(&self) -> String {
        let url = format!("{}/metrics", self.url);
        self.http
            .get(url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    async fn post(&self, path: &str, body: &impl serde::Serialize) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.url))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    async fn register(&self, key: &Keypair) -> Registered {
        let r = self
            .post("/register", &register_request(key, CHAIN, &self.tower))
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        r.json().await.unwrap()
    }

    async fn submit(&self, req: &AppointmentRequest) -> reqwest::Response {
        self.post("/appointments", req).await
    }

    async fn list(&self, key: &Keypair) -> Vec<AppointmentSummary> {
        let a = auth(key, CHAIN, &self.tower, "list", &Hash32::default());
        let r = self
            .http
            .get(format!("{}/appointments", self.url))
            .header("x-sluice-auth", serde_json::to_string(&a).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        r.json().await.unwrap()
    }

    async fn stored_version(&self, ch: &TestChannel) -> Option<u64> {
        let s = self.run.tower.store.appointment(&ch.id()).await.unwrap();
        s.map(|a| a.version())
    }
}

async fn refused(r: reqwest::Response, status: StatusCode, code: &str) {
    assert_eq!(r.status(), status);
    let e: TowerError = r.json().await.unwrap();
    assert_eq!(e.code, code, "{}", e.message);
    assert!(!e.message.is_empty());
}

#[tokio::test]
async fn appointment_is_stored_then_receipted() {
    let fx = tower(10).await;
    let ch = TestChannel::random(CHAIN);
    let reg = fx.register(&ch.a).await;
    assert_eq!(
        (reg.user, reg.tower, reg.quota),
        (ch.a.address(), fx.tower, 10)
    );
    let r = fx
        .submit(&appointment_request(
            &ch.a,
            CHAIN,
            &fx.tower,
            ch.appointment(4, 40),
        ))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let receipt: Receipt = r.json().await.unwrap();
    assert_eq!(receipt.verify(), Ok(()));
    assert_eq!((receipt.tower, receipt.chain_id), (fx.tower, CHAIN));
    assert_eq!((receipt.channel_id, receipt.version), (ch.id(), 4));
    assert_eq!(fx.stored_version(&ch).await, Some(4));
    let listed = fx.list(&ch.a).await;
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].channel_id, listed[0].version), (ch.id(), 4));
    // A higher version replaces it; party b may watch the same channel too.
    fx.register(&ch.b).await;
    let r = fx
        .submit(&appointment_request(
            &ch.b,
            CHAIN,
            &fx.tower,
            ch.appointment(5, 50),
        ))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(fx.stored_version(&ch).await, Some(5));
}

#[tokio::test]
async fn forged_state_signature_is_refused() {
    let fx = tower(10).await;
    let ch = TestChannel::random(CHAIN);
    fx.register(&ch.a).await;
    let mut ap = ch.appointment(3, 30);
    ap.snapshot.cosigned.sig_b = ap.snapshot.cosigned.state.sign(&Keypair::generate());
    let r = fx
        .submit(&appointment_request(&ch.a, CHAIN, &fx.tower, ap))
        .await;
    refused(r, StatusCode::BAD_REQUEST, "invalid_appointment").await;
    assert_eq!(fx.stored_version(&ch).await, None);
}

#[tokio::test]
async fn missing_state_signature_is_refused() {
    let fx = tower(10).await;
    let ch = TestChannel::random(CHAIN);
    fx.register(&ch.a).await;
    let mut ap = ch.appointment(3, 30);
    ap.snapshot.cosigned.sig_a = Signature::default();
    let r = fx
        .submit(&appointment_request(&ch.a, CHAIN, &fx.tower, ap))
        .await;
    refused(r, StatusCode::BAD_REQUEST, "invalid_appointment").await;
    assert_eq!(fx.stored_version(&ch).await, None);
}

#[tokio::test]
async fn forged_user_auth_is_refused() {
    let fx = tower(10).await;
    let ch = TestChannel::random(CHAIN);
    fx.register(&ch.a).await;
    let mut req = appointment_request(
        &Keypair::generate(),
        CHAIN,
        &fx.tower,
        ch.appointment(3, 30),
    );
    req.auth.user = ch.a.address();
    refused(
        fx.submit(&req).await,
        StatusCode::UNAUTHORIZED,
        "bad_signature",
    )
    .await;
    // An auth for another tower is worthless here too.
    let other_tower = Keypair::generate().address();
    let req = appointment_request(&ch.a, CHAIN, &other_tower, ch.appointment(3, 30));
    refused(
        fx.submit(&req).await,
        StatusCode::UNAUTHORIZED,
        "bad_signature",
    )
    .await;
    assert_eq!(fx.stored_version(&ch).await, None);
}

#[tokio::test]
async fn non_participant_is_refused() {
    let fx = tower(10).await;
    let ch = TestChannel::random(CHAIN);
    let stranger = Keypair::generate();
    fx.register(&stranger).await;
    let req = appointment_request(&stranger, CHAIN, &fx.tower, ch.appointment(3, 30));
    refused(
        fx.submit(&req).await,
        StatusCode::FORBIDDEN,
        "not_participant",
    )
    .await;
    assert_eq!(fx.stored_version(&ch).await, None);
}

#[tokio::test]
async fn the_very_state_again_is_receipted_another_at_its_version_is_stale() {
    let fx = tower(10).await;
    let ch = TestChannel::random(CHAIN);
    fx.register(&ch.a).await;
    let ok = fx
        .submit(&appointment_request(
            &ch.a,
            CHAIN,
            &fx.tower,
            ch.appointment(5, 50),
        ))
        .await;
    assert_eq!(ok.status(), StatusCode::OK);
    // F17: the very state again (a lost reply retried, or the other party's copy) gets a receipt.
    let again = fx
        .submit(&appointment_request(
            &ch.a,
            CHAIN,
            &fx.tower,
            ch.appointment(5, 50),
        ))
        .await;
    assert_eq!(again.status(), StatusCode::OK);
    // A different state at that version, or a lower one, is stale.
    for v in [5, 4] {
        let r = fx
            .submit(&appointment_request(
                &ch.a,
                CHAIN,
                &fx.tower,
                ch.appointment(v, v),
            ))
            .await;
        refused(r, StatusCode::CONFLICT, "stale_version").await;
    }
    let stored = fx
        .run
        .tower
        .store
        .appointment(&ch.id())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.snapshot, ch.snapshot(5, 50));
}

#[tokio::test]
async fn another_chains_state_is_refused() {
    let fx = tower(10).await;
    let other = TestChannel::random(CHAIN + 1);
    fx.register(&other.a).await;
    let req = appointment_request(&other.a, CHAIN, &fx.tower, other.appointment(3, 30));
    refused(
        fx.submit(&req).await,
        StatusCode::BAD_REQUEST,
        "wrong_chain",
    )
    .await;
    // Signed for the other chain entirely (auth included): the auth fails first.
    let req = appointment_request(&other.a, CHAIN + 1, &fx.tower, other.appointment(3, 30));
    refused(
        fx.submit(&req).await,
        StatusCode::UNAUTHORIZED,
        "bad_signature",
    )
    .await;
    assert_eq!(fx.run.tower.store.appointment_count().await.unwrap(), 0);
}

#[tokio::test]
async fn oversized_body_is_refused() {
    let fx = tower(10).await;
    let ch = TestChannel::random(CHAIN);
    fx.register(&ch.a).await;
    let mut body = serde_json::to_vec(&appointment_request(
        &ch.a,
        CHAIN,
        &fx.tower,
        ch.appointment(3, 30),
    ))
    .unwrap();
    body.resize(200 * 1024, b' ');
    let r = fx
        .http
        .post(format!("{}/appointments", fx.url))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    refused(r, StatusCode::PAYLOAD_TOO_LARGE, "too_large").await;
    assert_eq!(fx.stored_version(&ch).await, None);
}

#[tokio::test]
async fn user_over_quota_is_refused() {
    let fx = tower(2).await;
    let user = Keypair::generate();
    fx.register(&user).await;
    let channels: Vec<_> = (0..3)
        .map(|_| {
            TestChannel::new(
                CHAIN,
                user.clone(),
                Keypair::generate(),
                sluice_watchtower::fixtures::random_nonce(),
            )
        })
        .collect();
    for ch in &channels[..2] {
        let r = fx
            .submit(&appointment_request(
                &user,
                CHAIN,
                &fx.tower,
                ch.appointment(1, 1),
            ))
            .await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    let r = fx
        .submit(&appointment_request(
            &user,
            CHAIN,
            &fx.tower,
            channels[2].appointment(1, 1),
        ))
        .await;
    refused(r, StatusCode::FORBIDDEN, "quota_exceeded").await;
    assert_eq!(fx.stored_version(&channels[2]).await, None);
    // Updates to channels already watched still go through.
    let r = fx
        .submit(&appointment_request(
            &user,
            CHAIN,
            &fx.tower,
            channels[0].appointment(2, 2),
        ))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn unregistered_user_is_refused() {
    let fx = tower(10).await;
    let ch = TestChannel::random(CHAIN);
    let req = appointment_request(&ch.a, CHAIN, &fx.tower, ch.appointment(3, 30));
    refused(fx.submit(&req).await, StatusCode::FORBIDDEN, "unregistered").await;
    assert_eq!(fx.stored_version(&ch).await, None);
    let a = auth(&ch.a, CHAIN, &fx.tower, "list", &Hash32::default());
    let r = fx
        .http
        .get(format!("{}/appointments", fx.url))
        .header("x-sluice-auth", serde_json::to_string(&a).unwrap())
        .send()
        .await
        .unwrap();
    refused(r, StatusCode::FORBIDDEN, "unregistered").await;
}

#[tokio::test]
async fn replayed_nonce_is_refused() {
    let fx = tower(10).await;
    let ch = TestChannel::random(CHAIN);
    let reg = register_request(&ch.a, CHAIN, &fx.tower);
    assert_eq!(fx.post("/register", &reg).await.status(), StatusCode::OK);
    refused(
        fx.post("/register", &reg).await,
        StatusCode::CONFLICT,
        "replayed_nonce",
    )
    .await;
    let first = appointment_request(&ch.a, CHAIN, &fx.tower, ch.appointment(3, 30));
    assert_eq!(fx.submit(&first).await.status(), StatusCode::OK);
    // Same nonce, newer state, correctly signed: still a replayed nonce.
    let ap = ch.appointment(4, 40);
    let again = AppointmentRequest {
        auth: sluice_protocol::wire::tower::UserAuth::sign(
            &ch.a,
            CHAIN,
            &fx.tower,
            "appointment",
            first.auth.nonce,
            &ap.digest(),
        ),
        appointment: ap,
    };
    refused(
        fx.submit(&again).await,
        StatusCode::CONFLICT,
        "replayed_nonce",
    )
    .await;
    assert_eq!(fx.stored_version(&ch).await, Some(3));
}

#[tokio::test]
async fn malformed_json_is_refused() {
    let fx = tower(10).await;
    for (path, body) in [
        ("/appointments", "{"),
        ("/appointments", r#"{"auth": 1}"#),
        ("/register", "not json"),
    ] {
        let r = fx
            .http
            .post(format!("{}{path}", fx.url))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        refused(r, StatusCode::BAD_REQUEST, "malformed").await;
    }
    let r = fx
        .http
        .get(format!("{}/appointments", fx.url))
        .header("x-sluice-auth", "{nope")
        .send()
        .await
        .unwrap();
    refused(r, StatusCode::BAD_REQUEST, "malformed").await;
    assert_eq!(fx.run.tower.store.appointment_count().await.unwrap(), 0);
}

#[tokio::test]
async fn missing_auth_header_is_refused() {
    let fx = tower(10).await;
    let r = fx
        .http
        .get(format!("{}/appointments", fx.url))
        .send()
        .await
        .unwrap();
    refused(r, StatusCode::UNAUTHORIZED, "missing_auth").await;
}

#[tokio::test]
async fn delete_removes_the_appointment_once() {
    let fx = tower(10).await;
    let ch = TestChannel::random(CHAIN);
    fx.register(&ch.a).await;
    let r = fx
        .submit(&appointment_request(
            &ch.a,
            CHAIN,
            &fx.tower,
            ch.appointment(3, 30),
        ))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let url = format!("{}/appointments/{}", fx.url, ch.id());
    let a = auth(&ch.a, CHAIN, &fx.tower, "delete", &ch.id());
    let header = serde_json::to_string(&a).unwrap();
    let del = |h: String| fx.http.delete(&url).header("x-sluice-auth", h).send();
    assert_eq!(del(header.clone()).await.unwrap().status(), StatusCode::OK);
    assert_eq!(fx.stored_version(&ch).await, None);
    assert!(fx.list(&ch.a).await.is_empty());
    refused(
        del(header).await.unwrap(),
        StatusCode::CONFLICT,
        "replayed_nonce",
    )
    .await;
    // A delete signed for another channel does not apply to this one.
    let wrong = auth(&ch.a, CHAIN, &fx.tower, "delete", &Hash32([1; 32]));
    let r = del(serde_json::to_string(&wrong).unwrap()).await.unwrap();
    refused(r, StatusCode::UNAUTHORIZED, "bad_signature").await;
    let fresh = auth(&ch.a, CHAIN, &fx.tower, "delete", &ch.id());
    let r = del(serde_json::to_string(&fresh).unwrap()).await.unwrap();
    refused(r, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn health_and_metrics_report() {
    let fx = tower(10).await;
    let h: Health = fx
        .http
        .get(format!("{}/health", fx.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!h.connected, "no node listens at the configured address");
    assert!(!h.ok, "a tower that cannot watch says so");
    assert_eq!(h.reason.as_deref(), Some("not connected to the chain node"));
    assert_eq!((h.appointments, h.behind), (0, 0));
    let r = fx.post("/appointments", &serde_json::json!({})).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let text = fx.metrics().await;
    assert!(
        text.contains("sluice_tower_requests_refused_total{code=\"malformed\"} 1"),
        "{text}"
    );
    let r = fx
        .http
        .get(format!("{}/nowhere", fx.url))
        .send()
        .await
        .unwrap();
    refused(r, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn stale_or_future_nonce_is_refused() {
    let fx = tower(10).await;
    let ch = TestChannel::random(CHAIN);
    fx.register(&ch.a).await;
    let now = nonces::now_secs();
    let window = Config::default().nonce_window_secs;
    let signed = |at: u64, version: u64| {
        let ap = ch.appointment(version, version);
        AppointmentRequest {
            auth: sluice_protocol::wire::tower::UserAuth::sign(
                &ch.a,
                CHAIN,
                &fx.tower,
                "appointment",
                nonces::stamped(at),
                &ap.digest(),
            ),
            appointment: ap,
        }
    };
    for at in [now - window - 5, now + window + 5, 0, u64::MAX] {
        let r = fx.submit(&signed(at, 3)).await;
        refused(r, StatusCode::UNAUTHORIZED, "stale_nonce").await;
    }
    let old = sluice_protocol::wire::tower::RegisterRequest {
        auth: sluice_protocol::wire::tower::UserAuth::sign(
            &Keypair::generate(),
            CHAIN,
            &fx.tower,
            "register",
            nonces::stamped(now - window - 5),
            &Hash32::default(),
        ),
    };
    refused(
        fx.post("/register", &old).await,
        StatusCode::UNAUTHORIZED,
        "stale_nonce",
    )
    .await;
    assert_eq!(fx.stored_version(&ch).await, None);
    // Inside the window (a slow clock): accepted once, then a replay.
    let ok = signed(now - window + 30, 3);
    assert_eq!(fx.submit(&ok).await.status(), StatusCode::OK);
    refused(fx.submit(&ok).await, StatusCode::CONFLICT, "replayed_nonce").await;
    assert_eq!(fx.stored_version(&ch).await, Some(3));
}

/// F19: a state whose amounts the JSON types take but the store's decoder refuses (above
/// `MAX_AMOUNT`) is refused at the door, so no row the monitor cannot read is ever stored.
#[tokio::test]
async fn an_appointment_the_store_could_not_read_back_is_refused() {
    let fx = tower(10).await;
    let ch = TestChannel::random(CHAIN);
    fx.register(&ch.a).await;
    let poisoned = ch.appointment_of(ch.snapshot_paid(3, sluice_protocol::MAX_AMOUNT + 1, 0));
    let r = fx
        .submit(&appointment_request(&ch.a, CHAIN, &fx.tower, poisoned))
        .await;
    refused(r, StatusCode::BAD_REQUEST, "malformed").await;
    assert_eq!(fx.stored_version(&ch).await, None, "nothing stored");
}

/// A client whose connections leave from `ip` (any 127/8 address works on loopback).
fn client_from(ip: [u8; 4]) -> reqwest::Client {
    sluice_home::tls::http_client_builder(sluice_home::tls::default_client_config())
        .local_address(std::net::IpAddr::from(ip))
        .build()
        .unwrap()
}

/// Asserts a 429 `rate_limited` refusal naming `what`, with a `Retry-After` header.
async fn rate_limited(r: reqwest::Response, what: &str) {
    assert!(r.headers().contains_key("retry-after"), "{:?}", r.headers());
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let e: TowerError = r.json().await.unwrap();
    assert_eq!(e.code, "rate_limited", "{}", e.message);
    assert!(e.message.contains(what), "{}", e.message);
}

/// F20: one address flooding registrations is refused past its burst, nothing of the refused
/// ones is stored, and the tower keeps serving: appointments from that address, registrations
/// from another, and the same address again once its allowance refills.
#[tokio::test]
async fn a_registration_flood_gets_429_and_the_tower_keeps_serving() {
    let fx = tower_with(|cfg| {
        cfg.register_rate_per_source = 1;
        cfg.register_burst_per_source = 3;
    })
    .await;
    let users: Vec<Keypair> = (0..20).map(|_| Keypair::generate()).collect();
    let flood = users.iter().map(|u| async {
        let r = fx
            .post("/register", &register_request(u, CHAIN, &fx.tower))
            .await;
        (u.address(), r)
    });
    let (mut ok, mut refused) = (vec![], 0);
    for (user, r) in futures::future::join_all(flood).await {
        if r.status() == StatusCode::OK {
            ok.push(user);
        } else {
            rate_limited(r, "registration").await;
            refused += 1;
            let stored = fx.run.tower.store.watched_count(&user).await.unwrap();
            assert_eq!(stored, None, "a refused registration stores nothing");
        }
    }
    assert_eq!((ok.len(), refused), (3, 17));
    // Submissions have their own limit: a registered user from the same address is served.
    let first = users.iter().find(|u| u.address() == ok[0]).unwrap();
    let ch = TestChannel::new(CHAIN, first.clone(), Keypair::generate(), Hash32([3; 32]));
    let r = fx
        .submit(&appointment_request(
            first,
            CHAIN,
            &fx.tower,
            ch.appointment(1, 1),
        ))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // Another address registers at once.
    let other = Keypair::generate();
    let r = client_from([127, 0, 0, 2])
        .post(format!("{}/register", fx.url))
        .json(&register_request(&other, CHAIN, &fx.tower))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // And the flooding address is served again once a second has passed.
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    fx.register(&Keypair::generate()).await;
    let h = fx
        .http
        .get(format!("{}/health", fx.url))
        .send()
        .await
        .unwrap();
    // It answers (503: this fixture's tower has no chain node), not 429.
    assert_eq!(h.status(), StatusCode::SERVICE_UNAVAILABLE);
    let text = fx.metrics().await;
    assert!(
        text.contains("sluice_tower_requests_refused_total{code=\"rate_limited\"} 17"),
        "{text}"
    );
}

#[tokio::test]
async fn appointments_over_the_submission_limit_get_429_before_any_check() {
    let fx = tower_with(|cfg| {
        cfg.submit_rate_per_source = 1;
        cfg.submit_burst_per_source = 2;
    })
    .await;
    let ch = TestChannel::random(CHAIN);
    fx.register(&ch.a).await;
    for v in 1..=2 {
        let r = fx
            .submit(&appointment_request(
                &ch.a,
                CHAIN,
                &fx.tower,
                ch.appointment(v, v),
            ))
            .await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    // Over the limit even malformed bodies get the limit's answer: nothing is parsed.
    rate_limited(
        fx.submit(&appointment_request(
            &ch.a,
            CHAIN,
            &fx.tower,
            ch.appointment(3, 3),
        ))
        .await,
        "appointment",
    )
    .await;
    rate_limited(
        fx.post("/appointments", &"not an appointment").await,
        "appointment",
    )
    .await;
    assert_eq!(fx.stored_version(&ch).await, Some(2));
    // Listing is not limited; the tower still answers.
    assert_eq!(fx.list(&ch.a).await.len(), 1);
}
