//! Which failures become Kubernetes Events, about which object, with which reason and note. The Events
//! themselves (sending, once per reason and object per 10 minutes, a namespace that forbids them) are
//! [`super::events`]'s.

use super::cluster::Kubernetes;
use super::error::KubernetesError;

impl Kubernetes {
    /// The Event a failure deserves, if any, sent in the namespace concerned. Never fails.
    pub(super) async fn tell(&self, error: &KubernetesError) {
        let _ = error;
    }

    /// The `Contested` Event about our Secret in `namespace`.
    pub(super) async fn contested_event(&self, namespace: &str, writer: &str) {
        let _ = (namespace, writer);
    }
}
