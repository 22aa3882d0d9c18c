#!/usr/bin/env python3
"""The alert rules, checked and unit-tested by Prometheus' own promtool (Debian's and Ubuntu's `prometheus`
package): `promtool check rules` on a PrometheusRule's spec.groups, then `promtool test rules` with every file of
deploy/monitoring/tests/ against them.

Used by check_deploy.py (deploy/kubernetes/monitoring/prometheusrule.yaml) and check_helm.py (each chart rendering
with monitoring.prometheusRule.enabled). Without promtool the checks print SKIP, or fail when REQUIRE_PROMETHEUS=1
(.ci/run and the GitHub workflow set it). By hand, in deploy/validate's virtualenv:

  target/deploy-venv/bin/python deploy/tools/rules.py deploy/kubernetes/monitoring/prometheusrule.yaml
"""

import copy
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from report import report, summary

TESTS = Path(__file__).resolve().parents[1] / "monitoring" / "tests"
# The namespace the test files' series and expectations are written for; replaced with the PrometheusRule's own.
TEST_NAMESPACE = "ecr-system"
PROMTOOL_TIMEOUT = 120


def promtool():
    """The promtool to run (PROMTOOL, else PATH), or None."""
    return os.environ.get("PROMTOOL") or shutil.which("promtool")


def promtool_version():
    tool = promtool()
    if not tool:
        return None
    out = subprocess.run([tool, "--version"], capture_output=True, text=True, timeout=30)
    first = (out.stdout or out.stderr).splitlines()[:1]
    return first[0] if first else tool


def absent_labels(expr):
    """The labels an `absent(metric{a="b"})` alert carries: absent() copies its selector's equality matchers."""
    m = re.fullmatch(r"\s*absent\(\s*[a-zA-Z_:][a-zA-Z0-9_:]*\s*\{(.*)\}\s*\)\s*", expr)
    return dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"([^"]*)"', m.group(1))) if m else {}


def adapt(test_text, rule_doc, alert_labels):
    """A test file's text adapted to these rules: their namespace, the labels added to every alert, and those
    absent() alerts copy from their selector."""
    namespace = (rule_doc.get("metadata") or {}).get("namespace") or TEST_NAMESPACE
    test = yaml.safe_load(test_text.replace(TEST_NAMESPACE, namespace))
    from_absent = {r["alert"]: absent_labels(str(r["expr"]))
                   for g in rule_doc["spec"]["groups"] for r in g.get("rules", []) if r.get("alert")}
    for case in test.get("tests", []):
        for check in case.get("alert_rule_test", []):
            for alert in check.get("exp_alerts") or []:
                labels = alert.setdefault("exp_labels", {})
                labels.update(from_absent.get(check["alertname"], {}))
                labels.update(alert_labels or {})
    return test


def check_prometheus_rule(label, rule_doc, workdir, alert_labels=None):
    """`promtool check rules` and `promtool test rules` (every file of deploy/monitoring/tests/) on one
    PrometheusRule object; reports one line for each, or SKIP without promtool."""
    tool = promtool()
    if not tool:
        why = "no promtool: install Debian's prometheus package (apt-get install prometheus), or set PROMTOOL"
        if os.environ.get("REQUIRE_PROMETHEUS") == "1":
            report(f"{label}: promtool check rules", [f"{why} (REQUIRE_PROMETHEUS=1)"])
        else:
            print(f"SKIP {label}: promtool check/test rules ({why})")
        return
    workdir = Path(workdir)
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    groups = (rule_doc.get("spec") or {}).get("groups") or []
    rules = workdir / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False), encoding="utf-8")
    alerts = {r["alert"] for g in groups for r in g.get("rules", []) if r.get("alert")}

    out = subprocess.run([tool, "check", "rules", str(rules)], capture_output=True, text=True,
                         timeout=PROMTOOL_TIMEOUT)
    text = (out.stdout + out.stderr).strip()
    found = re.search(r"SUCCESS: (\d+) rules found", text)
    report(f"{label}: promtool check rules ({found.group(1) + ' rules' if found else 'failed'})",
           [] if out.returncode == 0 else text.splitlines() or [f"exit {out.returncode}"])

    test_files = sorted(TESTS.glob("*.yaml"))
    if not test_files:
        report(f"{label}: promtool test rules", [f"no test files in {TESTS}"])
    for path in test_files:
        test = adapt(path.read_text(encoding="utf-8"), rule_doc, alert_labels)
        # Every alert is shown firing somewhere, and every alert a test names exists.
        problems = []
        named = {c["alertname"] for t in test.get("tests", []) for c in t.get("alert_rule_test", [])}
        fired = {c["alertname"] for t in test.get("tests", []) for c in t.get("alert_rule_test", [])
                 if c.get("exp_alerts")}
        problems += [f"no test case in which {a} fires" for a in sorted(alerts - fired)]
        problems += [f"a test names {a}, which the rules do not have" for a in sorted(named - alerts)]
        copy_path = workdir / path.name
        copy_path.write_text(yaml.safe_dump(test, sort_keys=False, width=1000), encoding="utf-8")
        out = subprocess.run([tool, "test", "rules", str(copy_path)], capture_output=True, text=True,
                             timeout=PROMTOOL_TIMEOUT)
        if out.returncode != 0:
            problems += [line for line in (out.stdout + out.stderr).splitlines() if line.strip()] \
                or [f"exit {out.returncode}"]
        cases = len(test.get("tests", []))
        report(f"{label}: promtool test rules {path.relative_to(TESTS.parents[1].parent)} ({cases} cases)",
               problems)


def main(paths):
    """Checks and tests every PrometheusRule in the files given."""
    work = Path(os.environ.get("TMPDIR", "/tmp")) / f"recs-rules-{os.getpid()}"
    print(f"ok   tools: {promtool_version() or 'no promtool'}")
    for n, path in enumerate(paths):
        for m, doc in enumerate(d for d in yaml.safe_load_all(Path(path).read_text(encoding="utf-8")) if d):
            if doc.get("kind") == "PrometheusRule":
                check_prometheus_rule(f"{path} {doc['metadata']['name']}", doc, work / f"{n}-{m}")
    shutil.rmtree(work, ignore_errors=True)
    return summary()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
