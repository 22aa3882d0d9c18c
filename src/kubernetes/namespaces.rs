//! Namespace mode: which namespaces are selected, and bringing one of them up to date (its Secret, then its
//! ServiceAccounts).

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams};

use super::cluster::Kubernetes;
use super::error::{Call, KubernetesError};
use super::read::{Lookup, PAGE};
use super::secret::Desired;
use super::select::Selection;
use crate::report::{SyncOptions, Written};

impl Kubernetes {
    /// The selected namespaces that are not being deleted: names and uids.
    pub(super) async fn list_namespaces(
        &self,
        selection: &Selection,
    ) -> Result<Vec<(String, Option<String>)>, KubernetesError> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let mut params = ListParams::default().limit(PAGE);
        if let Some(selector) = selection.label_selector() {
            params = params.labels(selector);
        }
        let mut names = Vec::new();
        loop {
            let call = Call { verb: "list", resource: "namespaces", place: String::new() };
            let page = call.run(self.settings.timeout, api.list(&params)).await?;
            for namespace in page.items {
                let Some(name) = namespace.metadata.name.clone() else { continue };
                if selection.selects(&name) && !terminating(&namespace) {
                    names.push((name, namespace.metadata.uid.clone()));
                }
            }
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(token) => params = params.continue_token(&token),
                None => break,
            }
        }
        Ok(names)
    }

    /// The Secret (as `lookup` found it, or read now), then the ServiceAccounts, of one namespace.
    pub(super) async fn ensure_namespace(
        &self,
        namespace: &str,
        desired: &Desired,
        lookup: Lookup,
        options: SyncOptions,
    ) -> (Vec<Written>, Option<KubernetesError>) {
        let mut written = Vec::new();
        match self.ensure_secret(namespace, desired, None, lookup, options).await {
            Ok(Some(w)) => written.push(w),
            Ok(None) => {}
            Err(error) => return (written, Some(error)),
        }
        match self.ensure_service_accounts(namespace, options).await {
            Ok(linked) => written.extend(linked),
            Err(error) => return (written, Some(error)),
        }
        (written, None)
    }
}

/// A namespace being deleted: never written to.
pub(super) fn terminating(namespace: &Namespace) -> bool {
    namespace.metadata.deletion_timestamp.is_some()
        || namespace.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating")
}

#[cfg(test)]
mod tests {
    use super::super::fake;
    use super::*;

    #[tokio::test]
    async fn a_label_selector_goes_to_the_api_server_and_names_and_exclusions_apply_to_what_it_returns() {
        let mut store = fake::with_namespaces(&["apps", "team-a", "team-b", "unlabelled"]);
        for name in ["apps", "team-a", "team-b"] {
            store.namespaces.get_mut(name).unwrap().0.insert("ecr-pull".into(), "true".into());
        }
        let selection = Selection {
            names: vec!["team-*".into()],
            selector: Some("ecr-pull=true".into()),
            exclude: vec!["team-b".into()],
        };
        let (fake, kube) = fake::target(store, fake::namespaces(&[], &[]));

        let names = kube.list_namespaces(&selection).await.unwrap();

        assert_eq!(names, [("team-a".to_string(), Some("uid-team-a".to_string()))]);
        let seen = fake.take_seen();
        assert_eq!(seen.len(), 1);
        assert!(seen[0].path.contains("labelSelector=ecr-pull%3Dtrue"), "{}", seen[0].path);
        assert!(seen[0].path.contains("limit=500"), "{}", seen[0].path);
    }
}
