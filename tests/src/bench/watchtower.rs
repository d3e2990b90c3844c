//! `sluice-bench watchtower`: a real `sluice-watchtower` process on SQLite, following a real dev
//! node, measured three ways.
//!
//! - **Ingest**: 100,000 appointments (one per channel; 100 users × 1,000 channels, the hub
//!   party shared) signed beforehand, then posted over keep-alive HTTP connections at once. The
//!   tower verifies three signatures per appointment (both state signatures and the user's auth),
//!   so all-core verification ÷ 3, measured in the same run, is the ceiling.
//! - **Reaction**: with those channels watched and a transfer in every block, a counterparty
//!   closes with an old state; the figure is height(challenge) − height(close), worst of a few.
//! - **Memory**: the tower's `VmRSS` from `/proc/PID/status` with the 100,000 channels watched.

use super::crypto;
use super::process::rss_mib;
use crate::harness::{binaries, init_tower, start_node, wait_for_file, Daemon, NetworkOptions};
use serde_json::json;
use sluice_chain_client::{ChainClient, TxSender};
use sluice_protocol::rpc::EventFilter;
use sluice_protocol::wire::tower::{
    stamped_nonce, Appointment, AppointmentRequest, RegisterRequest, UserAuth,
};
use sluice_protocol::{
    channel_id, Address, ChannelState, CoSigned, Hash32, Height, Keypair, Snapshot, TxKind,
};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const CHAIN: u64 = 1;
const T: Duration = Duration::from_secs(30);
/// Genesis balance of every account the bench moves on chain.
const FUNDS: u64 = 1_000_000_000;

pub struct TowerBench {
    pub users: usize,
    pub channels_per_user: usize,
    /// Concurrent keep-alive HTTP connections posting appointments.
    pub connections: usize,
    /// Stale closes staged; the worst reaction is reported.
    pub closes: usize,
    pub block_time_ms: u64,
}

impl Default for TowerBench {
    fn default() -> Self {
        TowerBench {
            users: 100,
            channels_per_user: 1_000,
            connections: 64,
            closes: 3,
            block_time_ms: 100,
        }
    }
}

/// A request nonce as the tower wants it: stamped with the current unix time, the rest random.
fn fresh_nonce() -> Hash32 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    stamped_nonce(secs, &Hash32(Keypair::generate().secret_bytes()))
}

/// Version `version` of the channel `(a, b, salt)` after `sent_a` paid a→b and `sent_b` b→a.
fn appointment(
    a: &Keypair,
    b: &Keypair,
    salt: Hash32,
    version: u64,
    paid: (u64, u64),
) -> Appointment {
    let id = channel_id(CHAIN, &a.address(), &b.address(), &salt);
    let mut state = ChannelState::opening(CHAIN, id);
    (state.version, state.sent_a, state.sent_b) = (version, paid.0, paid.1);
    let cosigned = CoSigned {
        state,
        sig_a: state.sign(a),
        sig_b: state.sign(b),
    };
    Appointment {
        a: a.address(),
        b: b.address(),
        salt,
        snapshot: Snapshot {
            cosigned,
            locks: vec![],
        },
    }
}

fn appointment_body(user: &Keypair, tower: &Address, ap: Appointment) -> Vec<u8> {
    let auth = UserAuth::sign(
        user,
        CHAIN,
        tower,
        "appointment",
        fresh_nonce(),
        &ap.digest(),
    );
    let req = AppointmentRequest {
        auth,
        appointment: ap,
    };
    serde_json::to_vec(&req).unwrap_or_default()
}

fn register_body(user: &Keypair, tower: &Address) -> Vec<u8> {
    let auth = UserAuth::sign(
        user,
        CHAIN,
        tower,
        "register",
        fresh_nonce(),
        &Hash32::default(),
    );
    serde_json::to_vec(&RegisterRequest { auth }).unwrap_or_default()
}

