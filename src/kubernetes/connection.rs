//! How a Kubernetes target reaches its API server: the kubeconfig (read and checked at start, no call made) or
//! the pod's ServiceAccount, and the clients built from it with their own timeouts.

use std::path::PathBuf;
use std::time::Duration;

use crate::setting::{Given, Kind, Setting, SettingError, invalid, non_empty};

pub const CONTEXT: Setting = Setting::new(
    "KUBERNETES_CONTEXT",
    "kubernetes-context",
    "context",
    "NAME",
    Kind::Text,
    "Kubernetes target: the kubeconfig context to use (default: its current context).",
);
pub const KUBECONFIG: Setting = Setting::new(
    "KUBECONFIG",
    "kubeconfig",
    "kubeconfig",
    "PATHS",
    Kind::Text,
    "Kubernetes target: kubeconfig file(s), colon-separated. Unset: the pod's ServiceAccount inside a cluster, else ~/.kube/config.",
);

/// How the daemon reaches a Kubernetes API server.
#[derive(Debug)]
pub enum KubeConnection {
    /// A kubeconfig (read and checked), with the context to use.
    Kubeconfig { kubeconfig: KubeconfigFile, files: String, context: String, server: String },
    /// Inside a pod: its ServiceAccount token and CA, and KUBERNETES_SERVICE_HOST.
    InCluster { server: String },
}

impl KubeConnection {
    /// The API server's URL, as the kubeconfig or the pod's environment gives it.
    pub fn server(&self) -> &str {
        match self {
            KubeConnection::Kubeconfig { server, .. } | KubeConnection::InCluster { server } => server,
        }
    }
}

/// A parsed kubeconfig. Its `Debug` hides the content: it holds tokens and keys.
pub struct KubeconfigFile(pub Box<kube::config::Kubeconfig>);

impl std::fmt::Debug for KubeconfigFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kubeconfig([redacted])")
    }
}

/// Reads the kubeconfig (KUBECONFIG, else the pod's ServiceAccount, else ~/.kube/config) and checks the context.
pub fn read(given: &dyn Given) -> Result<KubeConnection, SettingError> {
    let (files, context) = (given.value(&KUBECONFIG), given.value(&CONTEXT));
    let (kubeconfig_name, context_name) = (given.name(&KUBECONFIG), given.name(&CONTEXT));
    let files = match files {
        Some(files) => files,
        None => {
            if let (Some(host), Some(port)) =
                (env_value("KUBERNETES_SERVICE_HOST"), env_value("KUBERNETES_SERVICE_PORT"))
            {
                if context.is_some() {
                    return Err(invalid(
                        &CONTEXT,
                        format!(
                            "set, but {kubeconfig_name} is not: in a pod the daemon uses its ServiceAccount, which has no contexts"
                        ),
                    ));
                }
                let host = if host.contains(':') { format!("[{host}]") } else { host };
                return Ok(KubeConnection::InCluster { server: format!("https://{host}:{port}") });
            }
            let home = env_value("HOME").map(PathBuf::from);
            match home.map(|h| h.join(".kube").join("config")).filter(|p| p.exists()) {
                Some(path) => path.display().to_string(),
                None => {
                    return Err(invalid(
                        &KUBECONFIG,
                        "not set, not in a pod (no KUBERNETES_SERVICE_HOST), and there is no ~/.kube/config",
                    ));
                }
            }
        }
    };
    let mut merged: Option<kube::config::Kubeconfig> = None;
    for file in files.split(':').filter(|f| !f.is_empty()) {
        let config = kube::config::Kubeconfig::read_from(file).map_err(|e| match e {
            kube::config::KubeconfigError::ReadConfig(io, _) => {
                invalid(&KUBECONFIG, format!("cannot read '{file}': {io}"))
            }
            // The parser's message may quote the file, which holds tokens: only say where.
            _ => invalid(&KUBECONFIG, format!("'{file}' is not a kubeconfig (YAML with clusters, contexts and users)")),
        })?;
        merged = Some(match merged {
            None => config,
            Some(known) => known
                .merge(config)
                .map_err(|_| invalid(&KUBECONFIG, format!("'{file}' cannot be merged with the files before it")))?,
        });
    }
    let kubeconfig = merged.ok_or_else(|| invalid(&KUBECONFIG, "names no file"))?;
    let names: Vec<&str> = kubeconfig.contexts.iter().map(|c| c.name.as_str()).collect();
    let listed = if names.is_empty() { "none".to_string() } else { names.join(", ") };
    let chosen = match (&context, &kubeconfig.current_context) {
        (Some(context), _) => {
            if !names.contains(&context.as_str()) {
                return Err(invalid(
                    &CONTEXT,
                    format!("'{context}' is not a context of {kubeconfig_name} (contexts: {listed})"),
                ));
            }
            context.clone()
        }
        (None, Some(current)) if names.contains(&current.as_str()) => current.clone(),
        (None, Some(current)) => {
            return Err(invalid(
                &KUBECONFIG,
                format!("its current-context '{current}' is not one of its contexts ({listed}); set {context_name}"),
            ));
        }
        (None, None) => {
            return Err(invalid(
                &KUBECONFIG,
                format!("names no current-context; set {context_name} (contexts: {listed})"),
            ));
        }
    };
    let cluster_name = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == chosen)
        .and_then(|c| c.context.as_ref())
        .map(|c| c.cluster.clone())
        .unwrap_or_default();
    let server = kubeconfig
        .clusters
        .iter()
        .find(|c| c.name == cluster_name)
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.server.clone())
        .filter(|s| url::Url::parse(s).is_ok_and(|u| u.scheme() == "https" || u.scheme() == "http"))
        .ok_or_else(|| {
            invalid(
                &KUBECONFIG,
                format!("context '{chosen}' names cluster '{cluster_name}', which has no http(s) server URL"),
            )
        })?;
    Ok(KubeConnection::Kubeconfig { kubeconfig: KubeconfigFile(Box::new(kubeconfig)), files, context: chosen, server })
}

