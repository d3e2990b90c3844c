//! Settings, one convention for every binary: defaults, then the home's TOML file (optional),
//! then `<PREFIX>_<KEY>` environment variables with `__` between nested keys (e.g.
//! `SLUICE_HUB_LIMITS__MAX_CONNECTIONS=500`). An unknown key in either is an error naming it
//! (the settings types deny unknown fields), and nothing is returned before it is validated.

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::Path;

/// A daemon's settings type.
pub trait Settings: DeserializeOwned {
    /// The environment prefix, e.g. `SLUICE_HUB`.
    const ENV_PREFIX: &'static str;
    /// Keys whose environment values are comma-separated lists.
    const LIST_KEYS: &'static [&'static str] = &[];
    type Error: From<config::ConfigError>;

    /// Refuses values the daemon cannot work with, naming the key.
    fn validate(&self) -> Result<(), Self::Error>;
}

/// Loads `file` (if it exists) under the environment overrides, and validates the result.
pub fn load<T: Settings>(file: &Path) -> Result<T, T::Error> {
    let mut env = config::Environment::with_prefix(T::ENV_PREFIX)
        .prefix_separator("_")
        .separator("__")
        .try_parsing(true);
    if !T::LIST_KEYS.is_empty() {
        env = env.list_separator(",");
        for key in T::LIST_KEYS {
            env = env.with_list_parse_key(key);
        }
    }
    let settings: T = config::Config::builder()
        .add_source(config::File::from(file).required(false))
        .add_source(env)
        .build()?
        .try_deserialize()?;
    settings.validate()?;
    Ok(settings)
}

/// The settings file `init` writes: the top-level settings of `chosen` that differ from
/// `defaults`, then `sample` (every setting commented out at its default, with why).
pub fn init_file<T: Serialize>(
    chosen: &T,
    defaults: &T,
    sample: &str,
) -> Result<String, toml::ser::Error> {
    let chosen = toml::Table::try_from(chosen)?;
    let defaults = toml::Table::try_from(defaults)?;
    let changed: toml::Table = chosen
        .into_iter()
        .filter(|(key, value)| defaults.get(key) != Some(value))
        .collect();
    match changed.is_empty() {
        true => Ok(sample.to_string()),
        false => Ok(format!(
            "# Chosen at init.\n{}\n{sample}",
            toml::to_string(&changed)?
        )),
    }
}

/// The setting lines of a commented sample file, uncommented: a sample documents each setting
/// as `# why` lines above a commented-out `#key = default` (or `#[table]`) line, and a test
/// of each daemon parses this to prove the sample still matches its defaults.
pub fn uncomment_sample(sample: &str) -> String {
    sample
        .lines()
        .map(|line| match line.strip_prefix('#') {
            Some(rest) if rest.starts_with(|c: char| c.is_ascii_alphabetic() || c == '[') => rest,
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Demo {
        port: u16,
        inner: Inner,
    }
    #[derive(Debug, Default, serde::Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Inner {
        depth: u32,
    }
    impl Default for Demo {
        fn default() -> Self {
            Demo {
                port: 1,
                inner: Inner::default(),
            }
        }
    }
    #[derive(Debug, thiserror::Error)]
    enum DemoError {
        #[error("{0}")]
        Load(#[from] config::ConfigError),
        #[error("port must be above zero")]
        Zero,
    }
    impl Settings for Demo {
        const ENV_PREFIX: &'static str = "SLUICE_HOMETEST";
        type Error = DemoError;
        fn validate(&self) -> Result<(), DemoError> {
            match self.port {
                0 => Err(DemoError::Zero),
                _ => Ok(()),
            }
        }
    }

    #[test]
    fn file_values_load_unknown_keys_are_named_and_validation_runs() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("demo.toml");
        assert_eq!(load::<Demo>(&file).unwrap(), Demo::default());
        std::fs::write(&file, "port = 7\n[inner]\ndepth = 3\n").unwrap();
        let got = load::<Demo>(&file).unwrap();
        assert_eq!((got.port, got.inner.depth), (7, 3));
        std::fs::write(&file, "[inner]\ndepht = 3\n").unwrap();
        let err = load::<Demo>(&file).unwrap_err().to_string();
        assert!(err.contains("depht"), "{err}");
        std::fs::write(&file, "port = 0\n").unwrap();
        assert!(matches!(load::<Demo>(&file), Err(DemoError::Zero)));
    }

    #[test]
    fn an_init_file_sets_what_was_chosen_above_the_sample() {
        #[derive(Serialize, Default)]
        struct Flat {
            a: u32,
            b: String,
        }
        let chosen = Flat {
            a: 0,
            b: "x".into(),
        };
        let text = init_file(&chosen, &Flat::default(), "#a = 0\n").unwrap();
        assert_eq!(text, "# Chosen at init.\nb = \"x\"\n\n#a = 0\n");
        let same = init_file(&Flat::default(), &Flat::default(), "#a = 0\n").unwrap();
        assert_eq!(same, "#a = 0\n");
    }

    #[test]
    fn a_sample_uncomments_to_its_settings() {
        let sample = "# The port.\n#port = 7\n\n# Inner things.\n#[inner]\n#depth = 2\n";
        let got: Demo = toml_like(&uncomment_sample(sample));
        assert_eq!((got.port, got.inner.depth), (7, 2));
    }

    fn toml_like(text: &str) -> Demo {
        config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .build()
            .unwrap()
            .try_deserialize()
            .unwrap()
    }
}
