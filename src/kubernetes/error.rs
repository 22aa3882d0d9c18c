//! [`KubernetesError`]: a failed Kubernetes call, or a Secret this daemon will not write; and `Call`, which
//! names each call for its error and bounds it in time.

use std::time::Duration;

/// One API call, named for errors: verb, resource and where (namespace/name).
pub(super) struct Call {
    pub(super) verb: &'static str,
    pub(super) resource: &'static str,
    pub(super) place: String,
}

impl Call {
    pub(super) async fn run<T>(
        self,
        limit: Duration,
        call: impl std::future::Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, KubernetesError> {
        match tokio::time::timeout(limit, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(self.error(e)),
            Err(_) => Err(KubernetesError::Transport {
                verb: self.verb,
                resource: self.resource,
                place: self.place,
                detail: format!("no answer within {}", humantime::format_duration(limit)),
                timeout: true,
            }),
        }
    }

    fn error(self, e: kube::Error) -> KubernetesError {
        let Call { verb, resource, place } = self;
        match e {
            kube::Error::Api(status) => KubernetesError::Api {
                verb,
                resource,
                place,
                code: status.code,
                reason: one_line(&status.reason),
                message: one_line(&status.message),
            },
            other => {
                let detail = crate::redact::error_chain(&other);
                let timeout = detail.contains("timed out") || detail.contains("deadline");
                KubernetesError::Transport { verb, resource, place, detail, timeout }
            }
        }
    }
}

/// Outside text (an API server's message) on one line, capped, with every known secret redacted.
pub(super) fn one_line(text: &str) -> String {
    crate::redact::outside(text)
}

/// A failed Kubernetes call, or a Secret this daemon will not write. Names the verb, the resource and the
/// namespace (the RBAC rule a 403 lacks); never carries a Secret's content or the bearer token.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KubernetesError {
    #[error("{verb} {resource} {place}: HTTP {code} {reason}: {message}")]
    Api { verb: &'static str, resource: &'static str, place: String, code: u16, reason: String, message: String },
    #[error("{verb} {resource} {place}: {detail}")]
    Transport { verb: &'static str, resource: &'static str, place: String, detail: String, timeout: bool },
    #[error(
        "Secret {place} exists and is not ours (no label app.kubernetes.io/managed-by=rancher-ecr-credentials); left alone"
    )]
    Foreign { place: String },
    #[error("Secret {place} is a copy Rancher makes of a project-scoped secret; never written (Rancher overwrites it)")]
    RancherCopy { place: String },
    #[error("Secret {place} is of type {type_}, not kubernetes.io/dockerconfigjson; its type cannot be changed")]
    WrongType { place: String, type_: String },
}

impl KubernetesError {
    /// The HTTP status of a refused call.
    pub(super) fn code(&self) -> Option<u16> {
        match self {
            KubernetesError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// True when retrying soon will not help: a permission, a token or a Secret in the way.
    pub fn is_permanent(&self) -> bool {
        match self {
            KubernetesError::Api { code, .. } => matches!(code, 400 | 401 | 403 | 404 | 405 | 422),
            KubernetesError::Transport { .. } => false,
            KubernetesError::Foreign { .. }
            | KubernetesError::RancherCopy { .. }
            | KubernetesError::WrongType { .. } => true,
        }
    }

    /// A short, stable name of the kind of error, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            KubernetesError::Transport { timeout: true, .. } => "timeout",
            KubernetesError::Transport { .. } => "connection",
            KubernetesError::Api { code, .. } => match code {
                401 => "unauthorized",
                403 => "forbidden",
                404 => "not_found",
                409 => "conflict",
                400 | 422 => "rejected",
                500..=599 => "server_error",
                _ => "status",
            },
            KubernetesError::Foreign { .. } => "foreign_secret",
            KubernetesError::RancherCopy { .. } => "rancher_copy",
            KubernetesError::WrongType { .. } => "wrong_type",
        }
    }

    /// What a person should do about it, when that is clear from the error.
    pub fn hint(&self) -> Option<&'static str> {
        match (self, self.code()) {
            (_, Some(401)) => Some(
                "The Kubernetes API rejected the credentials (HTTP 401): check the token of the KUBECONFIG user (a Rancher token may have expired) or the pod's ServiceAccount token",
            ),
            (_, Some(403)) => Some(
                "RBAC does not allow this call (HTTP 403; the error names the verb, resource and namespace): bind the roles in deploy/kubernetes/rbac to the daemon's user or ServiceAccount",
            ),
            (KubernetesError::Api { resource: "projects.management.cattle.io", .. }, Some(404)) => Some(
                "No such Rancher project on this cluster: RANCHER_PROJECT_SECRETS needs Rancher's local cluster (https://<rancher>/k8s/clusters/local) and ids c-xxxxx:p-xxxxx",
            ),
            (KubernetesError::Foreign { .. }, _) => Some(
                "A Secret of that name exists and is not ours: delete it, choose another KUBERNETES_SECRET_NAME, or set KUBERNETES_ADOPT_SECRETS=true to take it over",
            ),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_403_names_verb_resource_and_namespace_and_is_permanent() {
        let error = Call { verb: "patch", resource: "secrets", place: "team-b/ecr-credentials".into() }.error(
            kube::Error::Api(Box::new(kube::core::Status {
                code: 403,
                reason: "Forbidden".into(),
                message: "secrets \"ecr-credentials\" is forbidden:\nUser \"app-user\" cannot patch".into(),
                ..kube::core::Status::default()
            })),
        );
        let text = error.to_string();
        assert!(text.starts_with("patch secrets team-b/ecr-credentials: HTTP 403 Forbidden"), "{text}");
        assert!(!text.contains('\n'), "{text}");
        assert!(error.is_permanent());
        assert_eq!(error.kind(), "forbidden");
        assert!(error.hint().unwrap().contains("RBAC"));
    }

    #[test]
    fn outside_text_is_kept_to_one_short_line() {
        let long = "x\n".repeat(400);
        let line = one_line(&long);
        assert!(!line.contains('\n'));
        assert!(line.ends_with('…') && line.len() < long.len(), "{line}");
    }
}
