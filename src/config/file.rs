//! The file form: a TOML configuration file (`CONFIG_FILE`) describing several sources and targets.
//!
//! ```toml
//! [[source]]
//! name = "prod"
//! region = "us-east-1"
//! registry_ids = ["123456789012"]
//! role_arn = "arn:aws:iam::123456789012:role/ecr-token-reader"
//! external_id_file = "/run/secrets/ecr-external-id"
//!
//! [[target]]
//! name = "rancher1-prod"
//! url = "http://rancher:8080/v2-beta/projects/1a5"
//! access_key_file = "/run/secrets/cattle-access-key"
//! secret_key_file = "/run/secrets/cattle-secret-key"
//! sources = ["prod"]
//! ```
//!
//! A table's keys are the file keys of the settings each API declares; the same checks as the environment
//! form's run on them ([`Given`]). Every error names the file, the line and the key.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;
use toml::Value;

use super::error::ConfigError;
use super::plan::{KubeTargetSpec, Plan, SourceSpec, TargetSpec};
use crate::ecr::settings as aws;
use crate::kubernetes::settings as kube;
use crate::rancher::settings as rancher;
use crate::setting::{Form, Given, Kind, Setting, SettingError, bounded};

const MIN_SESSION: Duration = Duration::from_secs(900);
const MAX_SESSION: Duration = Duration::from_secs(43_200);
const MIN_TIMEOUT: Duration = Duration::from_millis(100);
const MAX_TIMEOUT: Duration = Duration::from_secs(600);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    source: Vec<Spanned<Table>>,
    #[serde(default)]
    target: Vec<Spanned<Table>>,
}

type Table = BTreeMap<String, Spanned<Value>>;

/// Keys of a `[[source]]` that only the file has, with the kind of their value.
const SOURCE_KEYS: [(&str, Kind); 5] = [
    ("name", Kind::Text),
    ("session_duration", Kind::Text),
    ("endpoint", Kind::Text),
    ("public", Kind::Bool),
    ("addresses", Kind::Text),
];
/// Keys of a `[[target]]` that only the file has.
const TARGET_KEYS: [(&str, Kind); 3] = [("name", Kind::Text), ("sources", Kind::List), ("timeout", Kind::Text)];
const SOURCE_SETTINGS: [&Setting; 6] =
    [&aws::REGION, &aws::REGISTRY_IDS, &aws::ROLE_ARN, &aws::EXTERNAL_ID, &aws::EXTERNAL_ID_FILE, &aws::SESSION_NAME];

/// Positions in the file, for error messages.
struct Locator<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Locator<'_> {
    fn line(&self, span: &Range<usize>) -> usize {
        self.text[..span.start.min(self.text.len())].matches('\n').count() + 1
    }

    fn error(&self, span: &Range<usize>, what: &str, problem: impl Into<String>) -> ConfigError {
        ConfigError {
            setting: format!("{} line {}: {what}", self.path.display(), self.line(span)),
            problem: problem.into(),
        }
    }
}

/// One table of the file, as the checks read it.
struct Entry<'a> {
    at: &'a Locator<'a>,
    /// `source 'prod'` or `target 'rancher1-prod'`.
    name: String,
    values: &'a Table,
    span: Range<usize>,
}

impl Given for Entry<'_> {
    fn form(&self) -> Form {
        Form::File
    }

    fn value(&self, setting: &Setting) -> Option<String> {
        let text = match self.values.get(setting.key())?.get_ref() {
            Value::String(text) => text.clone(),
            Value::Boolean(value) => value.to_string(),
            Value::Array(items) => items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(","),
            _ => return None,
        };
        Some(text.trim().to_string()).filter(|t| !t.is_empty())
    }

    fn label(&self, setting: &Setting) -> String {
        format!("{}.{}", self.name, setting.key())
    }
}

