//! What a setting is, wherever it is given: one [`Setting`] declares its environment variable, its flag, its
//! key in the configuration file and its help, and the module that uses the setting declares it (AWS's in
//! [`crate::ecr::settings`], Rancher's in [`crate::rancher::settings`], Kubernetes' in
//! [`crate::kubernetes::connection`]).
//!
//! A check reads raw values through [`Given`], which either form (the environment, or a table of the file)
//! provides, and reports a [`SettingError`] that names its setting. Only the form renders the name: as the
//! variable (`AUTO_CREATE: …`) or as the file's key (`file line 7: target 'x'.auto_create: …`); a message that
//! names another setting asks the form for its name too ([`Given::name`]), so no text is ever rewritten.
//!
//! Also here: the parsers every module's checks share (booleans, durations, lists, secrets given directly or
//! as files). Nothing here knows any API.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::secret::Secret;

/// One setting of a target or a source.
#[derive(Debug, PartialEq, Eq)]
pub struct Setting {
    /// The environment variable, which is also the id of its flag: `AUTO_CREATE`.
    pub var: &'static str,
    /// The long flag: `auto-create` for `--auto-create`.
    pub flag: &'static str,
    /// The key in a `[[source]]` or `[[target]]` table of the configuration file; `None`: environment only.
    pub key: Option<&'static str>,
    pub value_name: &'static str,
    /// The help of the flag (`--help`).
    pub help: &'static str,
    pub kind: Kind,
}

/// What a setting's value is; in the file, also the TOML type it must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    /// `true` or `false` (a TOML boolean in the file).
    Bool,
    /// A comma list in the environment, an array of strings in the file.
    List,
    /// A file's path.
    Path,
    /// A secret: hidden in `--help`, and warned about when given as a flag.
    Secret,
    /// Not a secret, but not shown in `--help` either (an access key).
    Hidden,
}

impl Setting {
    /// A setting that the file has too, under `key`.
    pub const fn new(
        var: &'static str,
        flag: &'static str,
        key: &'static str,
        value_name: &'static str,
        kind: Kind,
        help: &'static str,
    ) -> Setting {
        Setting { var, flag, key: Some(key), value_name, help, kind }
    }

    /// The file's key, or the variable for a setting the file does not have.
    pub fn key(&self) -> &'static str {
        self.key.unwrap_or(self.var)
    }
}

/// How a form names a setting in a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// Environment variables and flags: `AUTO_CREATE`.
    Env,
    /// A table of the configuration file: `auto_create`.
    File,
}

/// The raw values of one target or source, from either form.
pub trait Given {
    fn form(&self) -> Form;

    /// The value as given, trimmed; `None` when unset or blank (templates often render unanswered questions
    /// as ""). Lists come comma-separated, booleans as `true`/`false`.
    fn value(&self, setting: &Setting) -> Option<String>;

    /// The name of a setting as this form spells it, for messages.
    fn name(&self, setting: &Setting) -> &'static str {
        match self.form() {
            Form::Env => setting.var,
            Form::File => setting.key(),
        }
    }

    /// Where a setting was given, for log lines about it (a secret re-read from its file): the variable, or
    /// the file's table and key.
    fn label(&self, setting: &Setting) -> String {
        self.name(setting).to_string()
    }

    /// A path setting's value.
    fn path(&self, setting: &Setting) -> Option<PathBuf> {
        self.value(setting).map(PathBuf::from)
    }

    /// A boolean setting's value (`false` when unset).
    fn flag(&self, setting: &'static Setting) -> Result<bool, SettingError> {
        match self.value(setting) {
            Some(value) => parse_bool(setting, &value),
            None => Ok(false),
        }
    }

    /// A list setting's items, trimmed, without empty ones.
    fn list(&self, setting: &Setting) -> Vec<String> {
        self.value(setting).map(|v| list(&v)).unwrap_or_default()
    }

    /// A secret given either directly or as a file to read (`*_FILE`), never both.
    fn secret(&self, value: &'static Setting, file: &'static Setting) -> Result<Option<Secret>, SettingError> {
        match (self.value(value), self.path(file)) {
            (Some(_), Some(_)) => {
                Err(invalid(file, format!("set together with {}; use one of the two", self.name(value))))
            }
            (Some(text), None) => Ok(Some(Secret::fixed(self.label(value), text))),
            (None, Some(path)) => {
                let text = crate::secret::read_file(&path).map_err(|problem| invalid(file, problem))?;
                Ok(Some(Secret::from_file(self.label(file), &path, text)))
            }
            (None, None) => Ok(None),
        }
    }
}

