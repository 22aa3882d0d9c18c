#!/usr/bin/env python3
"""Checks of the Helm chart that need no cluster: run by deploy/helm/validate inside deploy/validate's
virtualenv (PyYAML, kubernetes-validate, jsonschema) after `helm template` rendered each values file.

Usage: check_helm.py <repo-root> <k8s-version> <render-dir>
  <render-dir>/<name>.yaml  the rendering of deploy/helm/ci/<name>.yaml
       check_helm.py --daemon-env <rendering> <work-dir> <ca-pem>
  prints the container's environment for running the daemon outside the cluster (see daemon_env)

Prints one line per check ("ok" / "FAIL") and exits 1 when any check failed.
"""

import base64
import json
import re
import sys
import tomllib
from pathlib import Path

import kubernetes_validate
import yaml

from dashboard import check_configmap
from report import report, summary
from rules import check_prometheus_rule

ROOT = Path(sys.argv[1] if sys.argv[1] != "--daemon-env" else ".").resolve()
K8S_VERSION = sys.argv[2]
RENDER_DIR = Path(sys.argv[3]).resolve()
CHART = ROOT / "deploy" / "helm" / "rancher-ecr-credentials"
CI = ROOT / "deploy" / "helm" / "ci"

# Environment variables the daemon reads besides those declared with `env = "..."` in src/: the AWS SDK's own,
# and the Kubernetes target's names fixed by issue 11 (checked against src/ once the target is there).
AWS_SDK_ENV = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL",
               "AWS_ENDPOINT_URL_ECR", "AWS_ENDPOINT_URL_STS", "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY",
               "AWS_CA_BUNDLE", "SSL_CERT_FILE"}
# Leader election (replicaCount above 1): the downward API's pod name and namespace, read by src/ with
# std::env::var (not declared with `env = "..."`).
LEADER_ENV = {"POD_NAME", "POD_NAMESPACE"}
KUBERNETES_ENV = {"KUBERNETES_NAMESPACES", "KUBERNETES_NAMESPACE_SELECTOR", "KUBERNETES_EXCLUDE_NAMESPACES",
                  "KUBERNETES_SECRET_NAME", "KUBERNETES_SERVICE_ACCOUNTS", "KUBERNETES_CONTEXT",
                  "KUBERNETES_ADOPT_SECRETS", "RANCHER_PROJECT_SECRETS", "KUBERNETES_DIAGNOSE_PULLS"}
# Keys of the configuration file: README "configuration file", plus the Kubernetes target's (issue 11).
SOURCE_KEYS = {"name", "region", "registry_ids", "role_arn", "external_id", "external_id_file", "session_name",
               "session_duration", "endpoint", "addresses", "public"}
TARGET_KEYS = {"name", "url", "api", "access_key", "access_key_file", "secret_key", "secret_key_file", "token",
               "token_file", "ca_bundle", "insecure_skip_verify", "timeout", "projects", "cluster", "environments",
               "auto_create",
               "sources", "kubeconfig", "context", "namespaces", "namespace_selector", "exclude_namespaces",
               "secret_name", "service_accounts", "adopt", "rancher_projects", "projects_check_interval",
               "diagnose_pulls"}
SECRET_FILE_KEYS = {"token", "access_key", "secret_key", "external_id"}
# The RBAC rules the Kubernetes target may have, and nothing else: issue 11's list, plus serviceaccounts
# list/watch (the daemon watches ServiceAccounts in every namespace; deploy/helm/validate shows the 403 without),
# plus projects list/watch for RANCHER_PROJECT_SECRETS c-xxxxx:* and * (issue 20; checked per form below).
# and issue 16's secrets list/watch by name (one LIST per cycle, the watch that restores them) and events.
ALLOWED_RULES = {
    ("", "namespaces"): {"list", "watch"},
    ("", "secrets"): {"get", "list", "watch", "create", "patch"},
    ("events.k8s.io", "events"): {"create", "patch"},
    ("", "serviceaccounts"): {"get", "patch", "list", "watch"},
    ("management.cattle.io", "projects"): {"get", "list", "watch"},
    # Leader election only: create, and get/update of the release's Lease by name, in its own namespace.
    ("coordination.k8s.io", "leases"): {"create", "get", "update"},
}
# KUBERNETES_DIAGNOSE_PULLS adds these, and only it (issue 19): kubelet's Events read and one written on the Pod,
# the Pod and its ServiceAccount read by name (pods are never listed).
DIAGNOSE_RULES = {
    ("", "events"): {"get", "list", "watch", "create"},
    ("", "pods"): {"get"},
    ("", "serviceaccounts"): {"get"},
}
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}


