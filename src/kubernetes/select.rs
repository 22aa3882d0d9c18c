//! Which namespaces a target writes to: names and globs (`apps`, `team-*`, `*`), a label selector (left to the
//! API server, only checked here), and exclusions (globs). Pure functions, checked by the configuration.

/// The namespaces a target selects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Names and globs; empty means every namespace (then a label selector is set).
    pub names: Vec<String>,
    /// A label selector, as `kubectl get -l` takes it; the API server applies it.
    pub selector: Option<String>,
    /// Globs of namespaces never written to.
    pub exclude: Vec<String>,
}

impl Selection {
    /// True when the namespace `name` (already matched by the label selector, if any) is selected.
    pub fn selects(&self, name: &str) -> bool {
        let named = self.names.is_empty() || self.names.iter().any(|glob| glob_matches(glob, name));
        named && !self.exclude.iter().any(|glob| glob_matches(glob, name))
    }

    /// The label selector a watch or a list of namespaces should send.
    pub fn label_selector(&self) -> Option<&str> {
        self.selector.as_deref()
    }
}

/// A glob of namespace names: `*` stands for any run of characters, `?` for one.
pub fn glob_matches(glob: &str, name: &str) -> bool {
    let (glob, name) = (glob.as_bytes(), name.as_bytes());
    let (mut g, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if g < glob.len() && (glob[g] == b'?' || glob[g] == name[n]) {
            g += 1;
            n += 1;
        } else if g < glob.len() && glob[g] == b'*' {
            star = Some((g, n));
            g += 1;
        } else if let Some((star_g, star_n)) = star {
            g = star_g + 1;
            n = star_n + 1;
            star = Some((star_g, star_n + 1));
        } else {
            return false;
        }
    }
    glob[g..].iter().all(|&c| c == b'*')
}

/// Checks a namespace name or glob: 1-63 of lower-case letters, digits, `-`, and the wildcards `*` and `?`.
pub fn check_glob(glob: &str) -> Result<(), String> {
    let valid = (1..=63).contains(&glob.len())
        && glob.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '*' | '?'));
    if valid {
        Ok(())
    } else {
        Err(format!("'{glob}' is not a namespace name or glob (lower-case letters, digits, -, * and ?)"))
    }
}

/// Splits a comma-separated list of globs and checks each.
pub fn parse_globs(value: &str) -> Result<Vec<String>, String> {
    let mut globs: Vec<String> = Vec::new();
    for glob in value.split(',').map(str::trim).filter(|g| !g.is_empty()) {
        check_glob(glob)?;
        if !globs.iter().any(|known| known == glob) {
            globs.push(glob.to_string());
        }
    }
    Ok(globs)
}

