//! The environment form: environment variables (or their flags) describe one source feeding one Rancher target
//! (CATTLE_URL), one Kubernetes target (KUBERNETES_NAMESPACES, KUBERNETES_NAMESPACE_SELECTOR or
//! RANCHER_PROJECT_SECRETS), or both. Errors name the variables.

use std::time::Duration;

use clap::ArgMatches;

use super::error::ConfigError;
use super::plan::{KubeTargetSpec, Plan, SourceSpec, TargetSpec};
use crate::ecr::{self, AwsSettings};
use crate::kubernetes::settings as kube;
use crate::rancher::settings as rancher;
use crate::setting::{Form, Given, Setting, non_empty};

/// The values of the target and source settings, as the command line and the environment give them.
pub struct Env<'a>(pub &'a ArgMatches);

impl Given for Env<'_> {
    fn form(&self) -> Form {
        Form::Env
    }

    fn value(&self, setting: &Setting) -> Option<String> {
        non_empty(self.0.try_get_one::<String>(setting.var).ok().flatten().cloned())
    }
}

/// Read by the AWS SDK and kubectl too, so often set for other reasons: not warned about beside a file.
const ALSO_READ_ELSEWHERE: [&Setting; 3] = [&ecr::settings::REGION, &ecr::settings::ROLE_ARN, &kube::KUBECONFIG];

/// The target and source settings given in the environment or as flags, which a configuration file replaces.
pub fn replaced_by_file(env: &Env<'_>) -> Vec<&'static str> {
    super::cli::settings()
        .filter(|s| !ALSO_READ_ELSEWHERE.contains(s) && env.value(s).is_some())
        .map(|s| s.var)
        .collect()
}

/// The plan of the environment form. `timeout` bounds each call to a target.
pub fn plan(env: &Env<'_>, web_identity: bool, timeout: Duration) -> Result<Plan, ConfigError> {
    let kube_selected = kube::SELECTING.iter().any(|s| env.value(s).is_some());
    let rancher_selected = env.value(&rancher::URL).is_some() || !kube_selected;
    if !kube_selected {
        let stray = kube::SETTINGS.into_iter().filter(|s| !kube::SELECTING.contains(s) && **s != kube::KUBECONFIG);
        if let Some(setting) = stray.into_iter().find(|s| env.value(s).is_some()) {
            return Err(ConfigError {
                setting: kube::NAMESPACES.var.into(),
                problem: format!(
                    "not set, but {} is; set KUBERNETES_NAMESPACES, KUBERNETES_NAMESPACE_SELECTOR or RANCHER_PROJECT_SECRETS to select the Kubernetes target",
                    setting.var
                ),
            });
        }
    }
    let public = env.flag(&ecr::settings::PUBLIC)?;
    let aws = ecr::settings::check(env, web_identity)?;
    let addresses = ecr::settings::address_map(env)?;
    let mut sources = vec![SourceSpec { name: "default".into(), aws, endpoint: None, addresses, public: false }];
    if public {
        // The same credentials, asking ecr-public: its one registry, public.ecr.aws.
        let first = &sources[0].aws;
        let aws = AwsSettings {
            region: first.region.clone(),
            registry_ids: Vec::new(),
            assume_role: first.assume_role.clone(),
        };
        sources.push(SourceSpec { name: "public".into(), aws, endpoint: None, addresses: Vec::new(), public: true });
    }
    let all: Vec<usize> = (0..sources.len()).collect();
    let mut targets = Vec::new();
    if rancher_selected {
        let (rancher, auto_create) = rancher::check(env, timeout)?;
        targets.push(TargetSpec { name: None, rancher, auto_create, sources: all.clone() });
    }
    let mut kube_targets = Vec::new();
    if kube_selected {
        let kubernetes = kube::check(env, timeout)?;
        kube_targets.push(KubeTargetSpec { name: None, kubernetes, sources: all });
    }
    Ok(Plan { sources, targets, kube_targets })
}