def cargo_version():
    m = re.search(r'(?ms)^\[package\].*?^version\s*=\s*"([^"]+)"', (ROOT / "Cargo.toml").read_text())
    return m.group(1) if m else None


def daemon_env_names():
    names = set()
    for path in (ROOT / "src").rglob("*.rs"):
        # clap's `env = "X"`, and the settings each API declares (src/setting.rs): `Setting::new("X", …)`,
        # `Setting { var: "X", … }`.
        names |= set(re.findall(r'(?:\benv\s*=\s*|\bvar:\s*|\bSetting::new\(\s*)"([A-Z0-9_]+)"',
                                path.read_text(encoding="utf-8")))
    return names


def walk(node, path=()):
    """Yields (dotted path, value) for every leaf and every mapping of a values tree."""
    if isinstance(node, dict):
        yield ".".join(path), node
        for k, v in node.items():
            yield from walk(v, path + (str(k),))
    else:
        yield ".".join(path), node


# --------------------------------------------------------------------------
def check_chart_metadata(version):
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    problems = []
    if chart.get("apiVersion") != "v2":
        problems.append("apiVersion must be v2")
    if str(chart.get("appVersion")) != version:
        problems.append(f"appVersion {chart.get('appVersion')!r} is not the Cargo.toml version {version!r}")
    for key in ("kubeVersion", "icon", "home", "sources", "description", "version"):
        if not chart.get(key):
            problems.append(f"{key} missing")
    ann = chart.get("annotations") or {}
    for key in ("catalog.cattle.io/display-name", "catalog.cattle.io/namespace", "catalog.cattle.io/release-name",
                "catalog.cattle.io/rancher-version", "catalog.cattle.io/kube-version"):
        if not ann.get(key):
            problems.append(f"annotation {key} missing")
    if ann.get("catalog.cattle.io/os") != "linux":
        problems.append("annotation catalog.cattle.io/os must be linux")
    icon = chart.get("icon", "")
    m = re.search(r"/main/(.+)$", icon)
    if m and not (ROOT / m.group(1)).exists():
        problems.append(f"icon {icon} names {m.group(1)}, which is not in the repository")
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    if values["image"]["tag"] not in ("", version):
        problems.append(f"values.yaml image.tag {values['image']['tag']!r} is neither empty nor {version}")
    report(f"Chart.yaml: apiVersion v2, appVersion = Cargo.toml version ({version}), Rancher annotations", problems)
    for name in ("README.md", "app-readme.md", "questions.yaml", "values.schema.json", "templates/NOTES.txt"):
        report(f"chart file {name} present", [] if (CHART / name).is_file() else ["missing"])


def check_questions():
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    schema = json.loads((CHART / "values.schema.json").read_text())
    leaves = dict(walk(values))
    questions = yaml.safe_load((CHART / "questions.yaml").read_text())["questions"]
    problems, groups = [], set()

    def schema_at(path):
        node = schema
        for part in path.split("."):
            node = (node.get("properties") or {}).get(part)
            if node is None:
                return None
        return node

    def check(q, parent_group):
        var = q.get("variable")
        group = q.get("group", parent_group)
        groups.add(group)
        if var not in leaves:
            problems.append(f"{var} is not a key of values.yaml")
            return
        node = schema_at(var)
        if node is None:
            problems.append(f"{var} is not in values.schema.json")
        if q.get("type") == "enum":
            allowed = set((node or {}).get("enum") or [])
            if allowed and set(q.get("options") or []) - allowed:
                problems.append(f"{var}: options {sorted(set(q['options']) - allowed)} are refused by the schema")
            if q.get("default") not in (q.get("options") or []):
                problems.append(f"{var}: default is not one of the options")
        if q.get("type") == "boolean" and not isinstance(leaves[var], bool):
            problems.append(f"{var}: a boolean question for a value that is not a boolean")
        if "default" in q and q.get("type") != "secret" and leaves[var] not in ([], {}) \
                and str(q["default"]) != str(leaves[var]):
            problems.append(f"{var}: default {q['default']!r} differs from values.yaml {leaves[var]!r}")
        show_if = q.get("show_if")
        if show_if:
            key, _, want = show_if.partition("=")
            if key not in leaves:
                problems.append(f"{var}: show_if names {key}, not a key of values.yaml")
        for sub in q.get("subquestions") or []:
            check(sub, group)

    for q in questions:
        check(q, None)
    if groups != {"AWS", "Proxy", "Target", "Daemon", "Monitoring"}:
        problems.append(f"groups are {sorted(map(str, groups))}, expected AWS, Proxy, Target, Daemon, Monitoring")
    report(f"questions.yaml: {len(questions)} questions name values.yaml keys the schema accepts", problems)


