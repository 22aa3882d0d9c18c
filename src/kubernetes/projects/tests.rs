use super::super::fake;
use super::super::settings::{Mode, Settings};
use super::*;
use crate::report::Places;

/// A store with these projects (cluster, project, backing namespace) and these namespaces.
fn rancher(projects: &[(&str, &str, &str)], namespaces: &[&str]) -> fake::Store {
    let mut store = fake::with_namespaces(namespaces);
    for (cluster, project, backing) in projects {
        store.projects.insert((cluster.to_string(), project.to_string()), backing.to_string());
    }
    store
}

fn written_namespaces(fake: &fake::Fake) -> Vec<String> {
    let mut names: Vec<String> = fake.store().secrets.keys().map(|(ns, _)| ns.clone()).collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_cluster_pattern_writes_every_project_of_its_cluster_and_none_of_another() {
    let store = rancher(
        &[
            ("c-abc12", "p-one", "c-abc12-p-one"),
            ("c-abc12", "p-two", "c-abc12-p-two"),
            ("c-abc12", "p-new", "c-abc12-p-new"),
            ("c-other", "p-three", "c-other-p-three"),
            ("local", "p-xyz34", "local-p-xyz34"),
        ],
        &["c-abc12-p-one", "c-abc12-p-two", "c-other-p-three", "local-p-xyz34"],
    );
    let (fake, kube) = fake::target(store, projects(&["c-abc12:*", "local:p-xyz34"]));

    let report = kube.sync(&fake::tokens("pw"), Default::default()).await.unwrap();

    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(written_namespaces(&fake), ["c-abc12-p-one", "c-abc12-p-two", "local-p-xyz34"]);
    let secret = fake.secret("c-abc12-p-two", "ecr-credentials").unwrap();
    assert_eq!(secret["metadata"]["labels"]["management.cattle.io/project-scoped-secret"], "p-two");
    // p-new has no backing namespace yet: not a place until it has one.
    assert_eq!(report.places, Some(Places { total: 3, missing: Vec::new() }));
    let reads: Vec<String> = fake.take_seen().into_iter().filter(|s| !s.is_write()).map(|s| s.path).collect();
    let lists: Vec<&String> = reads.iter().filter(|p| !p.contains("/secrets/")).collect();
    assert_eq!(lists.len(), 4, "one LIST of our Secrets, of namespaces, of the cluster's projects, one GET: {reads:?}");
    assert!(lists.iter().any(|p| p.starts_with("/api/v1/secrets?")), "{reads:?}");
    assert!(lists.iter().any(|p| p.starts_with("/apis/management.cattle.io/v3/namespaces/c-abc12/projects?")));
    assert!(lists.iter().any(|p| p.as_str() == "/apis/management.cattle.io/v3/namespaces/local/projects/p-xyz34"));
    assert!(!reads.iter().any(|p| p.contains("c-other")), "another cluster is never read: {reads:?}");
}

#[tokio::test]
async fn a_star_lists_the_projects_of_every_cluster_at_once() {
    let store =
        rancher(&[("c-abc12", "p-one", "c-abc12-p-one"), ("local", "p-two", "p-two")], &["c-abc12-p-one", "p-two"]);
    let (fake, kube) = fake::target(store, projects(&["*", "local:p-two"]));

    let report = kube.sync(&fake::tokens("pw"), Default::default()).await.unwrap();

    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(written_namespaces(&fake), ["c-abc12-p-one", "p-two"]);
    assert_eq!(report.places, Some(Places { total: 2, missing: Vec::new() }));
    let seen = fake.take_seen();
    let projects: Vec<&str> =
        seen.iter().map(|s| s.path.as_str()).filter(|p| p.starts_with("/apis/management.cattle.io")).collect();
    assert_eq!(projects.len(), 1, "one LIST for every cluster, the id among them: {projects:?}");
    assert!(projects[0].starts_with("/apis/management.cattle.io/v3/projects?"), "{projects:?}");
}

fn project(cluster: &str, name: &str, backing: &str) -> DynamicObject {
    let mut object = DynamicObject::new(name, &resource()).within(cluster);
    object.data = serde_json::json!({ "status": { "backingNamespace": backing } });
    object
}

fn namespace(name: &str) -> PartialObjectMeta<Namespace> {
    let mut meta = PartialObjectMeta::<Namespace>::default();
    meta.metadata.name = Some(name.to_string());
    meta
}

fn ids(projects: Vec<Project>) -> Vec<String> {
    projects.into_iter().map(|p| p.id).collect()
}

#[test]
fn the_watch_writes_a_project_once_it_and_its_backing_namespace_both_exist() {
    let mut watch = ProjectWatch::default();
    watch.namespace_event(watcher::Event::Init);
    watch.namespace_event(watcher::Event::InitApply(namespace("c-a-p-old")));
    assert!(watch.namespace_exists("c-a-p-new"), "before the first LIST of namespaces, every one is tried");
    watch.namespace_event(watcher::Event::InitDone);
    assert!(!watch.namespace_exists("c-a-p-new"));

    // The project first, then its namespace.
    assert_eq!(watch.project_event(0, watcher::Event::Apply(project("c-a", "p-new", "c-a-p-new"))), ["c-a:p-new"]);
    assert!(!watch.namespace_exists("c-a-p-new"), "not written yet");
    assert_eq!(ids(watch.namespace_event(watcher::Event::Apply(namespace("c-a-p-new")))), ["c-a:p-new"]);
    assert!(watch.namespace_exists("c-a-p-new"));
    // The namespace first, then the project (or the project's status naming it later).
    watch.namespace_event(watcher::Event::Apply(namespace("c-a-p-later")));
    assert_eq!(watch.project_event(0, watcher::Event::Apply(project("c-a", "p-later", ""))), ["c-a:p-later"]);
    assert_eq!(watch.known["c-a:p-later"].0.namespace, "p-later", "no backing namespace yet: its own name");
    assert_eq!(
        watch.project_event(0, watcher::Event::Apply(project("c-a", "p-later", "c-a-p-later"))),
        ["c-a:p-later"]
    );
    assert!(watch.moved.contains("c-a:p-later"), "its new namespace is looked at afresh");
    assert!(
        watch.project_event(0, watcher::Event::Apply(project("c-a", "p-later", "c-a-p-later"))).is_empty(),
        "an unchanged project is not looked at again"
    );
}

#[test]
fn the_watch_forgets_a_removed_project_and_one_missing_from_a_new_list() {
    let mut watch = ProjectWatch::default();
    watch.project_event(0, watcher::Event::Apply(project("c-a", "p-one", "c-a-p-one")));
    watch.project_event(0, watcher::Event::Apply(project("c-a", "p-two", "c-a-p-two")));
    watch.project_event(1, watcher::Event::Apply(project("c-b", "p-three", "c-b-p-three")));

    assert_eq!(watch.project_event(0, watcher::Event::Delete(project("c-a", "p-one", "c-a-p-one"))), ["c-a:p-one"]);
    assert!(!watch.known.contains_key("c-a:p-one"));

    // Stream 0 lists again (it reconnected) without p-two: gone; stream 1's project is not touched.
    watch.project_event(0, watcher::Event::Init);
    watch.project_event(0, watcher::Event::InitDone);
    assert!(!watch.known.contains_key("c-a:p-two"));
    assert!(watch.known.contains_key("c-b:p-three"));

    // A project being deleted is forgotten at once.
    let deleting: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "management.cattle.io/v3", "kind": "Project",
        "metadata": {"name": "p-three", "namespace": "c-b", "deletionTimestamp": "2026-12-07T12:00:00Z"},
    }))
    .unwrap();
    assert_eq!(watch.project_event(1, watcher::Event::Apply(deleting)), ["c-b:p-three"]);
    assert!(watch.known.is_empty());
}

