//! Keeping secrets and hostile text out of what the daemon says: log lines, `/readyz` and `/metrics`.
//!
//! Two guards, because text from outside (a Rancher error message, a proxy's error page, an AWS message) may
//! echo what was sent to it:
//! - [`outside`] cleans one piece of outside text before it is kept in an error or a notice: every known secret
//!   is replaced by `<redacted>`, control characters are escaped (an echoed newline cannot start a log line of
//!   its own), and the length is capped.
//! - [`Redacting`] is the log writer: each formatted log line is searched for the known secrets once more just
//!   before it is written, whatever field it came through.
//!
//! The known secrets are registered as they become known: keys and tokens from the configuration at start,
//! ECR passwords as they are fetched. Each is registered with the forms it travels in: as is, base64 (standard
//! and URL-safe, padded or not) and percent-encoded; a user name and secret pair also as `user:secret` and its
//! base64, which is an HTTP Basic header or an ECR authorization token.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::RwLock;

use base64::Engine as _;

/// What replaces a secret.
pub const REDACTED: &str = "<redacted>";
/// The most characters of one piece of outside text that are kept.
pub const MAX_OUTSIDE_CHARS: usize = 300;
/// Secrets shorter than this are not searched for: they would match ordinary words and numbers.
const MIN_SECRET_LEN: usize = 4;
/// ECR passwords change every few hours: only the newest are kept, so that the list stays short.
const MAX_PASSWORDS: usize = 64;

#[derive(Default)]
struct Known {
    /// Secrets that stay for the life of the process (keys, tokens, ExternalIds), in all their forms.
    fixed: Vec<String>,
    /// ECR passwords, in all their forms, oldest first.
    passwords: VecDeque<Vec<String>>,
}

static KNOWN: RwLock<Known> = RwLock::new(Known { fixed: Vec::new(), passwords: VecDeque::new() });

/// Registers a secret that lives as long as the process: an API key, a token, an ExternalId.
pub fn register(secret: &str) {
    let forms = forms_of(secret);
    let mut known = KNOWN.write().unwrap_or_else(|e| e.into_inner());
    for form in forms {
        if !known.fixed.contains(&form) {
            known.fixed.push(form);
        }
    }
}

/// Registers a user name and secret that travel together (HTTP Basic, an ECR authorization token): the
/// secret, and `user:secret` in all its forms.
pub fn register_pair(user: &str, secret: &str) {
    register(secret);
    register(&format!("{user}:{secret}"));
}

/// Registers an ECR password, with its `AWS:` pair: kept among the newest [`MAX_PASSWORDS`].
pub fn register_password(user: &str, password: &str) {
    let mut forms = forms_of(password);
    forms.extend(forms_of(&format!("{user}:{password}")));
    let mut known = KNOWN.write().unwrap_or_else(|e| e.into_inner());
    if known.passwords.iter().any(|p| p.first() == forms.first()) {
        return;
    }
    if known.passwords.len() == MAX_PASSWORDS {
        known.passwords.pop_front();
    }
    known.passwords.push_back(forms);
}

fn forms_of(secret: &str) -> Vec<String> {
    if secret.len() < MIN_SECRET_LEN {
        return Vec::new();
    }
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let mut forms = vec![secret.to_string()];
    for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
        forms.push(engine.encode(secret));
    }
    forms.push(url::form_urlencoded::byte_serialize(secret.as_bytes()).collect());
    // A JSON string escapes `/` only optionally, but `"` and `\` always.
    forms.push(secret.replace('\\', "\\\\").replace('"', "\\\""));
    // Longest first, so that a form is replaced before a shorter one inside it.
    forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    forms.dedup();
    forms
}

/// `text` with every known secret replaced by [`REDACTED`].
pub fn secrets(text: &str) -> Cow<'_, str> {
    let known = KNOWN.read().unwrap_or_else(|e| e.into_inner());
    let mut out = Cow::Borrowed(text);
    for form in known.fixed.iter().chain(known.passwords.iter().flatten()) {
        if out.contains(form.as_str()) {
            out = Cow::Owned(out.replace(form.as_str(), REDACTED));
        }
    }
    out
}

