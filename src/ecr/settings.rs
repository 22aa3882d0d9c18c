//! AWS's settings: the region, the registries, the role to assume; their checks, and where the region comes
//! from when none is given ([`resolve_region`]).

use std::time::Duration;

use crate::secret::Secret;
use crate::setting::{Given, Kind, Setting, SettingError, invalid};

pub const REGION: Setting = Setting {
    var: "AWS_REGION",
    flag: "aws-region",
    key: Some("region"),
    value_name: "REGION",
    help: "AWS region of the ECR registries. Falls back to AWS_DEFAULT_REGION, then to the region of the AWS profile.",
    kind: Kind::Text,
};
pub const REGISTRY_IDS: Setting = Setting {
    var: "AWS_ECR_REGISTRY_IDS",
    flag: "aws-ecr-registry-ids",
    key: Some("registry_ids"),
    value_name: "IDS",
    help: "Comma-separated 12-digit AWS account ids whose registries to refresh (one token each). Empty: the registry of the account the credentials belong to.",
    kind: Kind::List,
};
pub const ROLE_ARN: Setting = Setting {
    var: "AWS_ROLE_ARN",
    flag: "aws-role-arn",
    key: Some("role_arn"),
    value_name: "ARN",
    help: "IAM role to assume (STS AssumeRole) on top of the default credential chain before calling ECR. When AWS_WEB_IDENTITY_TOKEN_FILE is set, this is the web identity role instead and is not assumed twice.",
    kind: Kind::Text,
};
pub const EXTERNAL_ID: Setting = Setting {
    var: "AWS_ROLE_EXTERNAL_ID",
    flag: "aws-role-external-id",
    key: Some("external_id"),
    value_name: "ID",
    help: "ExternalId to present when assuming AWS_ROLE_ARN (required by most third-party trust policies). As a flag it is visible to every local user (/proc/PID/cmdline): prefer the variable or AWS_ROLE_EXTERNAL_ID_FILE.",
    kind: Kind::Secret,
};
pub const EXTERNAL_ID_FILE: Setting = Setting {
    var: "AWS_ROLE_EXTERNAL_ID_FILE",
    flag: "aws-role-external-id-file",
    key: Some("external_id_file"),
    value_name: "PATH",
    help: "File holding the ExternalId (instead of AWS_ROLE_EXTERNAL_ID).",
    kind: Kind::Path,
};
pub const SESSION_NAME: Setting = Setting {
    var: "AWS_ROLE_SESSION_NAME",
    flag: "aws-role-session-name",
    key: Some("session_name"),
    value_name: "NAME",
    help: "Session name used when assuming AWS_ROLE_ARN (shows up in CloudTrail).",
    kind: Kind::Text,
};
/// In the file, a source's `addresses` table.
pub const ADDRESS_MAP: Setting = Setting {
    var: "REGISTRY_ADDRESS_MAP",
    flag: "registry-address-map",
    key: None,
    value_name: "MAP",
    help: "Addresses under which Rancher knows ECR registries, when they differ from the ECR host (a reverse proxy or a custom domain in front of ECR): comma-separated ECR_HOST=ADDRESS pairs.",
    kind: Kind::Text,
};
/// In the file, a source of its own with `public = true`.
pub const PUBLIC: Setting = Setting {
    var: "ECR_PUBLIC",
    flag: "ecr-public",
    key: None,
    value_name: "BOOL",
    help: "Also keep an ECR Public (public.ecr.aws) credential fresh: true or false. Its token comes from the ecr-public API in us-east-1, whatever AWS_REGION says; authenticated pulls have higher rate limits.",
    kind: Kind::Bool,
};

/// The settings of a source of ECR tokens, in the order `--help` shows them.
pub const SETTINGS: [&Setting; 8] =
    [&REGION, &REGISTRY_IDS, &ROLE_ARN, &EXTERNAL_ID, &EXTERNAL_ID_FILE, &SESSION_NAME, &ADDRESS_MAP, &PUBLIC];