#[tokio::test]
async fn a_project_seen_by_the_watch_is_written_and_counted_and_waits_for_a_running_sync() {
    let store = rancher(&[("c-a", "p-one", "c-a-p-one")], &["c-a-p-one", "c-a-p-new"]);
    let (fake, kube) = fake::target(store, projects(&["c-a:*"]));
    let status = Status::new(&["t".into()]);
    let mut watch = ProjectWatch::default();
    let new = Project { id: "c-a:p-new".into(), name: "p-new".into(), namespace: "c-a-p-new".into() };

    kube.project_seen("t", &status, &mut watch, new.clone()).await;
    assert!(fake.take_seen().is_empty(), "nothing to write before the first sync");
    assert!(watch.deferred.contains("c-a:p-new"));

    kube.sync(&fake::tokens("pw"), Default::default()).await.unwrap();
    fake.take_seen();
    kube.state().syncing = true;
    watch.deferred.clear();
    kube.project_seen("t", &status, &mut watch, new.clone()).await;
    assert!(fake.take_seen().is_empty(), "left to the running sync");
    kube.state().syncing = false;

    kube.project_seen("t", &status, &mut watch, new.clone()).await;
    let secret = fake.secret("c-a-p-new", "ecr-credentials").expect("written by the watch");
    assert_eq!(secret["metadata"]["labels"]["management.cattle.io/project-scoped-secret"], "p-new");
    assert_eq!(kube.state().places(), Places { total: 2, missing: Vec::new() });
    fake.take_seen();
    kube.project_seen("t", &status, &mut watch, new).await;
    assert!(fake.take_seen().is_empty(), "a project that holds the current token is not read again");

    kube.forget_project("t", &status, "c-a:p-new");
    assert_eq!(kube.state().places(), Places { total: 1, missing: Vec::new() });
    assert!(fake.secret("c-a-p-new", "ecr-credentials").is_some(), "its Secret is left to Rancher");
}

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
