//! Secrets from the configuration — Rancher keys and tokens, ExternalIds — given directly or read from a file
//! (`*_FILE`, `token_file`, …). A file-backed secret is read again when asked ([`Secret::reload`]): at each
//! refresh and after Rancher answers 401 or 403, so that a rotated Kubernetes Secret takes effect without a
//! restart. A file that becomes unreadable or empty keeps the old value, with an ERROR.
//!
//! Clones share the value: reloading one updates every holder.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use secrecy::{ExposeSecret, SecretString};
use tracing::{error, info};

use crate::redact;

#[derive(Clone)]
pub struct Secret {
    inner: Arc<Inner>,
}

struct Inner {
    /// Where it came from, for log lines: the variable or key of the file (`CATTLE_SECRET_KEY_FILE`).
    setting: String,
    file: Option<PathBuf>,
    value: RwLock<SecretString>,
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Secret {
    /// A secret given as a value; it never changes.
    pub fn fixed(setting: impl Into<String>, value: impl Into<String>) -> Secret {
        Secret::new(setting.into(), None, value.into())
    }

    /// A secret read from `file` now (the caller has checked that it reads and is not empty).
    pub fn from_file(setting: impl Into<String>, file: &Path, value: impl Into<String>) -> Secret {
        Secret::new(setting.into(), Some(file.to_path_buf()), value.into())
    }

    fn new(setting: String, file: Option<PathBuf>, value: String) -> Secret {
        Secret { inner: Arc::new(Inner { setting, file, value: RwLock::new(SecretString::from(value)) }) }
    }

    /// The current value.
    pub fn expose(&self) -> String {
        self.inner.value.read().unwrap_or_else(|e| e.into_inner()).expose_secret().to_string()
    }

    /// Reads the file again, if the secret came from one. Returns true when the value changed; logs that it was
    /// reloaded (never the value). A file that cannot be read or is empty keeps the old value and logs an ERROR.
    pub fn reload(&self) -> bool {
        let Some(file) = &self.inner.file else { return false };
        let setting = &self.inner.setting;
        let fresh = match read_file(file) {
            Ok(fresh) => fresh,
            Err(problem) => {
                error!(setting = %setting, file = %file.display(), problem = %problem,
                    "Cannot read the secret file again; keeping the value read before");
                return false;
            }
        };
        let mut value = self.inner.value.write().unwrap_or_else(|e| e.into_inner());
        if value.expose_secret() == fresh {
            return false;
        }
        redact::register(&fresh);
        *value = SecretString::from(fresh);
        info!(setting = %setting, file = %file.display(), "Secret file changed; reloaded");
        true
    }
}

/// A secret file's content, trimmed; an error when it cannot be read or is empty.
pub fn read_file(file: &Path) -> Result<String, String> {
    let content = std::fs::read_to_string(file).map_err(|e| format!("cannot read '{}': {e}", file.display()))?;
    let content = content.trim();
    if content.is_empty() {
        return Err(format!("'{}' is empty", file.display()));
    }
    Ok(content.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_file_is_reloaded_and_a_broken_one_keeps_the_old_value() {
        let path = std::env::temp_dir().join(format!("secret-test-{}", std::process::id()));
        std::fs::write(&path, "first-value\n").unwrap();
        let secret = Secret::from_file("TEST_FILE", &path, read_file(&path).unwrap());
        let clone = secret.clone();
        assert_eq!(secret.expose(), "first-value");
        assert!(!secret.reload(), "unchanged");

        std::fs::write(&path, "second-value").unwrap();
        assert!(secret.reload());
        assert_eq!(clone.expose(), "second-value", "clones share the value");

        std::fs::write(&path, "  \n").unwrap();
        assert!(!secret.reload());
        assert_eq!(secret.expose(), "second-value", "an empty file keeps the old value");
        std::fs::remove_file(&path).unwrap();
        assert!(!secret.reload());
        assert_eq!(secret.expose(), "second-value", "a missing file keeps the old value");
        assert_eq!(format!("{secret:?}"), "[redacted]");
    }

    #[test]
    fn a_fixed_secret_never_changes() {
        let secret = Secret::fixed("TEST", "value");
        assert!(!secret.reload());
        assert_eq!(secret.expose(), "value");
    }
}
