//! What every Sluice binary does the same way, so it is done once: key files ([`keyfile`]),
//! settings from a TOML file and the environment, always validated ([`settings`]), logging
//! ([`logging`]), command output ([`output`]), client TLS ([`tls`]), where a daemon's home is
//! by default ([`dirs`]), the wall clock ([`clock`]) and, with the `cli` feature, command-line
//! arguments (`cli`: addresses as checksummed `sl1…` text).

#[cfg(feature = "cli")]
pub mod cli;
pub mod clock;
pub mod dirs;
pub mod keyfile;
pub mod logging;
pub mod output;
pub mod settings;
pub mod tls;