/// One problem with one setting. Which form it was given in renders the setting's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {problem}", setting.var)]
pub struct SettingError {
    pub setting: &'static Setting,
    pub problem: String,
}

pub fn invalid(setting: &'static Setting, problem: impl Into<String>) -> SettingError {
    SettingError { setting, problem: problem.into() }
}

/// Treats an empty or all-blank value as unset.
pub fn non_empty(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

/// `a, b,,c` → `[a, b, c]`.
pub fn list(value: &str) -> Vec<String> {
    value.split(',').map(str::trim).filter(|item| !item.is_empty()).map(str::to_string).collect()
}

/// Accepts what Go's strconv.ParseBool accepted, which the predecessor used, plus yes/no and on/off.
pub fn parse_bool_text(value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "t" | "true" | "yes" | "y" | "on" => Ok(true),
        "0" | "f" | "false" | "no" | "n" | "off" => Ok(false),
        _ => Err(format!("'{value}' is not a boolean; use true or false")),
    }
}

pub fn parse_bool(setting: &'static Setting, value: &str) -> Result<bool, SettingError> {
    parse_bool_text(value).map_err(|problem| invalid(setting, problem))
}

/// A duration such as `6h`, `90m`, `1h30m` or `3600s`; a bare number is seconds.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    if let Ok(seconds) = value.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    humantime::parse_duration(value).map_err(|_| format!("'{value}' is not a duration; use e.g. 6h, 90m or 3600s"))
}

/// A duration that must lie between `min` and `max`.
pub fn bounded(value: &str, min: Duration, max: Duration) -> Result<Duration, String> {
    let duration = parse_duration(value)?;
    if duration < min || duration > max {
        let (min, max) = (humantime::format_duration(min), humantime::format_duration(max));
        return Err(format!("'{value}' is out of range; use between {min} and {max}"));
    }
    Ok(duration)
}

/// Rancher 2 project ids `c-xxxxx:p-xxxxx` (cluster id : project name), checked and without duplicates. Both
/// a Rancher target (`RANCHER_PROJECTS`) and a Kubernetes one (`RANCHER_PROJECT_SECRETS`) name projects.
pub fn project_ids(given: &dyn Given, setting: &'static Setting) -> Result<Vec<String>, SettingError> {
    let mut projects: Vec<String> = Vec::new();
    for id in given.list(setting) {
        if !is_project_id(&id) {
            return Err(invalid(setting, format!("'{id}' is not a project id (c-xxxxx:p-xxxxx)")));
        }
        if !projects.contains(&id) {
            projects.push(id);
        }
    }
    Ok(projects)
}

/// A Rancher 2 project id: `c-xxxxx:p-xxxxx` or `local:p-xxxxx`, lower case.
pub fn is_project_id(id: &str) -> bool {
    let valid = |part: &str| {
        !part.is_empty()
            && part.len() <= 63
            && part.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    matches!(id.split_once(':'), Some((cluster, project)) if valid(cluster) && valid(project))
}

/// Reads a file named by a setting, for a check that needs its content (a CA bundle, a kubeconfig).
pub fn read(setting: &'static Setting, path: &Path) -> Result<Vec<u8>, SettingError> {
    std::fs::read(path).map_err(|e| invalid(setting, format!("cannot read '{}': {e}", path.display())))
}

/// Values given as a map, for tests of the checks: the environment form.
#[cfg(test)]
pub struct Values(pub Vec<(&'static str, &'static str)>);

#[cfg(test)]
impl Given for Values {
    fn form(&self) -> Form {
        Form::Env
    }

    fn value(&self, setting: &Setting) -> Option<String> {
        non_empty(self.0.iter().find(|(var, _)| *var == setting.var).map(|(_, v)| v.to_string()))
    }
}
