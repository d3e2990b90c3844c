//! Default home directories: `$SLUICE_HOME/<name>`, else `$HOME/.sluice/<name>`, so an operator
//! who passes no `--home` gets the same place at every start.

use std::path::PathBuf;

/// The variable naming the directory that holds every daemon's default home.
pub const BASE_ENV: &str = "SLUICE_HOME";

/// The default home of the daemon called `name` (`hub`, `node`, `watchtower`, `wallet`).
pub fn default_home(name: &str) -> PathBuf {
    home_from(
        name,
        std::env::var_os(BASE_ENV).map(PathBuf::from),
        std::env::var_os("HOME").map(PathBuf::from),
    )
}

fn home_from(name: &str, base: Option<PathBuf>, user_home: Option<PathBuf>) -> PathBuf {
    match (base, user_home) {
        (Some(base), _) if !base.as_os_str().is_empty() => base.join(name),
        (_, Some(home)) if !home.as_os_str().is_empty() => home.join(".sluice").join(name),
        // No home at all (a bare service account): beside the working directory.
        _ => PathBuf::from(".sluice").join(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_variable_wins_over_the_user_home() {
        let got = home_from("hub", Some("/srv/sluice".into()), Some("/home/a".into()));
        assert_eq!(got, PathBuf::from("/srv/sluice/hub"));
        let got = home_from("hub", None, Some("/home/a".into()));
        assert_eq!(got, PathBuf::from("/home/a/.sluice/hub"));
        let got = home_from("hub", Some("".into()), None);
        assert_eq!(got, PathBuf::from(".sluice/hub"));
    }
}
