//! Real parts for tests: a throwaway Postgres server started from the installed binaries, and
//! supervised daemon processes with captured logs that can be stopped or SIGKILLed.

mod daemon;
mod postgres;

pub use daemon::{bin_path, free_port, wait_for_file, Daemon};
pub use postgres::TempPostgres;

#[derive(Debug, thiserror::Error)]
pub enum SupportError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Failed(String),
    #[error("timed out waiting for {0}")]
    Timeout(String),
}

impl SupportError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> SupportError {
        let what = what.into();
        move |source| SupportError::Io { what, source }
    }
}
