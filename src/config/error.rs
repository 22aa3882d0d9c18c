//! [`ConfigError`]: one configuration problem, in one line.

use crate::setting::SettingError;

/// One configuration problem: the setting (as the form it was given in names it) and what is wrong with its
/// value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{setting}: {problem}")]
pub struct ConfigError {
    pub setting: String,
    pub problem: String,
}

pub fn invalid(setting: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError { setting: setting.into(), problem: problem.into() }
}

impl From<SettingError> for ConfigError {
    /// The environment form names a setting by its variable.
    fn from(e: SettingError) -> ConfigError {
        ConfigError { setting: e.setting.var.to_string(), problem: e.problem }
    }
}
