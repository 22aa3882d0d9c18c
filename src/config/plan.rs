//! The plan: where ECR tokens come from (sources) and which targets they go to, as both forms of the
//! configuration describe it ([`super::env`](mod@super::env), [`super::file`](mod@super::file)); and the plan in words for `--check-config`.

use std::fmt::Write as _;

use crate::ecr::AwsSettings;
use crate::kubernetes::{KubeConnection, KubernetesSettings, Mode};
use crate::rancher::endpoint::Endpoint;
use crate::rancher::settings::{RancherAuth, RancherSettings};

/// Where tokens come from and where they go.
#[derive(Debug)]
pub struct Plan {
    pub sources: Vec<SourceSpec>,
    /// Rancher targets (1.x or 2.x through Rancher's own APIs).
    pub targets: Vec<TargetSpec>,
    /// Kubernetes targets (Secrets in namespaces, or Rancher 2.12+ project-scoped secrets).
    pub kube_targets: Vec<KubeTargetSpec>,
}

/// One Kubernetes API server, what to write there, and the sources it takes tokens from.
#[derive(Debug)]
pub struct KubeTargetSpec {
    /// The file's name for it; the API server's URL names it otherwise.
    pub name: Option<String>,
    pub kubernetes: KubernetesSettings,
    /// Indexes into [`Plan::sources`].
    pub sources: Vec<usize>,
}

/// One way to obtain ECR tokens: a region, with the default credentials or a role assumed on top of them.
#[derive(Debug)]
pub struct SourceSpec {
    pub name: String,
    pub aws: AwsSettings,
    /// The ECR endpoint (a VPC endpoint, say); `AWS_ENDPOINT_URL_ECR` / `AWS_ENDPOINT_URL` when `None`.
    pub endpoint: Option<String>,
    /// ECR host → the address Rancher stores for it, when the two differ (a proxy in front of ECR).
    pub addresses: Vec<(String, String)>,
    /// ECR Public (`public.ecr.aws`, token from `ecr-public` in us-east-1) instead of private registries.
    pub public: bool,
}

/// One Rancher endpoint (a 1.x environment, or 2.x projects) and the sources it takes tokens from.
#[derive(Debug)]
pub struct TargetSpec {
    /// The file's name for it; the Rancher URL names it otherwise.
    pub name: Option<String>,
    pub rancher: RancherSettings,
    pub auto_create: bool,
    /// Indexes into [`Plan::sources`].
    pub sources: Vec<usize>,
}

/// The registry hosts a source will get tokens for, as far as they are known without calling AWS.
pub fn expected_hosts(source: &SourceSpec, region: &str) -> Vec<String> {
    if source.public {
        return vec![format!("{} (ECR Public, token from {})", crate::ecr::PUBLIC_HOST, crate::ecr::PUBLIC_REGION)];
    }
    source
        .aws
        .registry_ids
        .iter()
        .map(|id| {
            let host = format!("{id}.dkr.ecr.{region}.amazonaws.com");
            match source.addresses.iter().find(|(ecr, _)| *ecr == host) {
                Some((_, alias)) => format!("{host} (in Rancher as {alias})"),
                None => host,
            }
        })
        .collect()
}

