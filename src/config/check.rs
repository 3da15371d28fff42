//! The collector every config check writes into: typed readers of values
//! (durations, sizes, counts, choices, addresses, tables) that fall back to
//! the default and record a problem instead of stopping at the first one.
//! It must never decide a rule of its own: the topic files do.

use std::str::FromStr;
use std::time::Duration;

/// Collects problems while reading values with defaults.
#[derive(Default)]
pub(super) struct Check {
    pub(super) problems: Vec<String>,
    /// Also judge what only this process's environment can tell (an
    /// unset secret variable): `check-config` asks for it; the other
    /// commands, which need no secret, do not.
    pub(super) env: bool,
}

impl Check {
    pub(super) fn duration(&mut self, key: &str, value: Option<&str>, default: &str) -> Duration {
        let text = value.unwrap_or(default);
        match humantime::parse_duration(text) {
            Ok(d) => d,
            Err(e) => {
                self.problems.push(format!(
                    "{key} = {text:?} is not a duration ({e}); write it like \"90s\", \"10m\" or \"24h\""
                ));
                humantime::parse_duration(default).unwrap_or_default()
            }
        }
    }

    pub(super) fn size(&mut self, key: &str, value: Option<&str>, default: &str) -> u64 {
        let text = value.unwrap_or(default);
        match text.trim().parse::<bytesize::ByteSize>() {
            Ok(b) if b.as_u64() > 0 => b.as_u64(),
            _ => {
                self.problems.push(format!(
                    "{key} = {text:?} is not a size; write it like \"512MiB\" or \"1GiB\""
                ));
                default
                    .parse::<bytesize::ByteSize>()
                    .map(|b| b.as_u64())
                    .unwrap_or(1)
            }
        }
    }

    pub(super) fn count(
        &mut self,
        key: &str,
        value: Option<i64>,
        default: i64,
        min: i64,
        max: i64,
    ) -> i64 {
        let v = value.unwrap_or(default);
        if v < min || v > max {
            self.problems.push(format!(
                "{key} = {v} is out of range: use a whole number from {min} to {max}"
            ));
            default
        } else {
            v
        }
    }

    pub(super) fn choice<T: Copy>(
        &mut self,
        key: &str,
        value: Option<&str>,
        options: &[(&str, T)],
    ) -> T {
        let Some(text) = value else {
            return options[0].1;
        };
        match options.iter().find(|(name, _)| *name == text) {
            Some((_, v)) => *v,
            None => {
                let names: Vec<String> = options.iter().map(|(n, _)| format!("{n:?}")).collect();
                self.problems.push(format!(
                    "{key} = {text:?} is not one of {}",
                    names.join(", ")
                ));
                options[0].1
            }
        }
    }

    pub(super) fn address(&mut self, key: &str, addr: &str) {
        // Both the syntax check of imports and the mailer's must accept it.
        if email_address::EmailAddress::from_str(addr.trim()).is_err()
            || addr.trim().parse::<lettre::Address>().is_err()
        {
            self.problems
                .push(format!("{key}: {addr:?} is not an email address"));
        }
    }

    /// Deserialises one table on its own, so that its unknown keys are
    /// reported alongside every other table's problems.
    pub(super) fn table<T: serde::de::DeserializeOwned + Default>(
        &mut self,
        key: &str,
        value: Option<toml::Value>,
    ) -> Option<T> {
        match value {
            None => Some(T::default()),
            Some(v) => match v.try_into::<T>() {
                Ok(t) => Some(t),
                Err(e) => {
                    self.problems
                        .push(format!("[{key}]: {}", e.to_string().trim()));
                    None
                }
            },
        }
    }
}
