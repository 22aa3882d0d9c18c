//! How a Kubernetes target is reached and what shapes it: its settings ([`Settings`], [`Mode`]).

use std::time::Duration;

use super::select::Selection;
use crate::config::KubeConnection;

/// What a Kubernetes target writes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// One Secret in each selected namespace.
    Namespaces(Selection),
    /// Rancher 2.12+ project-scoped secrets: project ids `c-xxxxx:p-xxxxx` (cluster namespace : project name).
    Projects(Vec<String>),
}

/// The settings that shape a Kubernetes target (the connection is made by the caller).
#[derive(Debug, Clone)]
pub struct Settings {
    pub mode: Mode,
    pub secret_name: String,
    /// ServiceAccounts whose `imagePullSecrets` get the Secret; `*` for all.
    pub service_accounts: Vec<String>,
    /// Take over an existing Secret of that name that is not ours.
    pub adopt: bool,
    /// Time limit of each call (watches excepted).
    pub timeout: Duration,
}

/// Connect timeout of every Kubernetes call (the per-call limit, `timeout`, bounds it further).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The Kubernetes clients of a target: one for ordinary calls, bounded by `timeout`, and one for watches,
/// which the API server holds open for minutes. Makes no call.
pub async fn clients(connection: &KubeConnection, timeout: Duration) -> Result<(kube::Client, kube::Client), String> {
    let mut config = match connection {
        KubeConnection::Kubeconfig { kubeconfig, files, context, .. } => {
            let options = kube::config::KubeConfigOptions { context: Some(context.clone()), ..Default::default() };
            kube::Config::from_custom_kubeconfig((*kubeconfig.0).clone(), &options)
                .await
                .map_err(|e| format!("KUBECONFIG: '{files}', context '{context}': {}", one_line(&e.to_string())))?
        }
        KubeConnection::InCluster { .. } => kube::Config::incluster().map_err(|e| {
            format!("KUBECONFIG: not set, and the pod's ServiceAccount cannot be used: {}", one_line(&e.to_string()))
        })?,
    };
    config.connect_timeout = Some(CONNECT_TIMEOUT.min(timeout));
    config.read_timeout = Some(timeout);
    let client =
        kube::Client::try_from(config.clone()).map_err(|e| format!("KUBECONFIG: {}", one_line(&e.to_string())))?;
    // Watches last up to 290 s (kube's default timeoutSeconds) with no byte in between: only bound them above that.
    config.read_timeout = Some(WATCH_READ_TIMEOUT);
    let watch_client =
        kube::Client::try_from(config).map_err(|e| format!("KUBECONFIG: {}", one_line(&e.to_string())))?;
    Ok((client, watch_client))
}

const WATCH_READ_TIMEOUT: Duration = Duration::from_secs(330);

fn one_line(text: &str) -> String {
    crate::redact::outside(text)
}
