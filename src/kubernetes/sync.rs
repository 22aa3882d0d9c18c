//! A full sync of a Kubernetes target: every selected namespace (or project) brought up to date, in parallel,
//! into one [`SyncReport`].

use std::sync::Arc;

use futures_util::{StreamExt, stream};

use super::cluster::{Kubernetes, Seen};
use super::error::KubernetesError;
use super::secret::Desired;
use super::settings::Mode;
use crate::report::{Failure, Places, SyncOptions, SyncReport, Written};
use crate::token::RegistryToken;

/// How many namespaces are written to at the same time.
const CONCURRENCY: usize = 16;

/// The outcome of one namespace or project.
struct PlaceOutcome {
    place: String,
    /// The namespace's uid (namespace mode).
    uid: Option<String>,
    written: Vec<Written>,
    error: Option<KubernetesError>,
}

impl Kubernetes {
    /// Brings every selected namespace (or project) up to date. A place that fails does not stop the others;
    /// only a failed listing of namespaces fails the whole sync.
    pub async fn sync(
        &self,
        tokens: &[RegistryToken],
        options: SyncOptions,
    ) -> Result<SyncReport<KubernetesError>, KubernetesError> {
        let (desired, generation) = self.set_desired(tokens);
        if !options.dry_run {
            let mut state = self.state();
            state.syncing = true;
            // A refresh ends a contest: the Secret is written again, and restored again as often as before.
            state.contested.clear();
            state.restorations.clear();
        }
        let outcomes = self.sync_places(&desired, options).await;
        if !options.dry_run {
            self.state().syncing = false;
        }
        let outcomes = outcomes?;
        if !options.dry_run {
            // Where people look: an Event about each failure (at most once per reason and object in 10 min).
            let told = outcomes.iter().filter_map(|o| o.error.as_ref()).map(|e| self.tell(e));
            futures_util::future::join_all(told).await;
        }

        let mut report = SyncReport::default();
        let mut places = Places { total: outcomes.len(), missing: Vec::new() };
        if !options.dry_run {
            let mut state = self.state();
            state.counted = outcomes.iter().map(|o| o.place.clone()).collect();
            if let Mode::Namespaces(_) = self.settings.mode {
                state.homes = outcomes.iter().map(|o| (o.place.clone(), None)).collect();
            }
            for outcome in &outcomes {
                let seen = Seen { uid: outcome.uid.clone(), generation, ok: outcome.error.is_none() };
                state.seen.insert(outcome.place.clone(), seen);
            }
        }
        for outcome in outcomes {
            report.written.extend(outcome.written);
            if let Some(error) = outcome.error {
                places.missing.push(outcome.place.clone());
                report.failures.push(Failure { host: desired.hosts(), scope: Some(outcome.place), error });
            }
        }
        places.missing.sort();
        if places.missing.len() < places.total || places.total == 0 {
            report.held = desired.host_list();
        }
        report.places = Some(places);
        if !options.dry_run {
            self.synced.notify_one();
        }
        Ok(report)
    }

