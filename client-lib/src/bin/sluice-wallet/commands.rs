//! One function per command; each prints readable text or JSON. Addresses are printed as
//! their `sl1…` text in both: JSON output is read by people too, and by scripts that pass what
//! it holds back to these commands, whose arguments take that text.

use crate::cli::{Cli, Command, Global, TowerCommand};
use crate::error::Result;
use crate::invoices;
use serde_json::json;
use sluice_client::config::KEY_FILE;
use sluice_client::store::{PaymentRow, TowerRow};
use sluice_client::{keyfile, Wallet, WalletConfig, WalletError};
use std::time::Duration;

/// Runs one command.
pub async fn run(cli: Cli) -> Result<()> {
    let g = &cli.global;
    match cli.command {
        Command::Init => init(g),
        Command::Address { hex } => address(g, hex),
        Command::Decode { invoice } => invoices::decode(g, &invoice).await,
        Command::Watchtower(TowerCommand::Add { url, key }) => {
            let w = open(g).await?;
            w.add_watchtower(&url, &key).await?;
            let key = key.to_text();
            out(
                g,
                json!({ "added": key, "url": url }),
                &format!("watchtower {key} added"),
            );
            Ok(())
        }
        Command::Watchtower(TowerCommand::List) => {
            let towers = open(g).await?.watchtowers().await?;
            let text = towers
                .iter()
                .map(|t| {
                    let key = t.address.to_text();
                    format!("{key} {} ({} receipts)", t.url, t.receipts.len())
                })
                .collect::<Vec<_>>()
                .join("\n");
            out(g, towers_json(&towers), &text);
            Ok(())
        }
        other => wallet_command(g, other).await,
    }
}

/// `address`: the `sl1…` text, or with `--hex` the wire form for what takes only hex.
fn address(g: &Global, hex: bool) -> Result<()> {
    let a = keyfile::load(&g.dir.join(KEY_FILE))?.address();
    sluice_home::output::print_address(g.json, &a, hex);
    Ok(())
}

/// The towers as JSON, each tower's key as text; its receipts stay as the tower signed them.
fn towers_json(towers: &[TowerRow]) -> serde_json::Value {
    let rows: Vec<_> = towers
        .iter()
        .map(|t| json!({ "address": t.address.to_text(), "url": t.url, "receipts": t.receipts }))
        .collect();
    json!(rows)
}

async fn wallet_command(g: &Global, cmd: Command) -> Result<()> {
    let w = open(g).await?;
    match cmd {
        Command::Balance => {
            let b = w.balances().await?;
            let mut text = format!("on chain: {}\noff chain: {}", b.on_chain, b.off_chain);
            for c in &b.channels {
                text.push_str(&format!(
                    "\n  {} {} v{} balance {} (hub {}, locked out {}, in {})",
                    c.id, c.status, c.version, c.balance, c.hub_balance, c.locked_out, c.locked_in
                ));
            }
            out(g, json!(b), &text);
        }
        Command::Open { deposit } => {
            let id = w.open_channel(deposit).await?;
            out(g, json!({ "channel": id }), &format!("channel {id} open"));
        }
        Command::Deposit { channel, amount } => {
            w.deposit(&channel, amount).await?;
            out(
                g,
                json!({ "channel": channel, "deposited": amount }),
                "deposited",
            );
        }
        Command::Invoice {
            amount,
            memo,
            ttl,
            qr,
        } => {
            let inv = w
                .create_invoice(amount, &memo, Duration::from_secs(ttl))
                .await?;
            invoice(g, &inv, qr)?;
        }
        Command::Pay { invoice, max_fee } => {
            w.check_invoice(&invoice)?;
            w.connect().await?;
            let fee = w.fee_for(&invoice)?;
            if !g.json {
                println!("hub fee: {fee}");
            }
            let secret = w.pay_at_most(&invoice, max_fee).await?;
            out(
                g,
                json!({ "secret": secret, "fee": fee }),
                &format!("paid; proof {secret}"),
            );
        }
        Command::Withdraw { channel, amount } => {
            w.connect().await?;
            let done = w.withdraw(&channel, amount).await?;
            let text = format!(
                "withdrew {} in {} (block {}); {} left in the channel",
                done.amount, done.tx, done.height, done.balance_left
            );
            out(g, json!(done), &text);
        }
        Command::Payments => {
            let rows = w.payments().await?;
            let text = rows.iter().map(describe).collect::<Vec<_>>().join("\n");
            out(g, json!(rows), &text);
        }
        Command::Close { channel } => {
            w.connect().await?;
            let (a, b) = w.close(&channel).await?;
            out(
                g,
                json!({ "payout": a, "hub_payout": b }),
                &format!("closed; paid out {a}"),
            );
        }
        Command::ForceClose { channel } => {
            let after = w.force_close(&channel).await?;
            let text = format!("closing; run `settle {channel}` after height {after}");
            out(g, json!({ "settle_after": after }), &text);
        }
        Command::Settle { channel } => {
            let (a, b) = w.settle(&channel).await?;
            out(
                g,
                json!({ "payout": a, "hub_payout": b }),
                &format!("settled; paid out {a}"),
            );
        }
        Command::Send { to, amount } => {
            let s = w.send(to, amount).await?;
            out(g, json!(s), &s.to_string());
        }
        Command::Run { for_secs } => run_online(g, &w, for_secs).await?,
        Command::Init
        | Command::Address { .. }
        | Command::Decode { .. }
        | Command::Watchtower(_) => {}
    }
    Ok(())
}

