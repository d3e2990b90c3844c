//! Wallet settings: where the chain node and the hub are, and the wallet's own limits. Kept as
//! `wallet.toml` in the wallet directory so the CLI needs the flags only once.

use crate::error::{Result, WalletError};
use serde::{Deserialize, Serialize};
use sluice_protocol::{Address, Amount, Height};
use std::path::Path;
use std::time::Duration;

/// File name of the config inside the wallet directory.
pub const CONFIG_FILE: &str = "wallet.toml";
/// File name of the key inside the wallet directory.
pub const KEY_FILE: &str = "wallet.key";
/// File name of the SQLite store inside the wallet directory.
pub const DB_FILE: &str = "wallet.db";

/// How to reach the network and what the wallet will put up with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WalletConfig {
    /// Chain node RPC address, `host:port` or `http://host:port`.
    pub node: String,
    /// Hub address, `host:port`, `ws://host:port` or `wss://host:port` (TLS; the session lives
    /// at `/ws`).
    pub hub: String,
    /// The hub's public key; the hub must prove it in its `Challenge`. Written and read as its
    /// `sl1…` text (also in `SLUICE_WALLET_HUB_KEY`): a person edits this file, and a typo in
    /// hex would still name a key, just not the hub's.
    #[serde(with = "sluice_protocol::text::address_serde")]
    pub hub_key: Address,
    /// Fee paid per chain transaction.
    #[serde(default = "default_fee")]
    pub tx_fee: Amount,
    /// Challenge period asked for when opening channels (blocks).
    #[serde(default = "default_challenge_period")]
    pub challenge_period: Height,
    /// If the hub has not taken an incoming payment's unlock this many blocks before the lock
    /// expires, the wallet registers the secret on chain and force-closes.
    #[serde(default = "default_unlock_margin")]
    pub unlock_margin: Height,
    /// How long `pay` waits for the payment to complete (seconds).
    #[serde(default = "default_pay_timeout")]
    pub pay_timeout_secs: u64,
    /// The most of the hub's terms this wallet accepts (checked at login and at `pay`).
    #[serde(default)]
    pub caps: sluice_protocol::routing::TermsCaps,
    /// A PEM file of CA certificates to trust besides the webpki roots, for a `wss://` hub and
    /// an `https://` node whose certificates a private CA signed; relative paths are under the
    /// wallet directory. Absent: the webpki roots only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
}

fn default_fee() -> Amount {
    1
}
/// The hubs' default minimum (`RoutingTerms::min_challenge_period`): a hub does not serve a
/// channel with a shorter one.
fn default_challenge_period() -> Height {
    sluice_protocol::routing::DEFAULT_MIN_CHALLENGE_PERIOD
}
fn default_unlock_margin() -> Height {
    5
}
fn default_pay_timeout() -> u64 {
    30
}

impl WalletConfig {
    /// A config with default limits.
    pub fn new(node: impl Into<String>, hub: impl Into<String>, hub_key: Address) -> Self {
        WalletConfig {
            node: node.into(),
            hub: hub.into(),
            hub_key,
            tx_fee: default_fee(),
            challenge_period: default_challenge_period(),
            unlock_margin: default_unlock_margin(),
            pay_timeout_secs: default_pay_timeout(),
            caps: Default::default(),
            ca_file: None,
        }
    }

    /// The TLS client config for the hub and the node: the webpki roots, plus `ca_file`
    /// (resolved under `dir`) if set.
    pub fn tls(&self, dir: &Path) -> Result<sluice_home::tls::ClientConfig> {
        let ca = self.ca_file.as_ref().map(|f| dir.join(f));
        Ok(sluice_home::tls::client_config(ca.as_deref())?)
    }

    /// The `ws://…/ws` (or `wss://…/ws`) URL of the hub session.
    pub fn hub_ws_url(&self) -> String {
        let base = self.hub.trim_end_matches('/');
        let base = match base.split_once("://") {
            Some(("http", rest)) => format!("ws://{rest}"),
            Some(("https", rest)) => format!("wss://{rest}"),
            Some(_) => base.to_string(),
            None => format!("ws://{base}"),
        };
        match base.ends_with("/ws") {
            true => base,
            false => format!("{base}/ws"),
        }
    }

    /// How long `pay` waits.
    pub fn pay_timeout(&self) -> Duration {
        Duration::from_secs(self.pay_timeout_secs)
    }