impl Entry<'_> {
    fn span(&self, key: &str) -> Range<usize> {
        self.values.get(key).map_or(self.span.clone(), Spanned::span)
    }

    /// An error at a key: `file line N: target 'x'.key: problem`.
    fn error(&self, key: &str, problem: impl Into<String>) -> ConfigError {
        self.at.error(&self.span(key), &format!("{}.{key}", self.name), problem)
    }

    /// A setting's error, at its key.
    fn located(&self, e: SettingError) -> ConfigError {
        self.error(e.setting.key(), e.problem)
    }

    fn text(&self, key: &str) -> Option<&str> {
        self.values.get(key).and_then(|v| v.get_ref().as_str())
    }

    /// Every key must be one of `settings` or `own`, with a value of its kind; `elsewhere` names the keys of the
    /// other kind of target, with why they do not belong here.
    fn check_keys(
        &self,
        settings: &[&Setting],
        own: &[(&str, Kind)],
        elsewhere: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        for (key, value) in self.values {
            let kind = match settings.iter().find(|s| s.key == Some(key.as_str())) {
                Some(setting) => setting.kind,
                None => match own.iter().find(|(k, _)| k == key) {
                    Some((_, kind)) => *kind,
                    None => return Err(self.error(key, elsewhere(key).unwrap_or_else(|| "unknown key".into()))),
                },
            };
            let fits = match (kind, value.get_ref()) {
                (Kind::Bool, Value::Boolean(_)) => true,
                (Kind::List, Value::Array(items)) => items.iter().all(Value::is_str),
                (_, Value::Table(_)) => key == "addresses",
                (_, Value::String(_)) => key != "addresses" && kind != Kind::Bool && kind != Kind::List,
                _ => false,
            };
            if !fits {
                let expected = match kind {
                    Kind::Bool => "true or false",
                    Kind::List => "a list of strings",
                    _ if key == "addresses" => "a table of ECR_HOST = \"ADDRESS\"",
                    _ => "a string",
                };
                return Err(self.error(key, format!("expected {expected}")));
            }
        }
        Ok(())
    }

    /// A target's own time limit, or the default (RANCHER_TIMEOUT).
    fn timeout(&self, default: Duration) -> Result<Duration, ConfigError> {
        match self.text("timeout") {
            Some(value) => bounded(value, MIN_TIMEOUT, MAX_TIMEOUT).map_err(|p| self.error("timeout", p)),
            None => Ok(default),
        }
    }
}

/// Reads and checks a configuration file. `timeout` is the default time limit of each call to a target
/// (RANCHER_TIMEOUT). A role in the file is always assumed on top of the default chain.
pub fn plan(file: &Path, timeout: Duration) -> Result<Plan, ConfigError> {
    let shown = file.display();
    let content = std::fs::read_to_string(file)
        .map_err(|e| ConfigError { setting: "CONFIG_FILE".into(), problem: format!("cannot read '{shown}': {e}") })?;
    let at = Locator { path: file, text: &content };
    let parsed: File = toml::from_str(&content).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        at.error(&span, "syntax", e.message().trim().replace('\n', " "))
    })?;
    if parsed.source.is_empty() {
        let problem = "has no [[source]]; describe at least one source of ECR tokens";
        return Err(ConfigError { setting: shown.to_string(), problem: problem.into() });
    }
    if parsed.target.is_empty() {
        let problem = "has no [[target]]; describe at least one target";
        return Err(ConfigError { setting: shown.to_string(), problem: problem.into() });
    }
    let mut sources: Vec<SourceSpec> = Vec::new();
    for (i, table) in parsed.source.iter().enumerate() {
        let entry = named(&at, "source", i, table, sources.iter().map(|s| s.name.as_str()))?;
        sources.push(source(entry)?);
    }
    let (mut targets, mut kube_targets, mut names) = (Vec::new(), Vec::new(), Vec::<String>::new());
    for (i, table) in parsed.target.iter().enumerate() {
        let entry = named(&at, "target", i, table, names.iter().map(String::as_str))?;
        let name = entry.text("name").unwrap_or_default().trim().to_string();
        names.push(name.clone());
        let chosen = chosen_sources(&entry, &sources)?;
        let is_kube = entry.value(&rancher::API).is_some_and(|api| api.eq_ignore_ascii_case("kubernetes"));
        if is_kube {
            let not_here = |key: &str| {
                let hint = if key == "projects" { "; project-scoped secrets are rancher_projects" } else { "" };
                rancher::SETTINGS
                    .iter()
                    .any(|s| s.key == Some(key))
                    .then(|| format!("not for api = \"kubernetes\" targets{hint}"))
            };
            entry.check_keys(&[&[&rancher::API][..], &kube::SETTINGS[..]].concat(), &TARGET_KEYS, &not_here)?;
            let kubernetes = kube::check(&entry, entry.timeout(timeout)?).map_err(|e| entry.located(e))?;
            kube_targets.push(KubeTargetSpec { name: Some(name), kubernetes, sources: chosen });
        } else {
            let not_here = |key: &str| {
                kube::SETTINGS
                    .iter()
                    .any(|s| s.key == Some(key))
                    .then(|| "only for api = \"kubernetes\" targets".into())
            };
            entry.check_keys(&rancher::SETTINGS, &TARGET_KEYS, &not_here)?;
            let (rancher, auto_create) =
                rancher::check(&entry, entry.timeout(timeout)?).map_err(|e| entry.located(e))?;
            targets.push(TargetSpec { name: Some(name), rancher, auto_create, sources: chosen });
        }
    }
    Ok(Plan { sources, targets, kube_targets })
}