/// Every user's channels as ready-to-send request bodies, signed on all cores.
fn presign(users: &[Keypair], hub: &Keypair, per_user: usize, tower: &Address) -> Vec<Vec<u8>> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = users.len().div_ceil(cores).max(1);
    let parts: Vec<Vec<Vec<u8>>> = std::thread::scope(|s| {
        let handles: Vec<_> = users
            .chunks(chunk)
            .map(|us| {
                s.spawn(move || {
                    us.iter()
                        .flat_map(|u| (0..per_user).map(move |_| u))
                        .map(|u| {
                            appointment_body(
                                u,
                                tower,
                                appointment(u, hub, fresh_nonce(), 1, (1, 0)),
                            )
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    // Interleave users, as traffic from many wallets would arrive.
    let mut out = Vec::with_capacity(parts.iter().map(Vec::len).sum());
    let mut iters: Vec<_> = parts.into_iter().map(Vec::into_iter).collect();
    while out.len() < out.capacity() {
        for it in &mut iters {
            out.extend(it.next());
        }
    }
    out
}

/// CPU seconds the process has used (user + system, all threads), from `/proc/PID/stat`. On a
/// shared machine this says how much of the ingest rate is the tower and how much its share.
fn cpu_secs(pid: u32) -> Result<f64, String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| e.to_string())?;
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        f.get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .ok_or("bad /proc stat")
    };
    // USER_HZ is 100 on Linux.
    Ok((ticks(11)? + ticks(12)?) / 100.0)
}

fn start_tower(bin: &Path, home: &Path, node_rpc: &str) -> Result<(Daemon, String), String> {
    let _ = std::fs::remove_file(home.join("tower.addr"));
    let mut cmd = Command::new(bin);
    cmd.args(["run", "--home"]).arg(home);
    cmd.env("SLUICE_TOWER_NODE_RPC", node_rpc)
        .env("SLUICE_TOWER_LISTEN_ADDR", "127.0.0.1:0");
    cmd.env("SLUICE_LOG", "warn");
    let d = Daemon::spawn("sluice-watchtower", cmd, &home.join("tower.log"))
        .map_err(|e| e.to_string())?;
    let addr = wait_for_file(&home.join("tower.addr"), T).map_err(|e| e.to_string())?;
    Ok((d, addr))
}

pub async fn run(b: &TowerBench) -> Result<serde_json::Value, String> {
    let ceiling = crypto::measure(Duration::from_millis(500)).verify_per_sec_all_cores / 3.0;
    let bins = binaries().map_err(|e| e.to_string())?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let tower_home = dir.path().join("tower");
    let tower_key = init_tower(&bins, &tower_home).map_err(|e| e.to_string())?;
    let (hub, funder) = (Keypair::generate(), Keypair::generate());
    let parties: Vec<Keypair> = (0..b.closes).map(|_| Keypair::generate()).collect();
    let fund: Vec<_> = [&hub, &funder]
        .into_iter()
        .chain(&parties)
        .map(|k| (k.address(), FUNDS))
        .chain([(tower_key, FUNDS)])
        .collect();
    let opts = NetworkOptions {
        block_time_ms: b.block_time_ms,
        ..NetworkOptions::default()
    };
    let node =
        start_node(&bins, &dir.path().join("node"), &fund, &opts).map_err(|e| e.to_string())?;
    let (tower, addr) = start_tower(&bins.tower, &tower_home, node.addr())?;
    let pid = tower.pid().ok_or("tower has no pid")?;

    let users: Vec<Keypair> = (0..b.users).map(|_| Keypair::generate()).collect();
    for u in users.iter().chain(&parties) {
        http1::post_all(&addr, "/register", vec![register_body(u, &tower_key)], 1).await?;
    }
    let signing = Instant::now();
    let bodies = presign(&users, &hub, b.channels_per_user, &tower_key);
    let presign_secs = signing.elapsed().as_secs_f64();
    let n = bodies.len();
    let (started, cpu_before) = (Instant::now(), cpu_secs(pid)?);
    let busy = http1::post_all(&addr, "/appointments", bodies, b.connections).await?;
    let ingest_secs = started.elapsed().as_secs_f64();
    let tower_cpu = cpu_secs(pid)? - cpu_before;
    let per_sec = n as f64 / ingest_secs;

    let chain = ChainClient::new(node.addr());
    let reactions = reactions(&chain, &addr, &tower_key, &hub, &funder, &parties).await?;
    let (rss, hwm) = rss_mib(pid)?;
    let health = http1::get(&addr, "/health").await?;
    let watched = health["appointments"].as_u64().unwrap_or(0);
    if watched < n as u64 {
        return Err(format!(
            "tower watches {watched} channels, expected at least {n}"
        ));
    }
    let worst = reactions.iter().copied().max().unwrap_or(0);
    drop(tower);
    Ok(json!({
        "bench": "watchtower",
        "appointments_per_sec": per_sec.round(),
        "reaction_blocks": worst,
        "rss_mib_100k_channels": (rss * 10.0).round() / 10.0,
        "verify_ceiling_per_sec": ceiling.round(),
        "ratio": (per_sec / ceiling * 1_000.0).round() / 1_000.0,
        "appointments": n,
        "ingest_secs": (ingest_secs * 100.0).round() / 100.0,
        "presign_secs": (presign_secs * 100.0).round() / 100.0,
        "busy_retries": busy,
        "tower_cpu_cores": (tower_cpu / ingest_secs * 100.0).round() / 100.0,
        "appointments_per_tower_cpu_sec": (n as f64 / tower_cpu.max(0.01)).round(),
        "reactions": reactions,
        "rss_peak_mib": (hwm * 10.0).round() / 10.0,
        "watched": watched,
        "block_time_ms": b.block_time_ms,
    }))
}

/// Stages one stale close per party against the hub, with a transfer waiting for every block,
/// and returns height(challenge) − height(close) for each.
async fn reactions(
    chain: &ChainClient,
    tower_addr: &str,
    tower: &Address,
    hub: &Keypair,
    funder: &Keypair,
    parties: &[Keypair],
) -> Result<Vec<Height>, String> {
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = tokio::spawn(traffic(
        TxSender::new(chain.clone(), funder.clone(), CHAIN, 1),
        stop.clone(),
    ));
    let mut out = Vec::new();
    for a in parties {
        let r = one_reaction(chain, tower_addr, tower, a, hub).await;
        match r {
            Ok(blocks) => out.push(blocks),
            Err(e) => {
                stop.store(true, Ordering::Relaxed);
                return Err(e);
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let _ = traffic.await;
    Ok(out)
}

/// Keeps a small transfer pending at all times, so the dev node seals a block every block time
/// and a slow tower would show up as more than one block of delay.
async fn traffic(sender: TxSender, stop: Arc<AtomicBool>) {
    let to = Keypair::generate().address();
    while !stop.load(Ordering::Relaxed) {
        // A refusal (say, a nonce raced by a block) only skips one beat of traffic.
        let _ = sender.submit(TxKind::Transfer { to, amount: 1 }).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn one_reaction(
    chain: &ChainClient,
    tower_addr: &str,
    tower: &Address,
    a: &Keypair,
    hub: &Keypair,
) -> Result<Height, String> {
    let salt = fresh_nonce();
    let id = channel_id(CHAIN, &a.address(), &hub.address(), &salt);
    let (sa, sb) = (
        TxSender::new(chain.clone(), a.clone(), CHAIN, 10),
        TxSender::new(chain.clone(), hub.clone(), CHAIN, 10),
    );
    let open = TxKind::OpenChannel {
        counterparty: hub.address(),
        deposit: 1_000,
        challenge_period: 20,
        salt,
    };
    sa.send(open, T).await.map_err(|e| format!("open: {e}"))?;
    sb.send(
        TxKind::Deposit {
            channel_id: id,
            amount: 1_000,
        },
        T,
    )
    .await
    .map_err(|e| format!("deposit: {e}"))?;
    let latest = appointment(a, hub, salt, 2, (600, 500));
    http1::post_all(
        tower_addr,
        "/appointments",
        vec![appointment_body(a, tower, latest)],
        1,
    )
    .await?;
    let stale = appointment(a, hub, salt, 1, (600, 0)).snapshot.cosigned;
    let close = TxKind::Close {
        cosigned: stale,
        locks: vec![],
    };
    let closed = sb
        .send(close, T)
        .await
        .map_err(|e| format!("stale close: {e}"))?
        .height;
    let filter = EventFilter {
        channel_id: Some(id),
        kinds: vec!["ChannelChallenged".into()],
        ..EventFilter::default()
    };
    let deadline = Instant::now() + T;
    loop {
        let tip = chain.chain_info().await.map_err(|e| e.to_string())?.height;
        let found = chain
            .events(closed, tip, filter.clone())
            .await
            .map_err(|e| e.to_string())?;
        if let Some(ev) = found.first() {
            return Ok(ev.height - closed);
        }
        if Instant::now() > deadline {
            return Err(format!(
                "no challenge of the close at {closed} within {T:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A minimal HTTP/1.1 client over keep-alive connections: requests are laid out beforehand, so
/// the bench spends its CPU on nothing but writing bytes and reading answers.
mod http1 {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpStream;

    const BUSY_PAUSE: std::time::Duration = std::time::Duration::from_millis(5);

    fn request(method: &str, path: &str, addr: &str, body: &[u8]) -> Vec<u8> {
        let mut r = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        r.extend_from_slice(body);
        r
    }

    /// Sends one request and returns (status, body).
    async fn exchange(
        conn: &mut BufReader<TcpStream>,
        req: &[u8],
    ) -> Result<(u16, Vec<u8>), String> {
        conn.get_mut()
            .write_all(req)
            .await
            .map_err(|e| e.to_string())?;
        let mut line = String::new();
        conn.read_line(&mut line).await.map_err(|e| e.to_string())?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {line:?}"))?;
        let mut len = 0usize;
        loop {
            line.clear();
            conn.read_line(&mut line).await.map_err(|e| e.to_string())?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().map_err(|_| format!("bad header {l:?}"))?;
                }
            }
        }
        let mut body = vec![0; len];
        conn.read_exact(&mut body)
            .await
            .map_err(|e| e.to_string())?;
        Ok((status, body))
    }

    async fn connect(addr: &str) -> Result<BufReader<TcpStream>, String> {
        let s = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        s.set_nodelay(true).map_err(|e| e.to_string())?;
        Ok(BufReader::new(s))
    }

    /// Posts every body to `path` over `conns` connections; every answer must be 200 (a 503
    /// "busy" is retried). Returns how many retries the tower asked for.
    pub async fn post_all(
        addr: &str,
        path: &str,
        bodies: Vec<Vec<u8>>,
        conns: usize,
    ) -> Result<u64, String> {
        let reqs: Vec<Vec<u8>> = bodies
            .iter()
            .map(|b| request("POST", path, addr, b))
            .collect();
        let per = reqs.len().div_ceil(conns.max(1)).max(1);
        let mut tasks = Vec::new();
        let mut reqs = reqs.into_iter();
        loop {
            let chunk: Vec<Vec<u8>> = reqs.by_ref().take(per).collect();
            if chunk.is_empty() {
                break;
            }
            let addr = addr.to_string();
            tasks.push(tokio::spawn(async move {
                let mut conn = connect(&addr).await?;
                let mut busy = 0u64;
                for req in chunk {
                    loop {
                        match exchange(&mut conn, &req).await? {
                            (200, _) => break,
                            (503, _) => {
                                busy += 1;
                                tokio::time::sleep(BUSY_PAUSE).await;
                            }
                            (s, body) => {
                                return Err(format!("HTTP {s}: {}", String::from_utf8_lossy(&body)))
                            }
                        }
                    }
                }
                Ok::<u64, String>(busy)
            }));
        }
        let mut busy = 0;
        for t in tasks {
            busy += t.await.map_err(|e| e.to_string())??;
        }
        Ok(busy)
    }

    pub async fn get(addr: &str, path: &str) -> Result<serde_json::Value, String> {
        let mut conn = connect(addr).await?;
        match exchange(&mut conn, &request("GET", path, addr, b"")).await? {
            (200, body) => serde_json::from_slice(&body).map_err(|e| e.to_string()),
            (s, body) => Err(format!(
                "GET {path}: HTTP {s}: {}",
                String::from_utf8_lossy(&body)
            )),
        }
    }
}
