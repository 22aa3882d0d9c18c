//! Project mode (Rancher 2.12+ project-scoped secrets): the Secret in each project's backing namespace on
//! Rancher's local cluster, labelled for the project; Rancher copies it into the project's namespaces.

use kube::api::{Api, DynamicObject};
use kube::core::ApiResource;
use tracing::debug;

use super::cluster::Kubernetes;
use super::error::{Call, KubernetesError};
use super::secret::Desired;
use crate::report::{SyncOptions, Written};

impl Kubernetes {
    /// Mode 2: the project's backing namespace on the local cluster, and the project-scoped Secret there.
    pub(super) async fn ensure_project(
        &self,
        project_id: &str,
        desired: &Desired,
        options: SyncOptions,
    ) -> Result<Vec<Written>, KubernetesError> {
        let (cluster, project) = project_id.split_once(':').expect("project ids are checked by the configuration");
        let resource = ApiResource {
            group: "management.cattle.io".into(),
            version: "v3".into(),
            api_version: "management.cattle.io/v3".into(),
            kind: "Project".into(),
            plural: "projects".into(),
        };
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), cluster, &resource);
        let call =
            Call { verb: "get", resource: "projects.management.cattle.io", place: format!("{cluster}/{project}") };
        let object = call.run(self.settings.timeout, api.get(project)).await?;
        let backing =
            object.data.pointer("/status/backingNamespace").and_then(|v| v.as_str()).filter(|s| !s.is_empty());
        let namespace = backing.unwrap_or(project);
        debug!(project = project_id, namespace, "Project's backing namespace");
        Ok(self.ensure_secret(namespace, desired, Some(project), options).await?.into_iter().collect())
    }
}
