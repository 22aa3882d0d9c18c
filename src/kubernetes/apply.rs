//! Writing the Secret of one namespace: read it, judge it ([`super::secret::judge`]), and apply it when it is
//! missing or holds another token. Namespace mode and project mode both come here.

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use tracing::warn;

use super::cluster::Kubernetes;
use super::error::{Call, KubernetesError};
use super::read::Lookup;
use super::secret::{Desired, Existing, FIELD_MANAGER, judge, labelled_ours, written_by_us};
use crate::report::{Action, SyncOptions, Written};

/// Reading a Secret, judging it, and writing it when it is missing or holds another token.
impl Kubernetes {
    /// Writes the Secret when it is missing or holds another token: as `lookup` found it (the sync's LIST, the
    /// watch), or as a GET reads it now. `project`: the project label of a project-scoped Secret.
    pub(super) async fn ensure_secret(
        &self,
        namespace: &str,
        desired: &Desired,
        project: Option<&str>,
        lookup: Lookup,
        options: SyncOptions,
    ) -> Result<Option<Written>, KubernetesError> {
        let name = &self.settings.secret_name;
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let place = format!("{namespace}/{name}");
        let existing = match lookup {
            Lookup::Known(existing) => existing.map(|s| *s),
            Lookup::Read => {
                let get = Call { verb: "get", resource: "secrets", place: place.clone() };
                get.run(self.settings.timeout, api.get_opt(name)).await?
            }
        };
        let action = match judge(existing.as_ref(), desired, self.settings.adopt, project) {
            Existing::Current => return Ok(None),
            Existing::Missing => Action::Created,
            Existing::Stale => Action::Updated,
            Existing::Foreign => return Err(KubernetesError::Foreign { place }),
            Existing::RancherCopy => return Err(KubernetesError::RancherCopy { place }),
            Existing::WrongType => {
                let type_ = existing.and_then(|s| s.type_).unwrap_or_default();
                return Err(KubernetesError::WrongType { place, type_ });
            }
        };
        let adopted = existing.as_ref().is_some_and(|s| !labelled_ours(s) && !written_by_us(s));
        if !options.dry_run {
            if adopted {
                warn!(secret = %place, "Adopting a Secret that was not ours (KUBERNETES_ADOPT_SECRETS is on)");
            }
            let body = desired.secret(namespace, name, project);
            let params = PatchParams::apply(FIELD_MANAGER).force();
            let apply = Call { verb: "patch", resource: "secrets", place: place.clone() };
            apply.run(self.settings.timeout, api.patch(name, &params, &Patch::Apply(&body))).await?;
        }
        let resource = match project {
            Some(project) => format!("Secret {place} (project {project})"),
            None => format!("Secret {place}"),
        };
        Ok(Some(Written { host: desired.hosts(), scope: None, resource, action }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::fake;
    use super::super::secret::PROJECT_SCOPED_COPY;
    use serde_json::json;

    fn foreign() -> serde_json::Value {
        json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
            "metadata": {"name": "ecr-credentials", "namespace": "apps"},
            "data": {".dockerconfigjson": "e30="}})
    }

    #[tokio::test]
    async fn a_foreign_secret_is_left_alone_unless_adoption_is_on() {
        let mut store = fake::with_namespaces(&["apps"]);
        store.secrets.insert(("apps".into(), "ecr-credentials".into()), foreign());
        let (fake, kube) = fake::target(store, fake::namespaces(&["apps"], &[]));

        let report = kube.sync(&fake::tokens("pw"), Default::default()).await.unwrap();

        assert_eq!(report.failures.len(), 1);
        assert_eq!(report.failures[0].error.kind(), "foreign_secret");
        assert!(report.failures[0].error.hint().unwrap().contains("KUBERNETES_ADOPT_SECRETS"));
        assert!(fake.take_seen().iter().all(|s| !s.is_write()), "a foreign Secret is never written");

        let mut store = fake::with_namespaces(&["apps"]);
        store.secrets.insert(("apps".into(), "ecr-credentials".into()), foreign());
        let (fake, kube) =
            fake::target(store, super::super::settings::Settings { adopt: true, ..fake::namespaces(&["apps"], &[]) });
        let report = kube.sync(&fake::tokens("pw"), Default::default()).await.unwrap();
        assert!(report.failures.is_empty(), "{:?}", report.failures);
        let secret = fake.secret("apps", "ecr-credentials").unwrap();
        assert_eq!(secret["metadata"]["labels"]["app.kubernetes.io/managed-by"], "rancher-ecr-credentials");
        assert_eq!(fake::password_in(&secret).as_deref(), Some("pw"));
    }

    #[tokio::test]
    async fn a_copy_rancher_makes_is_never_written_even_when_adopting() {
        let mut store = fake::with_namespaces(&["apps"]);
        let mut copy = foreign();
        copy["metadata"]["annotations"] = json!({ PROJECT_SCOPED_COPY: "true" });
        store.secrets.insert(("apps".into(), "ecr-credentials".into()), copy);
        let (fake, kube) =
            fake::target(store, super::super::settings::Settings { adopt: true, ..fake::namespaces(&["apps"], &[]) });

        let report = kube.sync(&fake::tokens("pw"), Default::default()).await.unwrap();

        assert_eq!(report.failures.len(), 1);
        assert_eq!(report.failures[0].error.kind(), "rancher_copy");
        assert!(fake.take_seen().iter().all(|s| !s.is_write()));
    }

    #[tokio::test]
    async fn a_secret_of_another_type_is_not_changed() {
        let mut store = fake::with_namespaces(&["apps"]);
        let mut opaque = foreign();
        opaque["type"] = json!("Opaque");
        opaque["metadata"]["labels"] = json!({"app.kubernetes.io/managed-by": "rancher-ecr-credentials"});
        store.secrets.insert(("apps".into(), "ecr-credentials".into()), opaque);
        let (fake, kube) = fake::target(store, fake::namespaces(&["apps"], &[]));

        let report = kube.sync(&fake::tokens("pw"), Default::default()).await.unwrap();

        assert_eq!(report.failures[0].error.kind(), "wrong_type");
        assert!(fake.take_seen().iter().all(|s| !s.is_write()));
    }
}