fn env_value(name: &str) -> Option<String> {
    non_empty(std::env::var(name).ok())
}

/// Connect timeout of every Kubernetes call (the per-call limit, `timeout`, bounds it further).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The Kubernetes clients of a target: one for ordinary calls, bounded by `timeout`, and one for watches,
/// which the API server holds open for minutes. Makes no call.
pub async fn clients(connection: &KubeConnection, timeout: Duration) -> Result<(kube::Client, kube::Client), String> {
    let mut config = match connection {
        KubeConnection::Kubeconfig { kubeconfig, files, context, .. } => {
            let options = kube::config::KubeConfigOptions { context: Some(context.clone()), ..Default::default() };
            let mut config = kube::Config::from_custom_kubeconfig((*kubeconfig.0).clone(), &options)
                .await
                .map_err(|e| format!("KUBECONFIG: '{files}', context '{context}': {}", one_line(&e.to_string())))?;
            // kube-rs takes HTTPS_PROXY from the environment when the kubeconfig names no proxy-url; those
            // variables are for AWS and Rancher here, and the API server is reached directly.
            if !names_proxy(&kubeconfig.0, context) {
                config.proxy_url = None;
            }
            config
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

/// Whether the kubeconfig's cluster of `context` has a `proxy-url` of its own.
fn names_proxy(kubeconfig: &kube::config::Kubeconfig, context: &str) -> bool {
    let cluster = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == context)
        .and_then(|c| c.context.as_ref())
        .map(|c| c.cluster.as_str());
    kubeconfig
        .clusters
        .iter()
        .filter(|c| Some(c.name.as_str()) == cluster)
        .any(|c| c.cluster.as_ref().is_some_and(|c| c.proxy_url.as_ref().is_some_and(|p| !p.is_empty())))
}

const WATCH_READ_TIMEOUT: Duration = Duration::from_secs(330);

fn one_line(text: &str) -> String {
    crate::redact::outside(text)
}
