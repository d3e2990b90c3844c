//! What an invoice looks like to a person: every field of one (`decode`), and its payment URI
//! as a QR code (`invoice --qr`). Nothing here reaches the node or the hub.

use crate::cli::Global;
use crate::error::{CliError, Result};
use qrcode::render::unicode::Dense1x2;
use qrcode::QrCode;
use serde_json::{json, Value};
use sluice_client::config::{CONFIG_FILE, DB_FILE};
use sluice_client::store::Store;
use sluice_client::{WalletConfig, WalletError};
use sluice_protocol::invoice::{InvoiceError, SignedInvoice};
use sluice_protocol::{Address, ChainId};

/// The payment URI of `invoice` (a `slinv1…` string this wallet made) as a QR code of
/// `SLUICE:SLINV1…`: upper case fits the code's compact alphanumeric mode, so the code is
/// smaller and scans more easily. Drawn light on dark, the way most terminals are set, with
/// the quiet zone a scanner needs around it.
pub fn qr_block(invoice: &str) -> Result<String> {
    let uri = SignedInvoice::parse(invoice)?.to_qr_uri()?;
    let code = QrCode::new(uri.as_bytes()).map_err(CliError::Qr)?;
    Ok(code
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Light)
        .light_color(Dense1x2::Dark)
        .build())
}

/// The `sluice:` URI of an invoice this wallet made.
pub fn uri(invoice: &str) -> Result<String> {
    Ok(SignedInvoice::parse(invoice)?.to_uri()?)
}

/// What this wallet knows without a network: the hub it pays through (config and flags) and
/// the chain it was first opened on (its database, if it has one).
struct WalletView {
    hub: Address,
    chain_id: Option<ChainId>,
}

/// How an invoice relates to this wallet: `None` fields are unknown.
struct Fit {
    hub: bool,
    chain: Option<bool>,
}

/// `decode`: every field of an invoice, whether its payee signed it, when it expires and, if a
/// wallet config is there, whether it is for this wallet's hub and chain. A forged signature
/// is shown, not refused, so a person can see what a suspicious string claims; a string whose
/// checksum or prefix is wrong is refused with the typed error.
pub async fn decode(g: &Global, s: &str) -> Result<()> {
    let signed = SignedInvoice::parse_unverified(s.trim())?;
    let signature = signed.verify();
    let now = sluice_home::clock::unix_secs();
    let fit = wallet_view(g).await?.map(|view| fit(&signed, &view));
    let value = decoded_json(&signed, &signature, now, fit.as_ref())?;
    let text = decoded_text(&signed, &signature, now, fit.as_ref())?;
    crate::commands::out(g, value, &text);
    Ok(())
}

fn fit(signed: &SignedInvoice, view: &WalletView) -> Fit {
    Fit {
        hub: signed.invoice.hub == view.hub,
        chain: view.chain_id.map(|c| c == signed.invoice.chain_id),
    }
}

/// The wallet's hub key and chain, if `g.dir` holds a wallet config; reads, never creates.
async fn wallet_view(g: &Global) -> Result<Option<WalletView>> {
    if g.hub_key.is_none() && !g.dir.join(CONFIG_FILE).is_file() {
        return Ok(None);
    }
    let hub = match g.hub_key {
        Some(k) => k,
        None => WalletConfig::load(&g.dir)?.hub_key,
    };
    let chain_id = stored_chain_id(g).await?;
    Ok(Some(WalletView { hub, chain_id }))
}

/// The chain id the wallet recorded when it first reached its node (none before that).
async fn stored_chain_id(g: &Global) -> Result<Option<ChainId>> {
    let db = g.dir.join(DB_FILE);
    if !db.is_file() {
        return Ok(None);
    }
    let Some(s) = Store::open(&db).await?.meta("chain_id").await? else {
        return Ok(None);
    };
    let id = s
        .parse()
        .map_err(|_| WalletError::Corrupt(format!("chain id {s:?}")))?;
    Ok(Some(id))
}