/// Outside text made fit to log or serve: known secrets redacted, control characters escaped, at most
/// [`MAX_OUTSIDE_CHARS`] characters.
pub fn outside(text: &str) -> String {
    let text = secrets(text);
    let mut out = String::with_capacity(text.len().min(MAX_OUTSIDE_CHARS + 8));
    for (count, c) in text.chars().enumerate() {
        if count == MAX_OUTSIDE_CHARS {
            out.push('…');
            break;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.extend(c.escape_unicode()),
            c => out.push(c),
        }
    }
    out
}

/// An error and its causes as one line of outside text: each cause that adds something, joined with `: `, then
/// cleaned by [`outside`]. Library errors carry text from the other side (a server's words, an address).
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut detail = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !detail.contains(&text) {
            detail.push_str(": ");
            detail.push_str(&text);
        }
        source = cause.source();
    }
    outside(&detail)
}

/// The log writer: standard error, each line searched for known secrets before it is written.
#[derive(Clone, Copy, Default)]
pub struct Redacting;

/// One log line being formatted; written out, redacted, when dropped.
pub struct Line {
    buffer: Vec<u8>,
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Redacting {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        Line { buffer: Vec::with_capacity(256) }
    }
}

impl Write for Line {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.buffer);
        let _ = io::stderr().lock().write_all(secrets(&text).as_bytes());
    }
}

/// A proxy URI as shown in logs: scheme, host and port, never user info.
pub fn proxy_uri(uri: &http::Uri) -> String {
    let scheme = uri.scheme_str().unwrap_or("http");
    let host = uri.host().unwrap_or_default();
    match uri.port_u16() {
        Some(port) => format!("{scheme}://{host}:{port}"),
        None => format!("{scheme}://{host}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_of_a_registered_secret_is_redacted() {
        register_pair("access-key-for-tests", "s3cret-of-the-redact-test/+");
        let basic =
            base64::engine::general_purpose::STANDARD.encode("access-key-for-tests:s3cret-of-the-redact-test/+");
        let text = format!(
            "plain s3cret-of-the-redact-test/+ basic {basic} url {} percent {}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("s3cret-of-the-redact-test/+"),
            "s3cret-of-the-redact-test%2F%2B"
        );
        let cleaned = outside(&text);
        assert!(!cleaned.contains("s3cret"), "{cleaned}");
        assert!(!cleaned.contains(&basic), "{cleaned}");
        assert_eq!(cleaned.matches(REDACTED).count(), 4, "{cleaned}");
    }

    #[test]
    fn ecr_passwords_and_their_authorization_tokens_are_redacted() {
        register_password("AWS", "ecr-password-of-the-redact-test");
        let token = base64::engine::general_purpose::STANDARD.encode("AWS:ecr-password-of-the-redact-test");
        assert_eq!(outside(&format!("token {token}")), format!("token {REDACTED}"));
    }

    #[test]
    fn control_characters_are_escaped_and_length_is_capped() {
        assert_eq!(outside("a\nb\r\tc\u{1b}[31m"), "a\\nb\\r\\tc\\u{1b}[31m");
        let long = "x".repeat(1000);
        let cleaned = outside(&long);
        assert_eq!(cleaned.chars().count(), MAX_OUTSIDE_CHARS + 1);
        assert!(cleaned.ends_with('…'));
    }

    #[test]
    fn an_error_chain_is_one_cleaned_line_without_repeats() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("request failed")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let inner = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused\nby peer");
        assert_eq!(error_chain(&Outer(inner)), "request failed: refused\\nby peer");
    }

    #[test]
    fn short_values_are_not_taken_for_secrets() {
        register("ab");
        assert_eq!(outside("ab cd"), "ab cd");
    }
}
