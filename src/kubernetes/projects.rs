//! Project mode (Rancher 2.12+ project-scoped secrets): the Secret in each project's backing namespace on
//! Rancher's local cluster, labelled for the project; Rancher copies it into the project's namespaces.

use kube::api::{Api, DynamicObject};
use kube::core::ApiResource;
use tracing::debug;

use super::cluster::Kubernetes;
use super::error::{Call, KubernetesError};
use super::read::Listed;
use super::secret::Desired;
use crate::report::{SyncOptions, Written};

impl Kubernetes {
    /// Mode 2: the project's backing namespace on the local cluster, and the project-scoped Secret there.
    pub(super) async fn ensure_project(
        &self,
        project_id: &str,
        desired: &Desired,
        listed: &Listed,
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
        if !options.dry_run {
            self.state().homes.insert(namespace.to_string(), Some(project.to_string()));
        }
        let lookup = listed.lookup(namespace);
        Ok(self.ensure_secret(namespace, desired, Some(project), lookup, options).await?.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::super::fake;
    use super::super::settings::{Mode, Settings};
    use crate::report::Places;

    fn projects(ids: &[&str]) -> Settings {
        Settings { mode: Mode::Projects(ids.iter().map(|i| i.to_string()).collect()), ..fake::namespaces(&[], &[]) }
    }

    #[tokio::test]
    async fn a_project_secret_goes_into_the_backing_namespace_with_the_project_label() {
        let mut store = fake::Store::default();
        store.projects.insert(("c-abc12".into(), "p-xyz34".into()), "c-abc12-p-xyz34".into());
        let (fake, kube) = fake::target(store, projects(&["c-abc12:p-xyz34"]));

        let report = kube.sync(&fake::tokens("pw"), Default::default()).await.unwrap();

        assert!(report.failures.is_empty(), "{:?}", report.failures);
        assert_eq!(report.written[0].resource, "Secret c-abc12-p-xyz34/ecr-credentials (project p-xyz34)");
        let secret = fake.secret("c-abc12-p-xyz34", "ecr-credentials").expect("written in the backing namespace");
        assert_eq!(secret["metadata"]["labels"]["management.cattle.io/project-scoped-secret"], "p-xyz34");
        assert_eq!(fake::password_in(&secret).as_deref(), Some("pw"));
        let seen = fake.take_seen();
        assert!(seen[0].path.starts_with("/api/v1/secrets?"), "one LIST of the Secrets first: {}", seen[0].path);
        assert_eq!(seen[1].path, "/apis/management.cattle.io/v3/namespaces/c-abc12/projects/p-xyz34");
    }

    #[tokio::test]
    async fn an_unknown_project_fails_alone_with_what_to_do() {
        let mut store = fake::Store::default();
        store.projects.insert(("c-abc12".into(), "p-xyz34".into()), "c-abc12-p-xyz34".into());
        let (fake, kube) = fake::target(store, projects(&["c-abc12:p-gone", "c-abc12:p-xyz34"]));

        let report = kube.sync(&fake::tokens("pw"), Default::default()).await.unwrap();

        assert_eq!(report.failures.len(), 1);
        assert_eq!(report.failures[0].scope.as_deref(), Some("c-abc12:p-gone"));
        assert!(report.failures[0].error.hint().unwrap().contains("RANCHER_PROJECT_SECRETS"));
        assert_eq!(report.places, Some(Places { total: 2, missing: vec!["c-abc12:p-gone".into()] }));
        assert!(fake.secret("c-abc12-p-xyz34", "ecr-credentials").is_some());
    }
}