fn decoded_json(
    signed: &SignedInvoice,
    signature: &std::result::Result<(), InvoiceError>,
    now: u64,
    fit: Option<&Fit>,
) -> Result<Value> {
    let inv = &signed.invoice;
    Ok(json!({
        "invoice": signed.encode_string()?,
        "uri": signed.to_uri()?,
        "chain_id": inv.chain_id,
        "hub": inv.hub.to_text(),
        "payee": inv.payee.to_text(),
        "amount": inv.amount,
        "hashlock": inv.hashlock,
        "expires_at": inv.expires_at,
        "expires_in_secs": seconds_left(inv.expires_at, now),
        "expired": now >= inv.expires_at,
        "memo": inv.memo,
        "signature_valid": signature.is_ok(),
        "signature_error": signature.as_ref().err().map(ToString::to_string),
        "wallet": fit.map(|f| json!({ "hub_matches": f.hub, "chain_matches": f.chain })),
    }))
}

fn decoded_text(
    signed: &SignedInvoice,
    signature: &std::result::Result<(), InvoiceError>,
    now: u64,
    fit: Option<&Fit>,
) -> Result<String> {
    let inv = &signed.invoice;
    let signature = match signature {
        Ok(()) => "valid (signed by the payee)".to_string(),
        Err(e) => format!("INVALID, do not pay: {e}"),
    };
    let lines = [
        ("invoice", signed.encode_string()?),
        ("chain id", inv.chain_id.to_string()),
        ("hub", inv.hub.to_text()),
        ("payee", inv.payee.to_text()),
        ("amount", inv.amount.to_string()),
        ("hashlock", inv.hashlock.to_string()),
        ("expires at", expiry(inv.expires_at, now)),
        // Quoted and escaped: the memo is the payee's text, and a raw control character in it
        // could rewrite what the terminal shows.
        ("memo", format!("{:?}", inv.memo)),
        ("signature", signature),
        ("this wallet", fit.map_or_else(no_wallet, describe_fit)),
    ];
    Ok(lines
        .iter()
        .map(|(k, v)| format!("{:<13}{v}", format!("{k}:")))
        .collect::<Vec<_>>()
        .join("\n"))
}

fn no_wallet() -> String {
    "no wallet config here (pass --dir to compare with a wallet)".into()
}

fn describe_fit(f: &Fit) -> String {
    let hub = match f.hub {
        true => "its hub",
        false => "ANOTHER hub (not payable from this wallet)",
    };
    let chain = match f.chain {
        Some(true) => "its chain",
        Some(false) => "ANOTHER chain (not payable from this wallet)",
        None => "chain not known yet (the wallet has not reached its node)",
    };
    format!("{hub}; {chain}")
}

/// Seconds until `expires_at`, negative once past.
fn seconds_left(expires_at: u64, now: u64) -> i128 {
    i128::from(expires_at) - i128::from(now)
}

/// `expires_at` with how long until it, or since.
fn expiry(expires_at: u64, now: u64) -> String {
    let left = seconds_left(expires_at, now);
    let span = span(left.unsigned_abs());
    match left > 0 {
        true => format!("{expires_at} (unix time; in {span})"),
        false => format!("{expires_at} (unix time; EXPIRED {span} ago)"),
    }
}

/// A duration in its two largest units, e.g. `2d 3h`, `59m 59s`, `0s`.
fn span(secs: u128) -> String {
    let units = [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")];
    let parts: Vec<String> = units
        .iter()
        .scan(secs, |rest, &(size, name)| {
            let n = *rest / size;
            *rest %= size;
            Some((n, name))
        })
        .skip_while(|(n, _)| *n == 0)
        .take(2)
        .filter(|(n, _)| *n > 0)
        .map(|(n, name)| format!("{n}{name}"))
        .collect();
    match parts.is_empty() {
        true => "0s".into(),
        false => parts.join(" "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_in_their_two_largest_units() {
        assert_eq!(span(0), "0s");
        assert_eq!(span(59), "59s");
        assert_eq!(span(3_600), "1h");
        assert_eq!(span(3_661), "1h 1m");
        assert_eq!(span(2 * 86_400 + 3 * 3_600 + 5), "2d 3h");
    }

    #[test]
    fn expiry_says_how_long_until_or_since() {
        assert_eq!(expiry(100, 40), "100 (unix time; in 1m)");
        assert_eq!(expiry(100, 100), "100 (unix time; EXPIRED 0s ago)");
        assert_eq!(expiry(100, 161), "100 (unix time; EXPIRED 1m 1s ago)");
    }
}