    /// Every selected namespace (or project), each with what was written or what failed.
    async fn sync_places(
        &self,
        desired: &Arc<Desired>,
        options: SyncOptions,
    ) -> Result<Vec<PlaceOutcome>, KubernetesError> {
        Ok(match &self.settings.mode {
            Mode::Namespaces(selection) => {
                let namespaces = self.list_namespaces(selection).await?;
                let listed = self.list_secrets().await?;
                let listed = &listed;
                stream::iter(namespaces)
                    .map(|(namespace, uid)| {
                        let desired = desired.clone();
                        async move {
                            let lookup = listed.lookup(&namespace);
                            let outcome = self.ensure_namespace(&namespace, &desired, lookup, options).await;
                            PlaceOutcome { place: namespace, uid, written: outcome.0, error: outcome.1 }
                        }
                    })
                    .buffer_unordered(CONCURRENCY)
                    .collect()
                    .await
            }
            Mode::Projects(projects) => {
                let secrets = self.list_secrets().await?;
                if !options.dry_run {
                    self.state().homes.clear();
                }
                self.sync_projects(projects, desired, &secrets, options)
                    .await
                    .into_iter()
                    .map(|(place, written, error)| PlaceOutcome { place, uid: None, written, error })
                    .collect()
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::fake::{self, password_in};
    use super::*;

    #[tokio::test]
    async fn writes_one_secret_in_each_selected_namespace_and_none_elsewhere() {
        let mut store = fake::with_namespaces(&["apps", "team-a", "team-b", "kube-system", "other"]);
        store.namespaces.insert("team-dying".into(), (Default::default(), true));
        let (fake, kube) = fake::target(store, fake::namespaces(&["apps", "team-*"], &["team-b"]));

        let report = kube.sync(&fake::tokens("pw-1"), SyncOptions::default()).await.unwrap();

        let mut written: Vec<&str> = report.written.iter().map(|w| w.resource.as_str()).collect();
        written.sort();
        assert_eq!(written, ["Secret apps/ecr-credentials", "Secret team-a/ecr-credentials"]);
        assert!(report.failures.is_empty(), "{:?}", report.failures);
        assert_eq!(report.places, Some(Places { total: 2, missing: Vec::new() }));
        assert_eq!(report.held, [fake::HOST]);
        for namespace in ["apps", "team-a"] {
            let secret = fake.secret(namespace, "ecr-credentials").expect("written");
            assert_eq!(password_in(&secret).as_deref(), Some("pw-1"), "{namespace}");
            assert_eq!(secret["type"], "kubernetes.io/dockerconfigjson");
        }
        let mut writes: Vec<String> = fake.take_seen().into_iter().filter(|s| s.is_write()).map(|s| s.path).collect();
        writes.sort();
        assert_eq!(writes.len(), 2, "{writes:?}");
        assert!(writes[0].starts_with("/api/v1/namespaces/apps/secrets/ecr-credentials?"), "{writes:?}");
        assert!(writes[1].starts_with("/api/v1/namespaces/team-a/secrets/ecr-credentials?"), "{writes:?}");
        assert!(writes.iter().all(|w| w.contains("fieldManager=rancher-ecr-credentials") && w.contains("force=true")));
    }

    #[tokio::test]
    async fn a_second_sync_with_the_same_token_writes_nothing_and_a_new_token_rewrites() {
        let (fake, kube) = fake::target(fake::with_namespaces(&["apps"]), fake::namespaces(&["apps"], &[]));
        kube.sync(&fake::tokens("pw-1"), SyncOptions::default()).await.unwrap();
        fake.take_seen();

        let again = kube.sync(&fake::tokens("pw-1"), SyncOptions::default()).await.unwrap();

        assert!(again.written.is_empty(), "{:?}", again.written);
        assert_eq!(again.held, [fake::HOST], "a current Secret is still held");
        assert!(fake.take_seen().iter().all(|s| !s.is_write()), "no write when the Secret is current");

        let renewed = kube.sync(&fake::tokens("pw-2"), SyncOptions::default()).await.unwrap();
        assert_eq!(renewed.written.len(), 1);
        assert_eq!(password_in(&fake.secret("apps", "ecr-credentials").unwrap()).as_deref(), Some("pw-2"));
    }

    #[tokio::test]
    async fn a_dry_run_reads_and_reports_but_writes_nothing() {
        let (fake, kube) = fake::target(fake::with_namespaces(&["apps"]), fake::namespaces(&["apps"], &[]));
        let report = kube.sync(&fake::tokens("pw-1"), SyncOptions { dry_run: true, ..SyncOptions::default() }).await;
        assert_eq!(report.unwrap().written.len(), 1);
        assert!(fake.take_seen().iter().all(|s| !s.is_write()));
        assert!(fake.secret("apps", "ecr-credentials").is_none());
    }

    #[tokio::test]
    async fn a_forbidden_namespace_is_named_and_the_others_are_still_written() {
        let mut store = fake::with_namespaces(&["apps", "locked"]);
        store.forbidden.insert("locked".into());
        let (fake, kube) = fake::target(store, fake::namespaces(&["*"], &[]));

        let report = kube.sync(&fake::tokens("pw-1"), SyncOptions::default()).await.unwrap();

        assert_eq!(report.failures.len(), 1);
        let failure = &report.failures[0];
        assert_eq!(failure.scope.as_deref(), Some("locked"));
        assert_eq!(failure.error.kind(), "forbidden");
        assert!(
            failure.error.to_string().starts_with("patch secrets locked/ecr-credentials: HTTP 403"),
            "{}",
            failure.error
        );
        assert!(failure.error.is_permanent());
        assert_eq!(report.places, Some(Places { total: 2, missing: vec!["locked".into()] }));
        assert!(fake.secret("apps", "ecr-credentials").is_some());
    }
}
