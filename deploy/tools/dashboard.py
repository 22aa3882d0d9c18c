"""The Grafana dashboard deploy/monitoring/grafana/rancher-ecr-credentials.json: what check_deploy.py checks in the
file (and in the chart's copy of it), and what check_helm.py checks in a rendering's ConfigMap.

The file: a current schema (39 or later), a `datasource` variable of type datasource for Prometheus and no other
data source anywhere (no hard-coded uid, no `__inputs` of an export), every panel with a query over our metrics
(the README's table; rancher_ecr_credentials_leader is announced for leader election), and every metric of that
table shown somewhere. That each query returns data from the real daemon is tests/it/prometheus.rs's part.
"""

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "monitoring" / "grafana" / "rancher-ecr-credentials.json"
CHART_COPY = ROOT / "deploy" / "helm" / "rancher-ecr-credentials" / "dashboards" / DASHBOARD.name
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# Metrics the dashboard may show before the daemon has them: the leader panel waits for leader election.
ANNOUNCED = {"rancher_ecr_credentials_leader"}
MIN_SCHEMA_VERSION = 39


def readme_metrics():
    """The metric names of the README's Metrics table."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text.split("### Metrics", 1)[1].split("\n\n", 2)[1]
    return set(re.findall(r"^\| `(rancher_ecr_credentials_[a-z_]+)` \|", table, re.M))


def series_names(metric):
    """A metric's own name and its histogram series' (the README names a histogram by its base name)."""
    return {metric, metric + "_bucket", metric + "_sum", metric + "_count"}


def panels(dashboard):
    """Every panel, those inside collapsed rows included, rows themselves excluded."""
    for p in dashboard.get("panels", []):
        if p.get("type") == "row":
            yield from p.get("panels", [])
        else:
            yield p


def datasources(node, path="$"):
    """Yields (path, value) of every `datasource` key in the JSON."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "datasource":
                yield f"{path}.{k}", v
            yield from datasources(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from datasources(v, f"{path}[{i}]")


def check_file(text):
    """Problems of the dashboard JSON text; an empty list when it is as described above."""
    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        return [f"not JSON: {e}"]
    problems = []
    if not isinstance(d.get("schemaVersion"), int) or d["schemaVersion"] < MIN_SCHEMA_VERSION:
        problems.append(f"schemaVersion {d.get('schemaVersion')!r}: want {MIN_SCHEMA_VERSION} or later")
    for key in ("uid", "title"):
        if not d.get(key):
            problems.append(f"no {key}")
    if d.get("id") is not None:
        problems.append("id must be null (Grafana assigns it)")
    if "__inputs" in d or "${DS_" in text:
        problems.append("an export's __inputs/${DS_…}: use the datasource variable instead")
    variables = {v.get("name"): v for v in (d.get("templating") or {}).get("list", [])}
    ds = variables.get("datasource") or {}
    if ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        problems.append("no variable `datasource` of type datasource with query prometheus")
    for name, v in variables.items():
        if v.get("type") == "query" and not re.fullmatch(r"label_values\(rancher_ecr_credentials_\w+.*, \w+\)",
                                                         str(v.get("query"))):
            problems.append(f"variable {name}: query {v.get('query')!r} is not label_values() over our metrics")
    for path, value in datasources(d):
        if value != DATASOURCE:
            problems.append(f"{path} is {value!r}, not the variable {DATASOURCE!r}")
    known = set().union(*(series_names(m) for m in readme_metrics())) | ANNOUNCED
    shown, ids = set(), set()
    for p in panels(d):
        label = f"panel {p.get('id')} {p.get('title')!r}"
        if not p.get("title") or not p.get("gridPos"):
            problems.append(f"{label}: no title or gridPos")
        if p.get("id") in ids:
            problems.append(f"{label}: id used twice")
        ids.add(p.get("id"))
        if p.get("datasource") != DATASOURCE:
            problems.append(f"{label}: its datasource is not the variable")
        exprs = [t.get("expr", "") for t in p.get("targets", [])]
        if not exprs or not all(exprs):
            problems.append(f"{label}: a panel without a query, or a query without an expression")
        for expr in exprs:
            used = set(re.findall(r"\brancher_ecr_credentials_[a-z_]+", expr))
            if not used:
                problems.append(f"{label}: {expr!r} uses none of our metrics")
            for name in sorted(used - known):
                problems.append(f"{label}: {name} is not in the README's metrics table")
            shown |= used
    for metric in sorted(readme_metrics()):
        if not series_names(metric) & shown:
            problems.append(f"{metric} (README's metrics table) is on no panel")
    return problems


def check_configmap(configmap, want_namespace, want_label):
    """Problems of a rendering's dashboard ConfigMap: namespace, label, and the file, byte for byte."""
    problems = []
    meta = configmap["metadata"]
    if meta.get("namespace") != want_namespace:
        problems.append(f"dashboard ConfigMap in namespace {meta.get('namespace')!r}, not {want_namespace!r}")
    if (meta.get("labels") or {}).get("grafana_dashboard") != want_label:
        problems.append(f"dashboard ConfigMap label grafana_dashboard={(meta.get('labels') or {}).get('grafana_dashboard')!r},"
                        f" not {want_label!r}")
    data = configmap.get("data") or {}
    if list(data) != [DASHBOARD.name]:
        problems.append(f"dashboard ConfigMap keys {sorted(data)}, want [{DASHBOARD.name}]")
    elif data[DASHBOARD.name] != DASHBOARD.read_text(encoding="utf-8"):
        problems.append(f"dashboard ConfigMap's {DASHBOARD.name} differs from {DASHBOARD.relative_to(ROOT)}")
    return problems