def check_values_documented():
    """Every key of values.yaml has a comment on the line above it or in the block above it."""
    lines = (CHART / "values.yaml").read_text().splitlines()
    problems = []
    for i, line in enumerate(lines):
        m = re.match(r"^(\s*)([A-Za-z][A-Za-z0-9]*):", line)
        if not m:
            continue
        prev = lines[i - 1].strip() if i else ""
        nested_parent = i + 1 < len(lines) and re.match(r"^\s+", lines[i + 1] or "") and \
            len(lines[i + 1]) - len(lines[i + 1].lstrip()) > len(m.group(1)) and line.rstrip().endswith(":")
        if not prev.startswith("#") and not nested_parent and not re.match(r"^\s*[A-Za-z]", prev or "x"):
            problems.append(f"values.yaml line {i + 1}: {m.group(2)} has no comment")
    report("values.yaml: every setting documented", problems)


# --------------------------------------------------------------------------
def validate_k8s(doc):
    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as e:
        return f"{'/'.join(str(p) for p in e.path)}: {e.message}"
    except kubernetes_validate.SchemaNotFoundError:
        return f"no schema for {doc.get('apiVersion')} {doc.get('kind')} in Kubernetes {K8S_VERSION}"
    return None


def check_render(name, docs, values, version, env_names):
    label = f"{name}"
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)

    # Kubernetes schemas, strict.
    problems = []
    for d in docs:
        if d["kind"] in CRD_KINDS:
            continue
        err = validate_k8s(d)
        if err:
            problems.append(f"{d['kind']}/{d['metadata']['name']}: {err}")
    report(f"{label}: kubernetes-validate {K8S_VERSION} strict ({len(docs)} objects)", problems)

    # The Deployment: security, probes, port, checksum, image tag, references.
    problems = []
    deployments = by_kind.get("Deployment", [])
    if len(deployments) != 1:
        report(f"{label}: one Deployment", [f"{len(deployments)} Deployments"])
        return
    dep = deployments[0]
    pod = dep["spec"]["template"]["spec"]
    psc = pod.get("securityContext", {})
    (c,) = pod["containers"]
    sc = c.get("securityContext", {})
    for where, ctx in (("pod", psc), ("container", sc)):
        if ctx.get("runAsNonRoot") is not True or ctx.get("runAsUser") != 65532:
            problems.append(f"{where}: not runAsNonRoot with uid 65532")
        if (ctx.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
            problems.append(f"{where}: seccompProfile is not RuntimeDefault")
    if sc.get("readOnlyRootFilesystem") is not True:
        problems.append("readOnlyRootFilesystem is not true")
    if sc.get("allowPrivilegeEscalation") is not False:
        problems.append("allowPrivilegeEscalation is not false")
    if (sc.get("capabilities") or {}).get("drop") != ["ALL"]:
        problems.append("capabilities do not drop ALL")
    ha = int(values.get("replicaCount") or 1) > 1
    strategy = dep["spec"].get("strategy", {}).get("type")
    if not ha and (dep["spec"].get("replicas") != 1 or strategy != "Recreate"):
        problems.append("not one replica with strategy Recreate")
    if ha and (dep["spec"].get("replicas") != int(values["replicaCount"]) or strategy != "RollingUpdate"):
        problems.append(f"not {values['replicaCount']} replicas with strategy RollingUpdate")
    if not c.get("resources", {}).get("requests") or not c.get("resources", {}).get("limits"):
        problems.append("no resource requests and limits")
    tag = c["image"].rsplit(":", 1)[-1]
    want_tag = (values.get("image") or {}).get("tag") or version
    if tag != want_tag:
        problems.append(f"image tag {tag} is not {want_tag}")
    if not dep["spec"]["template"]["metadata"].get("annotations", {}).get("checksum/config"):
        problems.append("no checksum/config annotation on the pod")
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    configmaps = {d["metadata"]["name"]: d for d in by_kind.get("ConfigMap", [])}
    env_cm = configmaps.get(((c.get("envFrom") or [{}])[0].get("configMapRef") or {}).get("name"))
    if env_cm is None:
        problems.append("the envFrom ConfigMap is not in the rendering")
        env = {}
    else:
        env = dict(env_cm.get("data") or {})
    listen = int(env.get("LISTEN_PORT", 8080))
    if ports.get("http-metrics") != listen:
        problems.append(f"container port http-metrics {ports.get('http-metrics')} is not LISTEN_PORT {listen}")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"), ("startupProbe", "/healthz")):
        get = (c.get(probe) or {}).get("httpGet") or {}
        if get.get("path") != path or get.get("port") not in ("http-metrics", listen):
            problems.append(f"{probe} is not GET {path} on the daemon's port")
    for e in c.get("env", []):
        env[e["name"]] = e.get("value", "<from secret>")
    unknown = set(env) - env_names - set((values.get("daemon") or {}).get("extraEnv") or {})
    if unknown:
        problems.append(f"environment variables the daemon does not read: {sorted(unknown)}")
    mounts = {m["name"]: m["mountPath"] for m in c.get("volumeMounts", [])}
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    if set(mounts) != set(volumes):
        problems.append(f"volumes {sorted(volumes)} and mounts {sorted(mounts)} differ")
    for key, value in env.items():
        if key.endswith("_FILE") and not any(value.startswith(p + "/") for p in mounts.values()):
            problems.append(f"{key}={value} is not under a mounted volume")
    sa_names = {d["metadata"]["name"] for d in by_kind.get("ServiceAccount", [])}
    if pod.get("serviceAccountName") not in sa_names:
        problems.append(f"ServiceAccount {pod.get('serviceAccountName')} is not in the rendering")
    lease_rules = {"coordination.k8s.io"}
    target_roles = [r for kind in ("ClusterRole", "Role") for r in by_kind.get(kind, [])
                    if any(set(rule.get("apiGroups", [])) - lease_rules for rule in r.get("rules", []))]
    uses_k8s = bool(target_roles) or ha
    if pod.get("automountServiceAccountToken") is not uses_k8s:
        problems.append(f"automountServiceAccountToken is {pod.get('automountServiceAccountToken')} "
                        f"with{'' if uses_k8s else 'out'} RBAC")
    for svc in by_kind.get("Service", []):
        labels = dep["spec"]["template"]["metadata"]["labels"]
        if any(labels.get(k) != v for k, v in svc["spec"]["selector"].items()):
            problems.append(f"Service {svc['metadata']['name']} selects no pod of the Deployment")
    report(f"{label}: Deployment (non-root, read-only, no capabilities, probes, checksum, env names, mounts)",
           problems)

    # AWS credentials: IRSA annotates the ServiceAccount, keys come from a Secret; with EKS Pod Identity (and the
    # node's role) the chart gives neither: the association and the EKS webhook do it all.
    problems = []
    how = values["aws"]["credentials"]
    annotations = {}
    for sa in by_kind.get("ServiceAccount", []):
        annotations.update(sa["metadata"].get("annotations") or {})
    role_annotation = annotations.get("eks.amazonaws.com/role-arn")
    if how == "irsa" and role_annotation != values["aws"]["irsa"]["roleArn"]:
        problems.append(f"ServiceAccount role-arn annotation is {role_annotation!r}, not aws.irsa.roleArn")
    if how != "irsa" and role_annotation is not None:
        problems.append(f"ServiceAccount annotated with role-arn {role_annotation!r} with aws.credentials={how}")
    has_keys = "AWS_ACCESS_KEY_ID" in env or "AWS_SECRET_ACCESS_KEY" in env
    if has_keys != (how == "secret"):
        problems.append(f"AWS keys {'given' if has_keys else 'missing'} with aws.credentials={how}")
    webhook = {"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
               "AWS_WEB_IDENTITY_TOKEN_FILE"} & set(env)
    if webhook:
        problems.append(f"{sorted(webhook)} set by the chart: the EKS webhook sets them (a value here hides its)")
    report(f"{label}: AWS credentials ({how}: ServiceAccount annotation, keys)", problems)

    # Mode-specific settings.
    problems = []
    mode = values["target"]["mode"]
    expect = {"rancher": "CATTLE_URL", "kubernetes": None, "rancher-project-secrets": "RANCHER_PROJECT_SECRETS",
              "file": "CONFIG_FILE"}[mode]
    if mode == "kubernetes" and not ({"KUBERNETES_NAMESPACES", "KUBERNETES_NAMESPACE_SELECTOR"} & set(env)):
        problems.append("no KUBERNETES_NAMESPACES or KUBERNETES_NAMESPACE_SELECTOR")
    if expect and expect not in env:
        problems.append(f"no {expect}")
    for other in ("CATTLE_URL", "RANCHER_PROJECT_SECRETS", "KUBERNETES_NAMESPACES", "CONFIG_FILE"):
        if other in env and other != expect and not (mode == "kubernetes" and other == "KUBERNETES_NAMESPACES"):
            problems.append(f"{other} set in mode {mode}")
    for k, v in env.items():
        if k in ("RANCHER_TOKEN", "CATTLE_ACCESS_KEY", "CATTLE_SECRET_KEY", "AWS_ROLE_EXTERNAL_ID",
                 "AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID") and v != "<from secret>":
            problems.append(f"{k} is a plain value, not a Secret reference")
    if mode == "file":
        cm = configmaps.get(f"{dep['metadata']['name']}-config")
        if not cm:
            problems.append("no configuration file ConfigMap")
        else:
            try:
                toml = tomllib.loads(cm["data"]["config.toml"])
            except (tomllib.TOMLDecodeError, KeyError) as e:
                problems.append(f"config.toml does not parse: {e}")
                toml = {}
            secret_dir = mounts.get("file-secrets")
            projected = [s["secret"] for s in (volumes.get("file-secrets") or {}).get("projected", {}).get("sources", [])]
            paths = {f"{secret_dir}/{item['path']}" for s in projected for item in s["items"]}
            for kind, allowed in (("source", SOURCE_KEYS), ("target", TARGET_KEYS)):
                for entry in toml.get(kind, []):
                    unknown = set(entry) - allowed
                    if unknown:
                        problems.append(f"{kind} {entry.get('name')}: keys the daemon does not know {sorted(unknown)}")
                    if set(entry) & SECRET_FILE_KEYS:
                        problems.append(f"{kind} {entry.get('name')}: a secret value in the ConfigMap")
                    for key, value in entry.items():
                        if key.endswith("_file") and value not in paths:
                            problems.append(f"{kind} {entry.get('name')}.{key} = {value} is not a mounted file")
            if set(toml) - {"source", "target"}:
                problems.append(f"unknown tables {sorted(set(toml) - {'source', 'target'})}")
            n_targets = len(values["configFile"]["targets"])
            if len(toml.get("target", [])) != n_targets:
                problems.append(f"{len(toml.get('target', []))} targets in the file, {n_targets} in the values")
    report(f"{label}: settings of mode {mode}, no secret value in a ConfigMap", problems)

    # Secrets: rendered only when the values hold an explicit secret value.
    explicit = [p for p, v in walk(values) if v and isinstance(v, str) and re.search(
        r"(token\.value|secret\.accessKeyId|secret\.secretAccessKey|externalId\.value)$", p)]
    secrets = by_kind.get("Secret", [])
    problems = []
    if secrets and not explicit:
        problems.append("a Secret is rendered though no secret value was given")
    if explicit and not secrets:
        problems.append(f"{explicit} given but no Secret rendered")
    for s in secrets:
        for key, value in (s.get("data") or {}).items():
            base64.b64decode(value, validate=True)
    report(f"{label}: Secret only from explicit values ({', '.join(explicit) or 'none'})", problems)

    # RBAC: exactly the rules of the Kubernetes target.
    problems = []
    granted = {}
    needs_diagnose = env.get("KUBERNETES_DIAGNOSE_PULLS") == "true" or (
        mode == "file" and any(t.get("diagnose_pulls") for t in values["configFile"]["targets"]))
    allowed = {key: ALLOWED_RULES.get(key, set()) | (DIAGNOSE_RULES.get(key, set()) if needs_diagnose else set())
               for key in set(ALLOWED_RULES) | set(DIAGNOSE_RULES)}
    for kind in ("ClusterRole", "Role"):
        for role in by_kind.get(kind, []):
            for rule in role.get("rules", []):
                if set(rule.get("verbs", [])) & {"get", "list", "watch", "patch"} \
                        and rule.get("resources") == ["secrets"] and not rule.get("resourceNames"):
                    problems.append(f"{kind} {role['metadata']['name']}: get/list/watch/patch of every Secret, not by name")
                for group in rule.get("apiGroups", []):
                    for res in rule.get("resources", []):
                        verbs = set(rule.get("verbs", []))
                        extra = verbs - allowed.get((group, res), set())
                        if extra:
                            problems.append(f"{kind} {role['metadata']['name']}: {res}.{group or 'core'} {sorted(extra)} "
                                            "is more than the Kubernetes target needs")
                        granted.setdefault((group, res), set()).update(verbs)
    needs_sa = bool(env.get("KUBERNETES_SERVICE_ACCOUNTS")) or (
        mode == "file" and any(t.get("service_accounts") for t in values["configFile"]["targets"]))
    if target_roles:
        if ("", "secrets") not in granted:
            problems.append("no rule for secrets")
        elif not {"list", "watch"} <= granted[("", "secrets")]:
            problems.append("secrets list/watch by name missing (one LIST per cycle, and the watch that restores them)")
        if ("events.k8s.io", "events") not in granted:
            problems.append("no rule for events (events.k8s.io create/patch)")
        if (needs_sa or needs_diagnose) != (("", "serviceaccounts") in granted):
            problems.append(f"serviceaccounts rule {'missing' if needs_sa or needs_diagnose else 'not needed'}")
        if needs_diagnose != (("", "events") in granted and ("", "pods") in granted):
            problems.append(f"events and pods rules {'missing' if needs_diagnose else 'not needed'}")
    elif mode != "rancher":
        problems.append(f"mode {mode} without RBAC")
    # Projects, by form: ids get only; c-xxxxx:* list/watch in the cluster's namespace only (a Role); * list/watch
    # everywhere (a ClusterRole); either pattern also namespaces list/watch and the Secret in every namespace.
    if mode == "file":
        forms = [p for t in values["configFile"]["targets"] for p in (t.get("rancher_projects") or [])]
    else:
        forms = [p.strip() for p in (env.get("RANCHER_PROJECT_SECRETS") or "").split(",") if p.strip()]
    watching = {}  # namespace (None: cluster-wide) -> projects verbs
    cluster_rules = {}
    for kind in ("ClusterRole", "Role"):
        for role in by_kind.get(kind, []):
            for rule in role.get("rules", []):
                for group in rule.get("apiGroups", []):
                    for res in rule.get("resources", []):
                        if kind == "ClusterRole":
                            cluster_rules.setdefault((group, res), set()).update(rule.get("verbs", []))
                        if (group, res) == ("management.cattle.io", "projects") and "watch" in rule.get("verbs", []):
                            watching.setdefault(role["metadata"].get("namespace"), set()).update(rule["verbs"])
    want = set()
    if "*" in forms:
        want = {None}
    else:
        want = {f[:-2] for f in forms if f.endswith(":*")}
    if set(watching) != want:
        problems.append(f"projects list/watch granted in {sorted(map(str, watching))}, the forms {forms} need "
                        f"{sorted(map(str, want))} (None: cluster-wide)")
    if want:
        if not {"list", "watch"} <= cluster_rules.get(("", "namespaces"), set()):
            problems.append("c-xxxxx:* or * without namespaces list/watch (a new project's backing namespace)")
        if "create" not in cluster_rules.get(("", "secrets"), set()):
            problems.append("c-xxxxx:* or * without the Secret in every namespace (backing namespaces to come)")
    if ha != (("coordination.k8s.io", "leases") in granted):
        problems.append(f"Lease rules {'missing' if ha else 'rendered'} with replicaCount {values.get('replicaCount')}")
    bound = {(b["roleRef"]["kind"], b["roleRef"]["name"], b["metadata"].get("namespace"))
             for kind in ("ClusterRoleBinding", "RoleBinding") for b in by_kind.get(kind, [])}
    for kind in ("ClusterRole", "Role"):
        for role in by_kind.get(kind, []):
            key = (kind, role["metadata"]["name"], role["metadata"].get("namespace"))
            if key not in bound:
                problems.append(f"{kind} {role['metadata']['name']} is not bound")
    for kind in ("ClusterRoleBinding", "RoleBinding"):
        for b in by_kind.get(kind, []):
            for s in b["subjects"]:
                if s["kind"] != "ServiceAccount" or s["name"] not in sa_names:
                    problems.append(f"{kind} {b['metadata']['name']} binds {s}, not the chart's ServiceAccount")
    summary = ", ".join(sorted(f"{r}:{'/'.join(sorted(v))}" for (g, r), v in granted.items())) or "none"
    report(f"{label}: RBAC is the Kubernetes target's rules only ({summary})", problems)

    # High availability: leader election exactly when replicaCount is above 1, with what it needs.
    problems = []
    release_ns = dep["metadata"].get("namespace")
    field_refs = {e["name"]: ((e.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath")
                  for e in c.get("env", [])}
    if ha:
        if env.get("LEADER_ELECTION") != "true":
            problems.append("LEADER_ELECTION is not true")
        if field_refs.get("POD_NAME") != "metadata.name" or field_refs.get("POD_NAMESPACE") != "metadata.namespace":
            problems.append(f"POD_NAME/POD_NAMESPACE not from the downward API: {field_refs}")
        lease = env.get("LEADER_ELECTION_LEASE_NAME", "rancher-ecr-credentials")
        for role in by_kind.get("Role", []):
            for rule in role.get("rules", []):
                if "leases" not in rule.get("resources", []):
                    continue
                if role["metadata"].get("namespace") != release_ns:
                    problems.append(f"Lease rights in {role['metadata'].get('namespace')}, not the release's namespace")
                if set(rule["verbs"]) & {"get", "update"} and rule.get("resourceNames") != [lease]:
                    problems.append(f"leases get/update not limited to the Lease {lease}: {rule.get('resourceNames')}")
        if any("leases" in rule.get("resources", []) for r in by_kind.get("ClusterRole", [])
               for rule in r.get("rules", [])):
            problems.append("Lease rights cluster-wide")
        pdbs = by_kind.get("PodDisruptionBudget", [])
        labels = dep["spec"]["template"]["metadata"]["labels"]
        if len(pdbs) != 1 or pdbs[0]["spec"].get("minAvailable") != 1 or any(
                labels.get(k) != v for k, v in pdbs[0]["spec"]["selector"]["matchLabels"].items()):
            problems.append("no PodDisruptionBudget with minAvailable 1 selecting the pods")
    else:
        if {"LEADER_ELECTION", "POD_NAME", "POD_NAMESPACE"} & set(env) or by_kind.get("PodDisruptionBudget"):
            problems.append("leader election settings or a PodDisruptionBudget with one replica")
    report(f"{label}: high availability ({values.get('replicaCount', 1)} replica(s): "
           f"{'leader election, RollingUpdate, PDB, Lease RBAC' if ha else 'Recreate, no election'})", problems)

    # Monitoring objects.
    problems = []
    mon = values.get("monitoring") or {}
    for kind, key in (("ServiceMonitor", "serviceMonitor"), ("PrometheusRule", "prometheusRule")):
        want = bool((mon.get(key) or {}).get("enabled"))
        if want != bool(by_kind.get(kind)):
            problems.append(f"{kind} {'missing' if want else 'rendered though disabled'}")
    for sm in by_kind.get("ServiceMonitor", []):
        ports = {p["name"] for s in by_kind.get("Service", []) for p in s["spec"]["ports"]}
        for ep in sm["spec"]["endpoints"]:
            if ep.get("port") not in ports:
                problems.append(f"ServiceMonitor endpoint port {ep.get('port')} is not a Service port")
    # The Grafana dashboard: a ConfigMap holding deploy/monitoring/grafana's file, where and as the values say.
    board = values.get("grafanaDashboard") or {}
    release_ns = next((d["metadata"].get("namespace") for d in by_kind.get("Deployment", [])), None)
    boards = [d for d in by_kind.get("ConfigMap", []) if "grafana_dashboard" in (d["metadata"].get("labels") or {})]
    if bool(board.get("enabled")) != bool(boards):
        problems.append(f"dashboard ConfigMap {'missing' if board.get('enabled') else 'rendered though disabled'}")
    for cm in boards:
        problems += check_configmap(cm, board.get("namespace") or release_ns, str(board.get("labelValue")))
    report(f"{label}: monitoring objects as asked", problems)
    # The alerts: checked by promtool and unit-tested with deploy/monitoring/tests/, the same tests as
    # deploy/kubernetes/monitoring's, so the chart's alerts behave as those do.
    extra = (mon.get("prometheusRule") or {}).get("additionalAlertLabels") or {}
    for n, rule in enumerate(by_kind.get("PrometheusRule", [])):
        check_prometheus_rule(f"{label}: PrometheusRule {rule['metadata']['name']}", rule,
                              RENDER_DIR / "rules" / f"{name}-{n}", alert_labels=extra)


def daemon_env(render, workdir, ca):
    """Prints, one NAME=VALUE a line, the environment the rendering gives the daemon's container (the envFrom
    ConfigMap, env entries; Secret values as placeholders), with every mounted file it names made under workdir
    (placeholders; a CA bundle is the PEM file ca). For `--check-config` outside the cluster."""
    workdir = Path(workdir)
    docs = [d for d in yaml.safe_load_all(Path(render).read_text()) if d]
    dep = next(d for d in docs if d["kind"] == "Deployment")
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    configmaps = {d["metadata"]["name"]: d.get("data") or {} for d in docs if d["kind"] == "ConfigMap"}
    env = {}
    for ef in c.get("envFrom", []):
        env.update(configmaps[ef["configMapRef"]["name"]])
    # The downward API's values as a pod would have them (leader election).
    field = {"metadata.name": "recs-0", "metadata.namespace": dep["metadata"].get("namespace") or "default"}
    for e in c.get("env", []):
        placeholder = "http://proxy-user:placeholder@proxy.invalid:3128" if e["name"] == "HTTPS_PROXY" \
            else "placeholder-from-a-secret"
        ref = ((e.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath")
        env[e["name"]] = e.get("value", field.get(ref, placeholder))
    mounts = [m["mountPath"] for m in c.get("volumeMounts", [])]

    def local(path):
        if not any(path.startswith(m + "/") for m in mounts):
            return path
        out = workdir / path.lstrip("/")
        out.parent.mkdir(parents=True, exist_ok=True)
        if not out.exists():
            is_ca = path in (env.get("CATTLE_CA_BUNDLE"), env.get("AWS_CA_BUNDLE"))
            out.write_text(Path(ca).read_text() if is_ca else "placeholder\n")
        return str(out)

    if "CONFIG_FILE" in env:
        text = next(v["config.toml"] for v in configmaps.values() if "config.toml" in v)
        for path in set(re.findall(r'_file = "([^"]+)"', text)):
            text = text.replace(f'"{path}"', f'"{local(path)}"')
        out = workdir / env["CONFIG_FILE"].lstrip("/")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        env["CONFIG_FILE"] = str(out)
    for key, value in env.items():
        if key.endswith("_FILE") and key != "CONFIG_FILE" or key in ("CATTLE_CA_BUNDLE", "AWS_CA_BUNDLE"):
            env[key] = local(value)
    for key, value in env.items():
        print(f"{key}={value}")


def main():
    if sys.argv[1] == "--daemon-env":
        daemon_env(*sys.argv[2:5])
        return 0
    version = cargo_version()
    env_names = daemon_env_names() | AWS_SDK_ENV | KUBERNETES_ENV | LEADER_ENV
    src_has_k8s = "KUBERNETES_NAMESPACES" in daemon_env_names()
    if src_has_k8s:
        missing = KUBERNETES_ENV - daemon_env_names()
        report("the daemon reads the Kubernetes target's variables the chart sets",
               [f"not in src/: {sorted(missing)}"] if missing else [])
    for step in (lambda: check_chart_metadata(version), check_questions, check_values_documented):
        try:
            step()
        except Exception as e:  # one crash must not hide the other checks
            report("chart metadata check crashed", [f"{type(e).__name__}: {e}"])
    renders = sorted(RENDER_DIR.glob("*.yaml"))
    if not renders:
        report("renderings present", [f"none in {RENDER_DIR}"])
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    for path in renders:
        values_file = CI / path.name
        values = json.loads(json.dumps(defaults))

        def merge(base, over):
            for k, v in over.items():
                if isinstance(v, dict) and isinstance(base.get(k), dict):
                    merge(base[k], v)
                else:
                    base[k] = v
        merge(values, yaml.safe_load(values_file.read_text()) if values_file.exists() else {})
        try:
            docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
            check_render(path.stem, docs, values, version, env_names)
        except Exception as e:
            report(f"{path.stem}: check crashed", [f"{type(e).__name__}: {e}"])
    return summary()


if __name__ == "__main__":
    sys.exit(main())