/// The host of ECR Public.
pub const PUBLIC_HOST: &str = "public.ecr.aws";
/// ECR Public hands out tokens only in this region.
pub const PUBLIC_REGION: &str = "us-east-1";

pub const DEFAULT_SESSION_NAME: &str = "rancher-ecr-credentials";

#[derive(Debug)]
pub struct AwsSettings {
    /// From AWS_REGION; `None` leaves the region to AWS_DEFAULT_REGION or the profile (see [`resolve_region`]).
    pub region: Option<String>,
    pub registry_ids: Vec<String>,
    pub assume_role: Option<AssumeRole>,
}

#[derive(Debug, Clone)]
pub struct AssumeRole {
    pub role_arn: String,
    pub external_id: Option<Secret>,
    pub session_name: String,
    /// How long the role's temporary credentials last (STS DurationSeconds); the SDK's default when `None`.
    pub duration: Option<Duration>,
}

/// Checks one source's settings (the address map aside). `web_identity`: AWS_ROLE_ARN belongs to the web
/// identity provider of the default chain and is not assumed again.
pub fn check(given: &dyn Given, web_identity: bool) -> Result<AwsSettings, SettingError> {
    let region = given.value(&REGION).map(|r| parse_region(&r)).transpose()?;
    let registry_ids = parse_registry_ids(&given.list(&REGISTRY_IDS))?;
    let session_name = match given.value(&SESSION_NAME) {
        Some(name) => parse_session_name(&name)?,
        None => DEFAULT_SESSION_NAME.to_string(),
    };
    let external_id = given.secret(&EXTERNAL_ID, &EXTERNAL_ID_FILE)?;
    let assume_role = match given.value(&ROLE_ARN) {
        Some(arn) => {
            parse_role_arn(&arn)?;
            if web_identity {
                if external_id.is_some() {
                    return Err(invalid(
                        &EXTERNAL_ID,
                        format!(
                            "cannot be used with AWS_WEB_IDENTITY_TOKEN_FILE: {} is then the web identity role",
                            given.name(&ROLE_ARN)
                        ),
                    ));
                }
                None
            } else {
                Some(AssumeRole { role_arn: arn, external_id, session_name, duration: None })
            }
        }
        None if external_id.is_some() => {
            return Err(invalid(
                &EXTERNAL_ID,
                format!("set, but {} is not; the ExternalId belongs to a role", given.name(&ROLE_ARN)),
            ));
        }
        None => None,
    };
    Ok(AwsSettings { region, registry_ids, assume_role })
}

fn parse_region(value: &str) -> Result<String, SettingError> {
    let valid = value.len() <= 32
        && value.contains('-')
        && value.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !value.starts_with('-')
        && !value.ends_with('-');
    if valid {
        Ok(value.to_string())
    } else {
        Err(invalid(&REGION, format!("'{value}' is not an AWS region name (e.g. us-east-1)")))
    }
}

fn parse_registry_ids(ids: &[String]) -> Result<Vec<String>, SettingError> {
    let mut kept: Vec<String> = Vec::new();
    for id in ids {
        if id.len() != 12 || !id.chars().all(|c| c.is_ascii_digit()) {
            return Err(invalid(&REGISTRY_IDS, format!("'{id}' is not a 12-digit AWS account id")));
        }
        if !kept.contains(id) {
            kept.push(id.clone());
        }
    }
    Ok(kept)
}

/// `arn:<partition>:iam::<12-digit account>:role/<path and name>`.
fn parse_role_arn(value: &str) -> Result<(), SettingError> {
    let problem =
        || invalid(&ROLE_ARN, format!("'{value}' is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)"));
    let parts: Vec<&str> = value.splitn(6, ':').collect();
    let [arn, partition, service, region, account, resource] = parts[..] else {
        return Err(problem());
    };
    let account_ok = account.len() == 12 && account.chars().all(|c| c.is_ascii_digit());
    let role_ok = resource.strip_prefix("role/").is_some_and(|name| !name.is_empty());
    if arn == "arn" && partition.starts_with("aws") && service == "iam" && region.is_empty() && account_ok && role_ok {
        Ok(())
    } else {
        Err(problem())
    }
}

