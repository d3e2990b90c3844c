//! What every Sluice binary does the same way, so it is done once: key files ([`keyfile`]),
//! settings from a TOML file and the environment, always validated ([`settings`]), logging
//! ([`logging`]), command output ([`output`]), client TLS ([`tls`]), where a daemon's home is by default ([`dirs`]) and the wall clock ([`clock`]).

pub mod clock;
pub mod dirs;
pub mod keyfile;
pub mod logging;
pub mod output;
pub mod settings;
pub mod tls;
