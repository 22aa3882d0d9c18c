//! ServiceAccount merging: the Secret added to the `imagePullSecrets` of the configured ServiceAccounts,
//! keeping every entry they already list.

use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, ListParams, Patch, PatchParams};

use super::cluster::Kubernetes;
use super::error::{Call, KubernetesError};
use super::secret::FIELD_MANAGER;
use crate::report::{Action, SyncOptions, Written};

impl Kubernetes {
    /// Adds the Secret to the `imagePullSecrets` of the configured ServiceAccounts of one namespace, keeping
    /// what they list. A ServiceAccount that does not exist yet is left to the watch.
    pub(super) async fn ensure_service_accounts(
        &self,
        namespace: &str,
        options: SyncOptions,
    ) -> Result<Vec<Written>, KubernetesError> {
        let wanted = &self.settings.service_accounts;
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), namespace);
        let accounts: Vec<ServiceAccount> = if wanted.iter().any(|w| w == "*") {
            let call = Call { verb: "list", resource: "serviceaccounts", place: namespace.to_string() };
            call.run(self.settings.timeout, api.list(&ListParams::default())).await?.items
        } else {
            let mut found = Vec::new();
            for name in wanted {
                let call = Call { verb: "get", resource: "serviceaccounts", place: format!("{namespace}/{name}") };
                if let Some(account) = call.run(self.settings.timeout, api.get_opt(name)).await? {
                    found.push(account);
                }
            }
            found
        };
        let mut written = Vec::new();
        for account in accounts {
            if let Some(w) = self.link(&api, namespace, &account, options).await? {
                written.push(w);
            }
        }
        Ok(written)
    }

    /// Lists the Secret in one ServiceAccount's `imagePullSecrets` when it is not there yet.
    pub(super) async fn link(
        &self,
        api: &Api<ServiceAccount>,
        namespace: &str,
        account: &ServiceAccount,
        options: SyncOptions,
    ) -> Result<Option<Written>, KubernetesError> {
        let secret_name = &self.settings.secret_name;
        let Some(name) = account.metadata.name.as_deref() else { return Ok(None) };
        let mut pull_secrets: Vec<serde_json::Value> = Vec::new();
        for reference in account.image_pull_secrets.iter().flatten() {
            if reference.name == *secret_name {
                return Ok(None);
            }
            pull_secrets.push(serde_json::to_value(reference).unwrap_or_default());
        }
        pull_secrets.push(serde_json::json!({ "name": secret_name }));
        let place = format!("{namespace}/{name}");
        if !options.dry_run {
            // The list is replaced as a whole (it has no merge key): the resourceVersion makes the API server
            // refuse the patch (409) if someone changed the ServiceAccount since it was read.
            let patch = serde_json::json!({
                "metadata": { "resourceVersion": account.metadata.resource_version },
                "imagePullSecrets": pull_secrets,
            });
            let params = PatchParams { field_manager: Some(FIELD_MANAGER.to_string()), ..PatchParams::default() };
            let call = Call { verb: "patch", resource: "serviceaccounts", place: place.clone() };
            call.run(self.settings.timeout, api.patch(name, &params, &Patch::Merge(&patch))).await?;
        }
        Ok(Some(Written {
            host: secret_name.clone(),
            scope: None,
            resource: format!("ServiceAccount {place}"),
            action: Action::Linked,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::fake;
    use super::super::settings::Settings;

    fn settings(accounts: &[&str]) -> Settings {
        Settings {
            service_accounts: accounts.iter().map(|a| a.to_string()).collect(),
            ..fake::namespaces(&["apps"], &[])
        }
    }

    fn pull_secrets(fake: &fake::Fake, name: &str) -> Vec<String> {
        let store = fake.store();
        let account = &store.accounts[&("apps".to_string(), name.to_string())];
        account["imagePullSecrets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_string())
            .collect()
    }

    #[tokio::test]
    async fn the_secret_joins_the_pull_secrets_of_a_service_account_keeping_the_others() {
        let mut store = fake::with_namespaces(&["apps"]);
        store.accounts.insert(("apps".into(), "default".into()), fake::account("apps", "default", &["registry-x"]));
        store.accounts.insert(("apps".into(), "builder".into()), fake::account("apps", "builder", &[]));
        let (fake, kube) = fake::target(store, settings(&["default"]));

        let report = kube.sync(&fake::tokens("pw"), Default::default()).await.unwrap();

        assert!(report.failures.is_empty(), "{:?}", report.failures);
        assert!(report.written.iter().any(|w| w.resource == "ServiceAccount apps/default"), "{:?}", report.written);
        assert_eq!(pull_secrets(&fake, "default"), ["registry-x", "ecr-credentials"]);
        assert!(pull_secrets(&fake, "builder").is_empty(), "only the configured ServiceAccounts");
        let patch =
            fake.take_seen().into_iter().find(|s| s.path.contains("/serviceaccounts/default") && s.is_write()).unwrap();
        assert_eq!(patch.body["metadata"]["resourceVersion"], "1", "the patch is guarded by the version read");

        kube.sync(&fake::tokens("pw-2"), Default::default()).await.unwrap();
        assert!(!fake.take_seen().iter().any(|s| s.path.contains("serviceaccounts") && s.is_write()), "listed once");
        assert_eq!(pull_secrets(&fake, "default"), ["registry-x", "ecr-credentials"]);
    }

    #[tokio::test]
    async fn every_service_account_with_a_star_and_a_conflict_is_reported_not_forced() {
        let mut store = fake::with_namespaces(&["apps"]);
        store.accounts.insert(("apps".into(), "default".into()), fake::account("apps", "default", &[]));
        store.accounts.insert(("apps".into(), "builder".into()), fake::account("apps", "builder", &[]));
        store.conflicts.insert(("apps".into(), "default".into()));
        let (fake, kube) = fake::target(store, settings(&["*"]));

        let report = kube.sync(&fake::tokens("pw"), Default::default()).await.unwrap();

        assert_eq!(pull_secrets(&fake, "builder"), ["ecr-credentials"]);
        assert_eq!(report.failures.len(), 1);
        assert_eq!(report.failures[0].error.kind(), "conflict");
        assert!(pull_secrets(&fake, "default").is_empty());
    }
}