/// Checks a label selector in the syntax the API server takes: comma-separated requirements, each `key`,
/// `!key`, `key=value`, `key==value`, `key!=value`, `key in (a,b)` or `key notin (a,b)`.
pub fn check_selector(selector: &str) -> Result<(), String> {
    let problem = |detail: &str| format!("'{selector}' is not a label selector: {detail}");
    let mut requirements = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in selector.char_indices() {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => return Err(problem("unbalanced parentheses")),
            ')' => depth -= 1,
            ',' if depth == 0 => {
                requirements.push(&selector[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(problem("unbalanced parentheses"));
    }
    requirements.push(&selector[start..]);
    for requirement in requirements.iter().map(|r| r.trim()) {
        if requirement.is_empty() {
            return Err(problem("an empty requirement"));
        }
        check_requirement(requirement).map_err(|detail| problem(&detail))?;
    }
    Ok(())
}

fn check_requirement(requirement: &str) -> Result<(), String> {
    if let Some(key) = requirement.strip_prefix('!') {
        return check_key(key.trim());
    }
    for operator in ["==", "!=", "="] {
        if let Some((key, value)) = requirement.split_once(operator) {
            check_key(key.trim())?;
            return check_value(value.trim());
        }
    }
    for operator in [" notin ", " in "] {
        if let Some((key, values)) = requirement.split_once(operator) {
            check_key(key.trim())?;
            let values = values.trim();
            let inner = values
                .strip_prefix('(')
                .and_then(|v| v.strip_suffix(')'))
                .ok_or_else(|| format!("'{values}' is not a parenthesised list of values"))?;
            for value in inner.split(',') {
                check_value(value.trim())?;
            }
            return Ok(());
        }
    }
    check_key(requirement)
}

/// A label key: an optional DNS-subdomain prefix and `/`, then a name of 1-63 characters.
fn check_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    let prefix_ok = prefix.is_none_or(is_dns_subdomain);
    if prefix_ok && !name.is_empty() && check_value(name).is_ok() {
        Ok(())
    } else {
        Err(format!("'{key}' is not a label key"))
    }
}

/// A label value: up to 63 of letters, digits, `-`, `_` and `.`, beginning and ending with a letter or digit.
fn check_value(value: &str) -> Result<(), String> {
    let edges_ok = value.is_empty()
        || (value.starts_with(|c: char| c.is_ascii_alphanumeric())
            && value.ends_with(|c: char| c.is_ascii_alphanumeric()));
    let valid = value.len() <= 63
        && edges_ok
        && value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid { Ok(()) } else { Err(format!("'{value}' is not a label value")) }
}

/// A DNS subdomain (RFC 1123), as Secret and ServiceAccount names are.
pub fn is_dns_subdomain(name: &str) -> bool {
    (1..=253).contains(&name.len())
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_shell_globs() {
        assert!(glob_matches("*", "anything"));
        assert!(glob_matches("team-*", "team-a"));
        assert!(glob_matches("team-*", "team-"));
        assert!(!glob_matches("team-*", "teams"));
        assert!(glob_matches("*-prod", "shop-prod"));
        assert!(glob_matches("a*b*c", "axxbyyc"));
        assert!(!glob_matches("a*b*c", "axxbyy"));
        assert!(glob_matches("app?", "app1"));
        assert!(!glob_matches("app?", "app"));
        assert!(glob_matches("apps", "apps"));
        assert!(!glob_matches("apps", "apps2"));
    }

    #[test]
    fn a_selection_takes_names_then_removes_exclusions() {
        let selection = Selection {
            names: vec!["team-*".into(), "apps".into()],
            selector: None,
            exclude: vec!["team-secret*".into()],
        };
        assert!(selection.selects("apps"));
        assert!(selection.selects("team-a"));
        assert!(!selection.selects("team-secret-1"));
        assert!(!selection.selects("kube-system"));
        let everything_but_system =
            Selection { names: vec!["*".into()], selector: None, exclude: vec!["kube-*".into(), "cattle-*".into()] };
        assert!(everything_but_system.selects("default"));
        assert!(!everything_but_system.selects("kube-system"));
        let by_selector_only = Selection { names: vec![], selector: Some("team=a".into()), exclude: vec![] };
        assert!(by_selector_only.selects("whatever-the-server-sent"));
    }

    #[test]
    fn bad_globs_are_named() {
        assert_eq!(parse_globs(" apps, team-*,apps,").unwrap(), vec!["apps", "team-*"]);
        for bad in ["Team", "team_a", "a/b", "x".repeat(64).as_str(), "app[1]"] {
            assert!(parse_globs(bad).unwrap_err().contains(bad), "{bad}");
        }
    }

    #[test]
    fn label_selectors_in_every_form_are_accepted_and_nonsense_is_not() {
        for good in [
            "team=a",
            "team==a",
            "team!=a",
            "team",
            "!team",
            "env in (prod, staging),tier notin (db)",
            "example.com/team=a,app.kubernetes.io/part-of",
            "team=",
        ] {
            assert_eq!(check_selector(good), Ok(()), "{good}");
        }
        for bad in ["team=a b", "=a", "team in prod", "team in (a", "team=a,,x=y", "Team/x=y", "a=b)"] {
            assert!(check_selector(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn secret_names_are_dns_subdomains() {
        assert!(is_dns_subdomain("ecr-credentials"));
        assert!(is_dns_subdomain("ecr.pull"));
        assert!(!is_dns_subdomain("ECR"));
        assert!(!is_dns_subdomain("-ecr"));
        assert!(!is_dns_subdomain(""));
    }
}
