//! A full sync of a Kubernetes target: every selected namespace (or project) brought up to date, in parallel,
//! into one [`SyncReport`].

use std::sync::Arc;

use futures_util::{StreamExt, stream};

use super::cluster::Kubernetes;
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
            self.state().syncing = true;
        }
        let outcomes = self.sync_places(&desired, options).await;
        if !options.dry_run {
            self.state().syncing = false;
        }
        let outcomes = outcomes?;

        let mut report = SyncReport::default();
        let mut places = Places { total: outcomes.len(), missing: Vec::new() };
        if !options.dry_run {
            let mut state = self.state();
            state.counted = outcomes.iter().map(|o| o.place.clone()).collect();
            for outcome in &outcomes {
                state.seen.insert(outcome.place.clone(), (generation, outcome.error.is_none()));
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
                stream::iter(namespaces)
                    .map(|namespace| {
                        let desired = desired.clone();
                        async move {
                            let outcome = self.ensure_namespace(&namespace, &desired, options).await;
                            PlaceOutcome { place: namespace, written: outcome.0, error: outcome.1 }
                        }
                    })
                    .buffer_unordered(CONCURRENCY)
                    .collect()
                    .await
            }
            Mode::Projects(projects) => {
                let mut outcomes = Vec::new();
                for project in projects {
                    let (written, error) = match self.ensure_project(project, desired, options).await {
                        Ok(written) => (written, None),
                        Err(error) => (Vec::new(), Some(error)),
                    };
                    outcomes.push(PlaceOutcome { place: project.clone(), written, error });
                }
                outcomes
            }
        })
    }
}
