//! Logging for every binary: a `tracing` filter from `SLUICE_LOG` (else the binary's default),
//! written to stderr as text for people or as JSON lines for log collectors.

use tracing_subscriber::EnvFilter;

/// The variable holding the log filter, e.g. `info,sluice_hub=debug`.
pub const FILTER_ENV: &str = "SLUICE_LOG";

/// How log lines are written (`--log-format`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line, fields included.
    Json,
}

/// Installs the global subscriber; a second call (tests) leaves the first in place.
pub fn init(format: LogFormat, default_filter: &str) {
    let filter =
        EnvFilter::try_from_env(FILTER_ENV).unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