/// STS allows 2-64 characters of `[\w+=,.@-]`.
fn parse_session_name(value: &str) -> Result<String, SettingError> {
    let valid =
        (2..=64).contains(&value.len()) && value.chars().all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c));
    if valid {
        Ok(value.to_string())
    } else {
        Err(invalid(
            &SESSION_NAME,
            format!("'{value}' is not a valid session name (2-64 of letters, digits and _+=,.@-)"),
        ))
    }
}

/// `ECR_HOST=ADDRESS,…`: the address the targets store for an ECR registry, when it is not the ECR host itself.
pub fn address_map(given: &dyn Given) -> Result<Vec<(String, String)>, SettingError> {
    let mut map: Vec<(String, String)> = Vec::new();
    for pair in given.list(&ADDRESS_MAP) {
        let Some((ecr_host, address)) = pair.split_once('=') else {
            return Err(invalid(&ADDRESS_MAP, format!("'{pair}' is not ECR_HOST=ADDRESS")));
        };
        map.push(address_override(ecr_host, address).map_err(|problem| invalid(&ADDRESS_MAP, problem))?);
    }
    Ok(map)
}

/// One checked override: both sides normalised as registry addresses are compared.
pub fn address_override(ecr_host: &str, address: &str) -> Result<(String, String), String> {
    let host = crate::address::normalize(ecr_host.trim())
        .filter(|h| h.contains(".dkr.ecr."))
        .ok_or_else(|| format!("'{ecr_host}' is not an ECR registry host (ACCOUNT.dkr.ecr.REGION.amazonaws.com)"))?;
    let alias = crate::address::normalize(address.trim())
        .ok_or_else(|| format!("'{address}' is not a registry address (host[:port])"))?;
    Ok((host, alias))
}

/// The region of a source: ECR Public's (`public`) is always us-east-1, where it hands out tokens; otherwise
/// `AWS_REGION` (already in `settings`), then `AWS_DEFAULT_REGION`, then the AWS profile. Reads the environment
/// and files only, never the network, so a missing region is a configuration error at start-up.
pub async fn resolve_region(settings: &AwsSettings, public: bool) -> Result<String, SettingError> {
    use aws_config::meta::region::ProvideRegion;
    if public {
        return Ok(PUBLIC_REGION.to_string());
    }
    if let Some(region) = &settings.region {
        return Ok(region.clone());
    }
    let from_env = aws_config::environment::EnvironmentVariableRegionProvider::new().region().await;
    let region = match from_env {
        Some(region) => Some(region),
        None => aws_config::profile::ProfileFileRegionProvider::new().region().await,
    };
    region.map(|r| r.to_string()).filter(|r| !r.trim().is_empty()).ok_or_else(|| {
        invalid(&REGION, "not set; set AWS_REGION (or AWS_DEFAULT_REGION, or a region in the AWS profile)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::setting::Values;

    #[tokio::test]
    async fn a_public_source_needs_no_region() {
        let settings = AwsSettings { region: None, registry_ids: Vec::new(), assume_role: None };
        assert_eq!(resolve_region(&settings, true).await.unwrap(), "us-east-1");
        let settings = AwsSettings { region: Some("eu-west-1".into()), ..settings };
        assert_eq!(resolve_region(&settings, true).await.unwrap(), "us-east-1", "ECR Public is only in us-east-1");
        assert_eq!(resolve_region(&settings, false).await.unwrap(), "eu-west-1");
    }

    #[test]
    fn a_problem_names_the_other_setting_as_the_form_spells_it() {
        let err = check(&Values(vec![("AWS_ROLE_EXTERNAL_ID", "x")]), false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "AWS_ROLE_EXTERNAL_ID: set, but AWS_ROLE_ARN is not; the ExternalId belongs to a role"
        );
    }
}