/// The plan in words, for `--check-config`: no secret, only whether and where each is set.
pub fn describe(plan: &Plan, regions: &[String], target_names: &[String]) -> String {
    let mut out = String::new();
    for (source, region) in plan.sources.iter().zip(regions) {
        let _ = writeln!(out, "source {}: region {region}", source.name);
        match &source.aws.assume_role {
            Some(role) => {
                let external = if role.external_id.is_some() { ", with an ExternalId" } else { "" };
                let _ = writeln!(
                    out,
                    "  credentials: the default AWS chain, then role {} (session {}{external})",
                    role.role_arn, role.session_name
                );
            }
            None => {
                let _ = writeln!(out, "  credentials: the default AWS chain");
            }
        }
        if let Some(endpoint) = &source.endpoint {
            let _ = writeln!(out, "  ECR endpoint: {endpoint}");
        }
        let hosts = expected_hosts(source, region);
        if hosts.is_empty() {
            let _ =
                writeln!(out, "  registries: the caller's own account in {region} (host known after the first call)");
        }
        for host in hosts {
            let _ = writeln!(out, "  registry: {host}");
        }
        for (ecr, alias) in &source.addresses {
            let _ = writeln!(out, "  address override: {ecr} -> {alias}");
        }
    }
    for (target, name) in plan.targets.iter().zip(target_names) {
        let _ = writeln!(out, "target {name}:");
        let api = match &target.rancher.endpoint {
            Endpoint::Cattle(_) => "Rancher 1.x (Cattle)",
            Endpoint::V3 { .. } => "Rancher 2 (/v3)",
            Endpoint::Unversioned { .. } => "probed at start (Rancher 1.x or 2)",
        };
        let _ = writeln!(out, "  API: {api}");
        let auth = match &target.rancher.auth {
            RancherAuth::None => "none",
            RancherAuth::Keys(_) => "access key and secret key (set)",
            RancherAuth::Token(_) => "bearer token (set)",
        };
        let _ = writeln!(out, "  authentication: {auth}");
        if !target.rancher.projects.is_empty() {
            let _ = writeln!(out, "  projects: {}", target.rancher.projects.join(", "));
        }
        if let Some(cluster) = &target.rancher.cluster {
            let _ = writeln!(out, "  cluster: {cluster}");
        }
        let every_project = match &target.rancher.endpoint {
            Endpoint::V3 { project: None, .. } | Endpoint::Unversioned { .. } => target.rancher.projects.is_empty(),
            _ => false,
        };
        if every_project {
            let every = humantime::format_duration(target.rancher.projects_check_interval);
            let _ = writeln!(out, "  new projects: looked for every {every} (Rancher 2)");
        }
        if target.rancher.tls.ca_bundle.is_some() {
            let _ = writeln!(out, "  TLS: extra CA bundle");
        }
        if target.rancher.tls.insecure_skip_verify {
            let _ = writeln!(out, "  TLS: certificate NOT verified (insecure)");
        }
        let names: Vec<&str> = target.sources.iter().map(|&i| plan.sources[i].name.as_str()).collect();
        let _ = writeln!(out, "  sources: {}", names.join(", "));
        let _ = writeln!(out, "  auto create: {}", if target.auto_create { "yes" } else { "no" });
    }
    for (target, name) in plan.kube_targets.iter().zip(target_names.iter().skip(plan.targets.len())) {
        let _ = writeln!(out, "target {name}:");
        let _ = writeln!(out, "  API: Kubernetes");
        match &target.kubernetes.connection {
            KubeConnection::Kubeconfig { files, context, server, .. } => {
                let _ = writeln!(out, "  kubeconfig: {files} (context {context})");
                let _ = writeln!(out, "  server: {server}");
            }
            KubeConnection::InCluster { server } => {
                let _ = writeln!(out, "  connection: the pod's ServiceAccount (in-cluster)");
                let _ = writeln!(out, "  server: {server}");
            }
        }
        let settings = &target.kubernetes.target;
        match &settings.mode {
            Mode::Namespaces(selection) => {
                let names = if selection.names.is_empty() { "all".to_string() } else { selection.names.join(", ") };
                let _ = writeln!(out, "  mode: a Secret in each selected namespace");
                let _ = writeln!(out, "  namespaces: {names}");
                if let Some(selector) = &selection.selector {
                    let _ = writeln!(out, "  namespace selector: {selector}");
                }
                if !selection.exclude.is_empty() {
                    let _ = writeln!(out, "  excluded namespaces: {}", selection.exclude.join(", "));
                }
                if !settings.service_accounts.is_empty() {
                    let _ = writeln!(out, "  service accounts: {}", settings.service_accounts.join(", "));
                }
            }
            Mode::Projects(projects) => {
                let _ = writeln!(
                    out,
                    "  mode: Rancher project-scoped secrets (Rancher copies them into the projects' namespaces)"
                );
                let shown: Vec<String> = projects
                    .iter()
                    .map(|p| match (p.as_str(), p.strip_suffix(":*")) {
                        ("*", _) => "* (every project of every cluster, watched)".to_string(),
                        (_, Some(cluster)) => format!("{p} (every project of cluster {cluster}, watched)"),
                        _ => p.clone(),
                    })
                    .collect();
                let _ = writeln!(out, "  projects: {}", shown.join(", "));
            }
        }
        let _ = writeln!(out, "  secret name: {}", settings.secret_name);
        let _ = writeln!(out, "  adopt foreign secrets: {}", if settings.adopt { "yes" } else { "no" });
        let _ = writeln!(out, "  events: {}", if settings.events { "yes" } else { "no" });
        if settings.diagnose_pulls {
            let _ = writeln!(out, "  diagnose failed pulls: yes (Warning Events on Pods)");
        }
        let names: Vec<&str> = target.sources.iter().map(|&i| plan.sources[i].name.as_str()).collect();
        let _ = writeln!(out, "  sources: {}", names.join(", "));
    }
    out
}
