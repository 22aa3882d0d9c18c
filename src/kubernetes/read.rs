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
    Known(Option<Box<Secret>>),
    /// Not known: read it with a GET.
    Read,
}

/// The Secrets of the cluster-wide LIST, by namespace; `None` when that LIST is forbidden.
pub(super) struct Listed(pub(super) Option<HashMap<String, Secret>>);

impl Listed {
    /// What the LIST says of `namespace`, or [`Lookup::Read`] without a LIST.
    pub(super) fn lookup(&self, namespace: &str) -> Lookup {
        match &self.0 {
            Some(secrets) => Lookup::Known(secrets.get(namespace).cloned().map(Box::new)),
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
                    "The cluster-wide LIST of the Secrets is not allowed (RBAC bound per namespace): reading them with one GET per namespace, and not watching them"),
            }
        }
        Ok(Listed(match reads {
            Reads::List => Some(secrets),
            Reads::Get => None,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::fake;
    use crate::report::SyncOptions;

    #[tokio::test]
    async fn a_sync_reads_every_secret_with_one_paged_list_by_name_and_no_get() {
        let mut store = fake::with_namespaces(&["a", "b", "c", "d", "e"]);
        store.page = 2;
        let (fake, kube) = fake::target(store, fake::namespaces(&["*"], &[]));
        kube.sync(&fake::tokens("pw"), SyncOptions::default()).await.unwrap();
        fake.take_seen();

        let again = kube.sync(&fake::tokens("pw"), SyncOptions::default()).await.unwrap();

        assert!(again.written.is_empty() && again.failures.is_empty(), "{again:?}");
        let seen = fake.take_seen();
        let paths: Vec<&str> = seen.iter().map(|s| s.path.as_str()).collect();
        assert_eq!(paths.len(), 1 + 3, "one page of namespaces, three pages of Secrets: {paths:?}");
        let lists: Vec<&&str> = paths.iter().filter(|p| p.starts_with("/api/v1/secrets?")).collect();
        assert_eq!(lists.len(), 3, "{paths:?}");
        assert!(lists.iter().all(|p| p.contains("fieldSelector=metadata.name%3Decr-credentials")), "{paths:?}");
        assert!(lists[1].contains("continue=2") && lists[2].contains("continue=4"), "paged: {paths:?}");
        assert!(!paths.iter().any(|p| p.contains("/secrets/")), "no GET per namespace: {paths:?}");
        assert!(seen.iter().all(|s| !s.is_write()));
    }

    #[tokio::test]
    async fn where_the_list_is_forbidden_each_namespace_is_read_with_a_get() {
        let mut store = fake::with_namespaces(&["a", "b"]);
        store.list_forbidden = true;
        let (fake, kube) = fake::target(store, fake::namespaces(&["*"], &[]));

        let report = kube.sync(&fake::tokens("pw"), SyncOptions::default()).await.unwrap();

        assert!(report.failures.is_empty(), "{:?}", report.failures);
        assert_eq!(report.written.len(), 2);
        assert_eq!(kube.state().reads, Some(super::Reads::Get));
        let gets = fake.take_seen().into_iter().filter(|s| !s.is_write() && s.path.contains("/secrets/")).count();
        assert_eq!(gets, 2, "one GET per namespace");
    }
}
