//! How a sync reads the Secrets it judges: one cluster-wide LIST by `fieldSelector=metadata.name=<name>` (paged),
//! which RBAC allows with `resourceNames`, or, where that LIST is forbidden (RBAC bound per namespace), one GET
//! per namespace. Either way it is what the server holds now that decides; nothing is cached between syncs.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};
use tracing::info;

use super::cluster::{Kubernetes, Reads};
use super::error::{Call, KubernetesError};

/// The page size of the LIST of Secrets (and of namespaces).
pub(super) const PAGE: u32 = 500;

/// What a sync knows of one namespace's Secret before judging it.
#[derive(Debug, Clone)]
pub(super) enum Lookup {
    /// The cluster-wide LIST (or the watch) gave it: `None` when the namespace has none.
    Known(Option<Secret>),
    /// Not known: read it with a GET.
    Read,
}

/// The Secrets of the cluster-wide LIST, by namespace; `None` when that LIST is forbidden.
pub(super) struct Listed(pub(super) Option<HashMap<String, Secret>>);

impl Listed {
    /// What the LIST says of `namespace`, or [`Lookup::Read`] without a LIST.
    pub(super) fn lookup(&self, namespace: &str) -> Lookup {
        match &self.0 {
            Some(secrets) => Lookup::Known(secrets.get(namespace).cloned()),
            None => Lookup::Read,
        }
    }
}

impl Kubernetes {
    /// Every Secret of our name in the cluster, with one LIST by field selector (paged); `Listed(None)` when the
    /// LIST is forbidden, and the sync reads each namespace instead. The first sync, and any that reads the other
    /// way than the one before, says which way in one INFO line.
    pub(super) async fn list_secrets(&self) -> Result<Listed, KubernetesError> {
        let name = &self.settings.secret_name;
        let api: Api<Secret> = Api::all(self.client.clone());
        let mut params = ListParams::default().fields(&format!("metadata.name={name}")).limit(PAGE);
        let mut secrets = HashMap::new();
        let reads = loop {
            let call = Call { verb: "list", resource: "secrets", place: format!("(all namespaces)/{name}") };
            let page = match call.run(self.settings.timeout, api.list(&params)).await {
                Ok(page) => page,
                Err(e) if e.code() == Some(403) => break Reads::Get,
                Err(e) => return Err(e),
            };
            for secret in page.items {
                // The field selector is the server's; a namespace holds one Secret of a name.
                if secret.metadata.name.as_deref() != Some(name.as_str()) {
                    continue;
                }
                if let Some(namespace) = secret.metadata.namespace.clone() {
                    secrets.insert(namespace, secret);
                }
            }
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(token) => params = params.continue_token(&token),
                None => break Reads::List,
            }
        };
        let before = self.state().reads.replace(reads);
        if before != Some(reads) {
            match reads {
                Reads::List => info!(target = %self.name(), secret = %name,
                    "Reading the Secrets with one cluster-wide LIST by name per cycle, and watching them to restore them"),
                Reads::Get => info!(target = %self.name(), secret = %name,
                    "The cluster-wide LIST of the Secrets is forbidden (RBAC per namespace): reading them with one GET per namespace, and not watching them"),
            }
        }
        Ok(Listed(match reads {
            Reads::List => Some(secrets),
            Reads::Get => None,
        }))
    }
}