/// Prints a new invoice: the string (and its QR code with `qr`), or JSON with its URI.
fn invoice(g: &Global, inv: &sluice_client::CreatedInvoice, qr: bool) -> Result<()> {
    let qr = match qr {
        true => Some(invoices::qr_block(&inv.invoice)?),
        false => None,
    };
    let mut value = json!({
        "invoice": inv.invoice,
        "hashlock": inv.hashlock,
        "uri": invoices::uri(&inv.invoice)?,
    });
    let mut text = inv.invoice.clone();
    if let Some(block) = qr {
        text = format!("{text}\n{block}");
        value["qr"] = json!(block);
    }
    out(g, value, &text);
    Ok(())
}

async fn run_online(g: &Global, w: &Wallet, for_secs: Option<u64>) -> Result<()> {
    w.connect().await?;
    let mut events = w.subscribe();
    let limit = for_secs.map_or(Duration::MAX, Duration::from_secs);
    let deadline = tokio::time::Instant::now() + limit.min(Duration::from_secs(86_400 * 365));
    // SIGTERM (a service manager stopping the wallet) ends the run as Ctrl-C does.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let terminated = async move {
        match term.as_mut() {
            Some(t) => {
                t.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::pin!(terminated);
    loop {
        tokio::select! {
            ev = events.recv() => if let Ok(ev) = ev {
                let text = format!("{ev:?}");
                out(g, json!(ev), &text);
            },
            _ = tokio::time::sleep_until(deadline) => return Ok(()),
            _ = tokio::signal::ctrl_c() => return Ok(()),
            _ = &mut terminated => return Ok(()),
        }
    }
}

fn describe(p: &PaymentRow) -> String {
    let dir = match p.direction {
        sluice_client::store::PaymentDirection::Out => "sent",
        sluice_client::store::PaymentDirection::In => "received",
    };
    let mut s = format!("{} {dir} {} {}", p.hashlock, p.amount, p.status.as_str());
    if let Some(r) = &p.reason {
        s.push_str(&format!(" ({r})"));
    }
    s
}

fn init(g: &Global) -> Result<()> {
    let (Some(node), Some(hub), Some(hub_key)) = (&g.node, &g.hub, g.hub_key) else {
        return Err(WalletError::Config(
            "init needs --node HOST:PORT --hub HOST:PORT --hub-key sl1…".into(),
        )
        .into());
    };
    std::fs::create_dir_all(&g.dir).map_err(|source| WalletError::Io {
        what: format!("create {}", g.dir.display()),
        source,
    })?;
    let key = keyfile::load_or_create(&g.dir.join(KEY_FILE))?;
    let mut config = WalletConfig::new(node.clone(), hub.clone(), hub_key);
    config.ca_file = g.ca_file.clone();
    config.save(&g.dir)?;
    let address = key.address().to_text();
    let text = format!("wallet ready in {}; address {address}", g.dir.display());
    out(g, json!({ "address": address, "dir": g.dir }), &text);
    Ok(())
}

/// Opens the wallet with the stored config, overridden by flags.
async fn open(g: &Global) -> Result<Wallet> {
    keyfile::load(&g.dir.join(KEY_FILE))?;
    let mut config = WalletConfig::load(&g.dir)?;
    if let Some(n) = &g.node {
        config.node = n.clone();
    }
    if let Some(h) = &g.hub {
        config.hub = h.clone();
    }
    if let Some(k) = g.hub_key {
        config.hub_key = k;
    }
    if let Some(ca) = &g.ca_file {
        config.ca_file = Some(ca.clone());
    }
    Ok(Wallet::open(&g.dir, config).await?)
}

/// Prints `value` with `--json`, else `text`.
pub fn out(g: &Global, value: serde_json::Value, text: &str) {
    sluice_home::output::print(g.json, &value, text)
}
