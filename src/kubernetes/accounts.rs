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