    /// Reads `wallet.toml` from `dir` under `SLUICE_WALLET_*` overrides, validated.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(CONFIG_FILE);
        if !path.exists() {
            return Err(WalletError::Config(format!(
                "no config at {}; run `sluice-wallet init --node … --hub … --hub-key …`",
                path.display()
            )));
        }
        sluice_home::settings::load(&path)
    }

    /// Writes `wallet.toml` into `dir`.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let path = dir.join(CONFIG_FILE);
        let text = toml::to_string(self).map_err(|e| WalletError::Config(e.to_string()))?;
        std::fs::write(&path, text).map_err(WalletError::io(format!("write {}", path.display())))
    }
}

impl sluice_home::settings::Settings for WalletConfig {
    const ENV_PREFIX: &'static str = "SLUICE_WALLET";
    type Error = WalletError;

    /// An empty address or a zero bound would fail every payment later; say so at start.
    fn validate(&self) -> Result<()> {
        let fields = [("node", self.node.is_empty()), ("hub", self.hub.is_empty())];
        if let Some((key, _)) = fields.iter().find(|(_, empty)| *empty) {
            return Err(WalletError::Config(format!("{key} must not be empty")));
        }
        let positive = [
            ("tx_fee", self.tx_fee),
            ("challenge_period", self.challenge_period),
            ("unlock_margin", self.unlock_margin),
            ("pay_timeout_secs", self.pay_timeout_secs),
        ];
        match positive.iter().find(|(_, v)| *v == 0) {
            Some((key, _)) => Err(WalletError::Config(format!("{key} must be above zero"))),
            None => Ok(()),
        }
    }
}

impl From<config::ConfigError> for WalletError {
    fn from(e: config::ConfigError) -> Self {
        WalletError::Config(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_urls_are_normalised() {
        let c = |hub: &str| WalletConfig::new("n", hub, Address([1; 32])).hub_ws_url();
        assert_eq!(c("127.0.0.1:9"), "ws://127.0.0.1:9/ws");
        assert_eq!(c("http://h:9/"), "ws://h:9/ws");
        assert_eq!(c("ws://h:9/ws"), "ws://h:9/ws");
    }

    #[test]
    fn config_round_trips_through_toml() {
        let dir = tempfile::tempdir().unwrap();
        let c = WalletConfig::new("127.0.0.1:1", "127.0.0.1:2", Address([3; 32]));
        c.save(dir.path()).unwrap();
        assert_eq!(WalletConfig::load(dir.path()).unwrap(), c);
    }

    #[test]
    fn the_hub_key_is_written_as_text_and_a_typo_in_it_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let key = Address([3; 32]);
        WalletConfig::new("127.0.0.1:1", "127.0.0.1:2", key)
            .save(dir.path())
            .unwrap();
        let file = dir.path().join(CONFIG_FILE);
        let text = std::fs::read_to_string(&file).unwrap();
        let line = format!("hub_key = \"{}\"", key.to_text());
        assert!(text.contains(&line), "{text}");
        let typo = key.to_text().replacen("sl1q", "sl1p", 1);
        std::fs::write(&file, text.replace(&key.to_text(), &typo)).unwrap();
        let err = WalletConfig::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("checksum"), "{err}");
        std::fs::write(&file, text.replace(&key.to_text(), &key.to_string())).unwrap();
        let err = WalletConfig::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("sl1"), "{err}");
    }

    #[test]
    fn a_misspelt_or_zero_setting_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let c = WalletConfig::new("127.0.0.1:1", "127.0.0.1:2", Address([3; 32]));
        c.save(dir.path()).unwrap();
        let file = dir.path().join(CONFIG_FILE);
        let text = std::fs::read_to_string(&file).unwrap();
        std::fs::write(&file, format!("tx_fe = 3\n{text}")).unwrap();
        let err = WalletConfig::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("tx_fe"), "{err}");
        std::fs::write(
            &file,
            text.replace("pay_timeout_secs = 30", "pay_timeout_secs = 0"),
        )
        .unwrap();
        let err = WalletConfig::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("pay_timeout_secs"), "{err}");
    }

    #[test]
    fn missing_config_says_to_init() {
        let dir = tempfile::tempdir().unwrap();
        let err = WalletConfig::load(dir.path()).unwrap_err();
        assert!(err.to_string().contains("init"));
    }
}