/// A table with a valid name of its own (letters, digits, - and _), not used by an earlier one of its kind.
fn named<'a, 'b>(
    at: &'a Locator<'a>,
    kind: &str,
    index: usize,
    table: &'a Spanned<Table>,
    earlier: impl Iterator<Item = &'b str>,
) -> Result<Entry<'a>, ConfigError> {
    let mut entry = Entry { at, name: format!("{kind}[{index}]"), values: table.get_ref(), span: table.span() };
    let Some(name) = entry.text("name").map(str::trim) else {
        return Err(entry.error("name", format!("not set; give every {kind} a name")));
    };
    let valid =
        (1..=63).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        return Err(entry.error("name", format!("'{name}' is not a name (letters, digits, - and _)")));
    }
    if earlier.into_iter().any(|known| known == name) {
        return Err(entry.error("name", format!("'{name}' is used by an earlier {kind}")));
    }
    entry.name = format!("{kind} '{name}'");
    Ok(entry)
}

/// One `[[source]]`: the AWS settings, and the keys only the file has.
fn source(entry: Entry<'_>) -> Result<SourceSpec, ConfigError> {
    entry.check_keys(&SOURCE_SETTINGS, &SOURCE_KEYS, &|_| None)?;
    let mut aws = aws::check(&entry, false).map_err(|e| entry.located(e))?;
    if let Some(duration) = entry.text("session_duration") {
        let Some(role) = aws.assume_role.as_mut() else {
            return Err(entry.error("session_duration", "set, but role_arn is not"));
        };
        let duration = bounded(duration, MIN_SESSION, MAX_SESSION).map_err(|p| entry.error("session_duration", p))?;
        role.duration = Some(duration);
    }
    let endpoint = match entry.text("endpoint") {
        Some(endpoint) => Some(check_endpoint(endpoint).map_err(|p| entry.error("endpoint", p))?),
        None => None,
    };
    let mut addresses = Vec::new();
    if let Some(Value::Table(map)) = entry.values.get("addresses").map(Spanned::get_ref) {
        for (host, address) in map {
            let Some(address) = address.as_str() else {
                return Err(entry.error("addresses", format!("'{host}': expected an address (a string)")));
            };
            addresses.push(aws::address_override(host, address).map_err(|p| entry.error("addresses", p))?);
        }
    }
    let public = matches!(entry.values.get("public").map(Spanned::get_ref), Some(Value::Boolean(true)));
    if public && !aws.registry_ids.is_empty() {
        return Err(entry.error("registry_ids", "ECR Public has one registry; leave it out"));
    }
    let name = entry.text("name").unwrap_or_default().trim().to_string();
    Ok(SourceSpec { name, aws, endpoint, addresses, public })
}

/// The sources a target takes tokens from: the named ones, or all.
fn chosen_sources(entry: &Entry<'_>, sources: &[SourceSpec]) -> Result<Vec<usize>, ConfigError> {
    let Some(Value::Array(names)) = entry.values.get("sources").map(Spanned::get_ref) else {
        return Ok((0..sources.len()).collect());
    };
    let mut chosen = Vec::new();
    for wanted in names.iter().filter_map(Value::as_str) {
        match sources.iter().position(|s| s.name == wanted) {
            Some(index) if !chosen.contains(&index) => chosen.push(index),
            Some(_) => {}
            None => {
                let known: Vec<&str> = sources.iter().map(|s| s.name.as_str()).collect();
                let problem = format!("no source is named '{wanted}' (sources: {})", known.join(", "));
                return Err(entry.error("sources", problem));
            }
        }
    }
    if chosen.is_empty() {
        return Err(entry.error("sources", "is empty; name at least one source"));
    }
    Ok(chosen)
}

fn check_endpoint(value: &str) -> Result<String, String> {
    match url::Url::parse(value) {
        Ok(url) if (url.scheme() == "https" || url.scheme() == "http") && url.host_str().is_some() => {
            Ok(value.to_string())
        }
        _ => Err(format!("'{value}' is not an http(s) URL")),
    }
}
