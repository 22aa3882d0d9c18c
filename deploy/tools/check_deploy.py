#!/usr/bin/env python3
"""Checks for deploy/ that need no cluster, no kustomize and no terraform binary.

Run by deploy/validate inside its virtualenv (PyYAML, kubernetes-validate,
python-hcl2). Prints one line per check ("ok" / "FAIL") and exits 1 when any
check failed. Usage: check_deploy.py <repo-root> <k8s-version> <render-dir>
"""

import copy
import json
import re
import sys
from pathlib import Path

import hcl2
import kubernetes_validate
import yaml

from dashboard import CHART_COPY, DASHBOARD, MIN_SCHEMA_VERSION, check_file
from report import report, summary
from rules import check_prometheus_rule

ROOT = Path(sys.argv[1]).resolve()
K8S_VERSION = sys.argv[2]
RENDER_DIR = Path(sys.argv[3]).resolve()
DEPLOY = ROOT / "deploy"


def rel(path):
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def load_yaml_docs(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


# --------------------------------------------------------------------------
# IAM policies
# --------------------------------------------------------------------------
STATEMENT_KEYS = {"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction",
                  "Resource", "NotResource", "Condition"}


def check_policy(path):
    problems = []
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as e:
        return [f"not valid JSON: {e}"]
    if not isinstance(doc, dict):
        return ["top level is not an object"]
    if doc.get("Version") != "2012-10-17":
        problems.append(f'Version is {doc.get("Version")!r}, expected "2012-10-17"')
    statements = doc.get("Statement")
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list) or not statements:
        return problems + ["Statement is missing or empty"]
    is_trust = any("Principal" in s or "NotPrincipal" in s for s in statements if isinstance(s, dict))
    for i, s in enumerate(statements):
        where = f"Statement[{i}]"
        if not isinstance(s, dict):
            problems.append(f"{where} is not an object")
            continue
        unknown = set(s) - STATEMENT_KEYS
        if unknown:
            problems.append(f"{where} has unknown keys {sorted(unknown)}")
        if s.get("Effect") not in ("Allow", "Deny"):
            problems.append(f"{where}.Effect must be Allow or Deny")
        if ("Action" in s) == ("NotAction" in s):
            problems.append(f"{where} needs exactly one of Action / NotAction")
        if not is_trust and ("Resource" in s) == ("NotResource" in s):
            problems.append(f"{where} needs exactly one of Resource / NotResource")
        actions = s.get("Action", s.get("NotAction", []))
        for action in [actions] if isinstance(actions, str) else actions:
            if not re.fullmatch(r"[a-z0-9-]+:[A-Za-z0-9*]+|\*", str(action)):
                problems.append(f"{where} has a malformed action {action!r}")
    return problems


def check_iam():
    paths = sorted((DEPLOY / "iam").glob("*.json"))
    if not paths:
        report("iam: policies present", ["no deploy/iam/*.json"])
    for path in paths:
        report(f"iam: {rel(path)}", check_policy(path))
    trust = DEPLOY / "iam" / "cross-account-trust-policy.json"
    if trust.exists():
        text = trust.read_text(encoding="utf-8")
        report("iam: cross-account trust requires sts:ExternalId",
               [] if "sts:ExternalId" in text else ["no sts:ExternalId condition"])


# --------------------------------------------------------------------------
# Kubernetes: a tiny kustomize (resources + strategic-merge patches + labels)
# --------------------------------------------------------------------------
def resource_key(doc):
    meta = doc.get("metadata") or {}
    return (doc.get("kind"), meta.get("name"), meta.get("namespace"))


def strategic_merge(base, patch):
    """Enough of a strategic merge patch for these manifests: maps merge,
    lists of objects with a "name" merge by name, other lists are replaced,
    null deletes."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            if value is None:
                out.pop(key, None)
            elif key in out:
                out[key] = strategic_merge(out[key], value)
            else:
                out[key] = copy.deepcopy(value)
        return out
    if (isinstance(base, list) and isinstance(patch, list)
            and all(isinstance(x, dict) and "name" in x for x in base + patch)):
        out = [copy.deepcopy(x) for x in base]
        for item in patch:
            for i, existing in enumerate(out):
                if existing["name"] == item["name"]:
                    out[i] = strategic_merge(existing, item)
                    break
            else:
                out.append(copy.deepcopy(item))
        return out
    return copy.deepcopy(patch)


def kustomize_build(directory, problems, seen=None):
    """Returns the list of resources of a kustomization directory; appends
    every problem (missing file, patch without a target ...) to problems."""
    seen = seen or set()
    directory = directory.resolve()
    if directory in seen:
        problems.append(f"{rel(directory)}: kustomization cycle")
        return []
    seen = seen | {directory}
    kfile = directory / "kustomization.yaml"
    if not kfile.exists():
        problems.append(f"{rel(directory)}: no kustomization.yaml")
        return []
    k = yaml.safe_load(kfile.read_text(encoding="utf-8")) or {}
    known = {"apiVersion", "kind", "resources", "patches", "labels", "namespace",
             "commonLabels", "commonAnnotations", "images"}
    unknown = set(k) - known
    if unknown:
        problems.append(f"{rel(kfile)}: fields this check does not understand: {sorted(unknown)}")
    if k.get("kind") not in (None, "Kustomization"):
        problems.append(f"{rel(kfile)}: kind must be Kustomization")
    resources = []
    for entry in k.get("resources") or []:
        target = directory / entry
        if target.is_dir():
            resources += kustomize_build(target, problems, seen)
        elif target.is_file():
            resources += load_yaml_docs(target)
        else:
            problems.append(f"{rel(kfile)}: resource {entry} does not exist")
    for patch in k.get("patches") or []:
        if not isinstance(patch, dict) or ("path" in patch) == ("patch" in patch):
            problems.append(f"{rel(kfile)}: patch entry needs exactly one of path / patch: {patch!r}")
            continue
        if "path" in patch:
            ppath = directory / patch["path"]
            if not ppath.is_file():
                problems.append(f"{rel(kfile)}: patch {patch['path']} does not exist")
                continue
            docs = load_yaml_docs(ppath)
        else:
            docs = [d for d in yaml.safe_load_all(patch["patch"]) if d is not None]
        for doc in docs:
            if isinstance(doc, list):
                problems.append(f"{rel(kfile)}: JSON6902 patches are not supported by this check")
                continue
            target = patch.get("target") or {}
            kind = target.get("kind", doc.get("kind"))
            name = target.get("name", (doc.get("metadata") or {}).get("name"))
            matches = [i for i, r in enumerate(resources)
                       if r.get("kind") == kind and (r.get("metadata") or {}).get("name") == name]
            if not matches:
                problems.append(f"{rel(kfile)}: patch {patch.get('path', '<inline>')} targets "
                                f"{kind}/{name}, which is not among the resources")
            for i in matches:
                resources[i] = strategic_merge(resources[i], doc)
    for label_set in k.get("labels") or []:
        for r in resources:
            r.setdefault("metadata", {}).setdefault("labels", {}).update(label_set.get("pairs") or {})
    if k.get("namespace"):
        for r in resources:
            if r.get("kind") != "Namespace":
                r.setdefault("metadata", {})["namespace"] = k["namespace"]
    keys = [resource_key(r) for r in resources]
    for key in set(keys):
        if keys.count(key) > 1:
            problems.append(f"{rel(kfile)}: resource {key} appears {keys.count(key)} times")
    return resources


def validate_k8s(resources, label):
    problems = []
    for r in resources:
        name = f"{r.get('kind')}/{(r.get('metadata') or {}).get('name')}"
        try:
            kubernetes_validate.validate(r, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            path = "/".join(str(p) for p in e.path)
            problems.append(f"{label} {name}: {path}: {e.message}")
        except kubernetes_validate.SchemaNotFoundError:
            problems.append(f"{label} {name}: no schema for this kind in Kubernetes {K8S_VERSION}")
    return problems


def cross_references(resources):
    """Names the Deployment uses must exist in the build (or be documented
    as created by hand)."""
    problems = []
    by_kind = {}
    for r in resources:
        by_kind.setdefault(r.get("kind"), set()).add((r.get("metadata") or {}).get("name"))
    for r in resources:
        if r.get("kind") != "Deployment":
            continue
        spec = r["spec"]["template"]["spec"]
        sa = spec.get("serviceAccountName")
        if sa and sa not in by_kind.get("ServiceAccount", set()):
            problems.append(f"Deployment uses ServiceAccount {sa}, not in the build")
        for c in spec.get("containers", []):
            for ef in c.get("envFrom", []):
                cm = (ef.get("configMapRef") or {}).get("name")
                if cm and cm not in by_kind.get("ConfigMap", set()):
                    problems.append(f"envFrom ConfigMap {cm} is not in the build")
            mounts = {m["name"] for m in c.get("volumeMounts", [])}
            volumes = {v["name"] for v in spec.get("volumes", [])}
            if mounts - volumes:
                problems.append(f"volumeMounts without a volume: {sorted(mounts - volumes)}")
        sel = r["spec"]["selector"]["matchLabels"]
        labels = r["spec"]["template"]["metadata"].get("labels", {})
        if any(labels.get(k) != v for k, v in sel.items()):
            problems.append("Deployment selector does not match its pod labels")
        for svc in (x for x in resources if x.get("kind") == "Service"):
            if any(labels.get(k) != v for k, v in svc["spec"]["selector"].items()):
                problems.append(f"Service {svc['metadata']['name']} selects no pod of the Deployment")
    return problems


def check_kubernetes():
    kroot = DEPLOY / "kubernetes"
    builds = sorted({p.parent for p in kroot.rglob("kustomization.yaml")})
    if not builds:
        report("kubernetes: kustomizations present", ["none found"])
    secret_names = set()
    for directory in builds:
        problems = []
        resources = kustomize_build(directory, problems)
        if not resources:
            problems.append("the build is empty")
        report(f"kustomize build {rel(directory)} ({len(resources)} resources)", problems)
        report(f"kubernetes-validate {K8S_VERSION} strict: {rel(directory)}",
               validate_k8s(resources, rel(directory)))
        report(f"references inside {rel(directory)}", cross_references(resources))
        out = RENDER_DIR / ("kustomize-" + rel(directory).replace("/", "_") + ".yaml")
        out.write_text(yaml.safe_dump_all(resources, sort_keys=False), encoding="utf-8")
        for r in resources:
            for c in r.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
                for e in c.get("env", []):
                    ref = (e.get("valueFrom") or {}).get("secretKeyRef")
                    if ref:
                        secret_names.add((ref["name"], ref["key"]))
            for v in r.get("spec", {}).get("template", {}).get("spec", {}).get("volumes", []):
                if "secret" in v:
                    for item in v["secret"].get("items", []):
                        secret_names.add((v["secret"]["secretName"], item["key"]))

    # Examples (not resources of any kustomization): full objects, validate them too.
    examples = sorted(kroot.rglob("*.example.yaml"))
    example_secrets = set()
    for path in examples:
        docs = load_yaml_docs(path)
        report(f"kubernetes-validate {K8S_VERSION} strict: {rel(path)}", validate_k8s(docs, rel(path)))
        for d in docs:
            if d.get("kind") == "Secret":
                for key in list((d.get("stringData") or {})) + list((d.get("data") or {})):
                    example_secrets.add((d["metadata"]["name"], key))
    listed = set()
    for directory in builds:
        k = yaml.safe_load((directory / "kustomization.yaml").read_text(encoding="utf-8")) or {}
        listed |= {(directory / e).resolve() for e in k.get("resources") or []}
    report("examples are not kustomize resources",
           [f"{rel(p)} is listed as a resource" for p in examples if p.resolve() in listed])
    report("every Secret key the manifests use has an example",
           [f"Secret {n} key {k} has no *.example.yaml" for n, k in sorted(secret_names - example_secrets)])

    # The alert rules: parsed, checked and unit-tested by promtool (deploy/tools/rules.py).
    rule = kroot / "monitoring" / "prometheusrule.yaml"
    problems = []
    docs = load_yaml_docs(rule) if rule.exists() else []
    if not docs:
        problems.append("missing or empty")
    for d in docs:
        if d.get("apiVersion") != "monitoring.coreos.com/v1" or d.get("kind") != "PrometheusRule":
            problems.append("not a monitoring.coreos.com/v1 PrometheusRule")
    report(f"prometheus rule {rel(rule)} is a PrometheusRule", problems)
    for d in docs:
        if d.get("kind") == "PrometheusRule":
            check_prometheus_rule(rel(rule), d, RENDER_DIR / "rules" / "kustomize")


# --------------------------------------------------------------------------
# Terraform (HCL2 parse + references)
# --------------------------------------------------------------------------
def unquote(s):
    return s[1:-1] if isinstance(s, str) and len(s) >= 2 and s[0] == s[-1] == '"' else s


def block_names(parsed, kind):
    names = set()
    for block in parsed.get(kind, []):
        names |= {unquote(k) for k in block if k != "__is_block__"}
    return names


def check_terraform():
    tfdir = DEPLOY / "terraform"
    files = sorted(tfdir.glob("*.tf"))
    if not files:
        report("terraform: files present", ["no deploy/terraform/*.tf"])
        return
    parsed, text = {}, ""
    for path in files:
        try:
            with open(path, encoding="utf-8") as f:
                parsed[path.name] = hcl2.load(f)
            report(f"hcl2 parse {rel(path)}", [])
        except Exception as e:  # the parser raises several lark exception types
            report(f"hcl2 parse {rel(path)}", [f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"])
        text += path.read_text(encoding="utf-8") + "\n"
    if len(parsed) != len(files):
        return

    problems = []
    providers = {}
    for p in parsed.values():
        for t in p.get("terraform", []):
            for rp in t.get("required_providers", []):
                providers.update({k: v for k, v in rp.items() if k != "__is_block__"})
    aws = providers.get("aws") or {}
    if unquote(aws.get("source")) != "hashicorp/aws" or unquote(aws.get("version")) != "~> 5.0":
        problems.append(f"required_providers.aws must be hashicorp/aws ~> 5.0, got {aws!r}")
    report("terraform: required_providers aws ~> 5.0", problems)

    variables, locals_, resources, data, outputs = set(), set(), set(), set(), set()
    for p in parsed.values():
        variables |= block_names(p, "variable")
        outputs |= block_names(p, "output")
        for block in p.get("locals", []):
            locals_ |= {k for k in block if k != "__is_block__"}
        for block in p.get("resource", []):
            for rtype, body in block.items():
                if rtype != "__is_block__":
                    resources |= {(unquote(rtype), unquote(n)) for n in body if n != "__is_block__"}
        for block in p.get("data", []):
            for dtype, body in block.items():
                if dtype != "__is_block__":
                    data |= {(unquote(dtype), unquote(n)) for n in body if n != "__is_block__"}
    # Strip comments and the text of string literals that are not interpolations.
    code = re.sub(r"(?m)^\s*#.*$", "", text)
    problems = []
    for name in sorted(set(re.findall(r"\bvar\.([A-Za-z0-9_]+)", code)) - variables):
        problems.append(f"var.{name} is used but not declared")
    for name in sorted(set(re.findall(r"\blocal\.([A-Za-z0-9_]+)", code)) - locals_):
        problems.append(f"local.{name} is used but not defined")
    for dtype, name in sorted(set(re.findall(r"\bdata\.(aws_[a-z0-9_]+)\.([A-Za-z0-9_]+)", code)) - data):
        problems.append(f"data.{dtype}.{name} is used but not declared")
    refs = set(re.findall(r"(?<![.\w])(aws_[a-z0-9_]+)\.([A-Za-z0-9_]+)\b", code))
    for rtype, name in sorted(refs - resources):
        problems.append(f"{rtype}.{name} is used but not declared")
    for name in sorted(variables - set(re.findall(r"\bvar\.([A-Za-z0-9_]+)", code))):
        problems.append(f"variable {name} is declared but never used")
    report(f"terraform: references ({len(variables)} variables, {len(resources)} resources, "
           f"{len(outputs)} outputs)", problems)


# --------------------------------------------------------------------------
# Rancher 1.x catalog
# --------------------------------------------------------------------------
QUESTION_TYPES = {"string", "int", "boolean", "password", "enum", "multiline", "date",
                  "service", "certificate", "float"}
ACTION = re.compile(r"\{\{(-?)\s*(.*?)\s*(-?)\}\}", re.S)


def interpolated(node):
    """The ${var} / $var names used in the values and keys of a parsed compose
    file (comments do not count: rancher-compose interpolates parsed values)."""
    found = set()
    if isinstance(node, dict):
        for k, v in node.items():
            found |= interpolated(k) | interpolated(v)
    elif isinstance(node, list):
        for v in node:
            found |= interpolated(v)
    elif isinstance(node, str):
        text = node.replace("$$", "")
        found |= set(re.findall(r"\$\{(\w+)\}", text)) | set(re.findall(r"\$([A-Za-z_]\w*)", text))
    return found


def render_go_template(text, values):
    """The subset of Go templates the catalog uses: if/else/end with
    `.Values.x` (truthy) and `eq .Values.x "y"` / `ne ...`, with {{- trimming."""
    out, stack, pos = [], [], 0

    def active():
        return all(stack)

    for m in ACTION.finditer(text):
        chunk = text[pos:m.start()]
        if m.group(1):
            chunk = chunk.rstrip()
        if active():
            out.append(chunk)
        pos = m.end()
        if m.group(3):
            rest = text[pos:]
            pos += len(rest) - len(rest.lstrip())
        action = m.group(2)
        cond = re.fullmatch(r'if\s+(?:(eq|ne)\s+)?\.Values\.(\w+)(?:\s+"([^"]*)")?', action)
        if cond:
            op, var, lit = cond.groups()
            if var not in values:
                raise ValueError(f".Values.{var} is not a question")
            value = values[var]
            if op == "eq":
                result = str(value) == lit
            elif op == "ne":
                result = str(value) != lit
            else:
                if lit is not None:
                    raise ValueError(f"unsupported action {action!r}")
                result = value not in ("", None, False, "false")
            stack.append(result)
        elif action == "else":
            if not stack:
                raise ValueError("else without if")
            stack[-1] = not stack[-1]
        elif action == "end":
            if not stack:
                raise ValueError("end without if")
            stack.pop()
        else:
            raise ValueError(f"unsupported template action {{{{ {action} }}}}")
    if stack:
        raise ValueError("if without end")
    out.append(text[pos:])
    return "".join(out)


def check_catalog_version(vdir, config):
    name = rel(vdir)
    rc_path = vdir / "rancher-compose.yml"
    dc_plain, dc_tpl = vdir / "docker-compose.yml", vdir / "docker-compose.yml.tpl"
    problems = []
    if not rc_path.exists():
        report(f"catalog {name}: rancher-compose.yml", ["missing"])
        return
    if dc_plain.exists() == dc_tpl.exists():
        report(f"catalog {name}: docker-compose", ["need exactly one of docker-compose.yml / docker-compose.yml.tpl"])
        return
    try:
        rc = yaml.safe_load(rc_path.read_text(encoding="utf-8"))
        report(f"catalog {name}: rancher-compose.yml parses", [])
    except yaml.YAMLError as e:
        report(f"catalog {name}: rancher-compose.yml parses", [str(e)])
        return
    if str(rc.get("version")) != "2":
        problems.append("rancher-compose.yml: version must be '2'")
    catalog = rc.get("catalog") or {}
    for key in ("name", "version", "uuid", "questions"):
        if not catalog.get(key):
            problems.append(f"catalog.{key} missing")
    questions = {}
    for q in catalog.get("questions") or []:
        var = q.get("variable")
        if not var or not q.get("label") or q.get("type") not in QUESTION_TYPES:
            problems.append(f"bad question {q!r}")
            continue
        if var in questions:
            problems.append(f"question {var} defined twice")
        questions[var] = q
        if q["type"] == "enum":
            if not q.get("options"):
                problems.append(f"enum question {var} has no options")
            elif "default" in q and q["default"] not in q["options"]:
                problems.append(f"default of {var} is not one of its options")
    report(f"catalog {name}: rancher-compose.yml catalog and questions ({len(questions)})", problems)

    # Render every combination of the enum questions used by the template,
    # with optional strings filled and left empty.
    src = (dc_tpl if dc_tpl.exists() else dc_plain).read_text(encoding="utf-8")
    template_vars = sorted(set(re.findall(r"\.Values\.(\w+)", src)))
    enum_vars = [v for v in template_vars if questions.get(v, {}).get("type") in ("enum", "boolean")]
    other_vars = [v for v in template_vars if v not in enum_vars]
    combos = [{}]
    for var in enum_vars:
        q = questions[var]
        choices = q["options"] if q["type"] == "enum" else [True, False]
        combos = [dict(c, **{var: v}) for c in combos for v in choices]
    # The optional answers: all left empty, then all filled in.
    combos = [dict(c, **{v: fill for v in other_vars}) for c in combos for fill in ("", "example")]
    problems = []
    rendered_docs = []
    for combo in combos:
        values = {k: q.get("default", "") for k, q in questions.items()}
        values.update(combo)
        try:
            out = render_go_template(src, values) if dc_tpl.exists() else src
        except ValueError as e:
            problems.append(f"template: {e}")
            break
        filled = "optional-set" if any(combo.get(v) for v in other_vars) else "optional-empty"
        tag = "-".join([str(combo[v]) for v in enum_vars] + ([filled] if other_vars else [])) or "plain"
        out_path = RENDER_DIR / f"catalog-{vdir.parent.name}-{vdir.name}-docker-compose-{tag}.yml"
        out_path.write_text(out, encoding="utf-8")
        try:
            dc = yaml.safe_load(out)
        except yaml.YAMLError as e:
            problems.append(f"{tag}: rendered docker-compose does not parse: {e}")
            continue
        rendered_docs.append((tag, combo, dc, out))
    report(f"catalog {name}: docker-compose renders and parses ({len(combos)} combinations)", problems)

    problems = []
    for tag, combo, dc, text in rendered_docs:
        if str(dc.get("version")) != "2" or not isinstance(dc.get("services"), dict):
            problems.append(f"{tag}: needs version '2' and services")
            continue
        for var in sorted(interpolated(dc)):
            if var not in questions:
                problems.append(f"{tag}: ${{{var}}} is not a question in rancher-compose.yml")
        rc_services = set((rc.get("services") or {}))
        if rc_services - set(dc["services"]):
            problems.append(f"{tag}: rancher-compose services {sorted(rc_services - set(dc['services']))} "
                            "are not in docker-compose")
        for sname, svc in dc["services"].items():
            if not svc.get("image"):
                problems.append(f"{tag}: service {sname} has no image")
            labels = svc.get("labels") or {}
            env = svc.get("environment") or {}
            mode = combo.get("registry_in_which_environment")
            agent = labels.get("io.rancher.container.create_agent") == "true" and \
                labels.get("io.rancher.container.agent.role") == "environment"
            manual = all(k in env for k in ("CATTLE_URL", "CATTLE_ACCESS_KEY", "CATTLE_SECRET_KEY"))
            if mode == "current" and (not agent or manual):
                problems.append(f"{tag}: mode current needs the agent labels and no CATTLE_* variables")
            if mode == "other" and (agent or not manual):
                problems.append(f"{tag}: mode other needs CATTLE_URL/keys and no agent labels")
            if any(v is None for v in env.values()):
                problems.append(f"{tag}: environment variable without a value")
    used = set(re.findall(r"\.Values\.(\w+)", src))
    for _, _, dc, _ in rendered_docs:
        used |= interpolated(dc)
    for var in sorted(set(questions) - used):
        problems.append(f"question {var} is never used in the docker-compose file")
    report(f"catalog {name}: every ${{var}} is a question, modes are consistent", problems)

    problems = []
    for sname, svc in (rc.get("services") or {}).items():
        hc = (svc or {}).get("health_check")
        if not hc:
            continue
        for key in ("port", "interval", "response_timeout", "healthy_threshold", "unhealthy_threshold",
                    "initializing_timeout", "strategy"):
            if key not in hc:
                problems.append(f"{sname}.health_check.{key} missing")
        if hc.get("strategy") not in ("none", "recreate", "recreateOnQuorum"):
            problems.append(f"{sname}.health_check.strategy {hc.get('strategy')!r} is not valid")
        if "request_line" in hc and not re.fullmatch(r"(GET|HEAD) \S+ HTTP/1\.[01]", str(hc["request_line"])):
            problems.append(f"{sname}.health_check.request_line {hc['request_line']!r} is malformed")
        if int(hc.get("initializing_timeout", 0)) < 60000:
            problems.append(f"{sname}.health_check.initializing_timeout must leave time for the first refresh")
        if int(hc.get("response_timeout", 0)) >= int(hc.get("interval", 0)):
            problems.append(f"{sname}.health_check.response_timeout must be below interval")
    report(f"catalog {name}: health checks", problems)


def check_catalog():
    troot = DEPLOY / "rancher1-catalog" / "templates"
    entries = sorted(p for p in troot.iterdir() if p.is_dir()) if troot.is_dir() else []
    if not entries:
        report("catalog: templates present", ["no deploy/rancher1-catalog/templates/*"])
    for entry in entries:
        problems = []
        config = {}
        cfg = entry / "config.yml"
        try:
            config = yaml.safe_load(cfg.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as e:
            problems.append(f"config.yml: {e}")
        for key in ("name", "description", "version", "category"):
            if not config.get(key):
                problems.append(f"config.yml: {key} missing")
        versions = sorted((p for p in entry.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name))
        if not versions:
            problems.append("no numbered version directory")
        report(f"catalog {rel(entry)}: config.yml", problems)
        uuids = []
        for vdir in versions:
            check_catalog_version(vdir, config)
            try:
                uuids.append(yaml.safe_load((vdir / "rancher-compose.yml").read_text())["catalog"]["uuid"])
            except Exception:
                pass
        report(f"catalog {rel(entry)}: unique uuids",
               [] if len(uuids) == len(set(uuids)) else [f"duplicate uuids {uuids}"])


def check_image_tags():
    """Every image reference in deploy/ names the same tag, and it is the
    version in Cargo.toml."""
    image = "ghcr.io/rancher-ecr-credentials/rancher-ecr-credentials"
    tags = {}
    for path in sorted(DEPLOY.rglob("*")):
        if path.is_file() and path.suffix in (".yaml", ".yml", ".tpl", ".md") and "deploy-venv" not in path.parts:
            for tag in re.findall(re.escape(image) + r":([\w.-]+)", path.read_text(encoding="utf-8")):
                tags.setdefault(tag, []).append(rel(path))
    problems = []
    cargo = ROOT / "Cargo.toml"
    version = None
    if cargo.exists():
        m = re.search(r'(?ms)^\[package\].*?^version\s*=\s*"([^"]+)"', cargo.read_text(encoding="utf-8"))
        version = m.group(1) if m else None
    if not tags:
        problems.append(f"no {image}:<tag> reference found")
    if len(tags) > 1:
        problems.append(f"several tags: {tags}")
    if version and tags and set(tags) != {version}:
        problems.append(f"image tag {sorted(tags)} differs from Cargo.toml version {version}")
    report(f"image tag is the Cargo.toml version ({version})", problems)


def check_dashboard():
    """The Grafana dashboard (deploy/tools/dashboard.py), and the chart's copy of it byte for byte."""
    report(f"Grafana dashboard {rel(DASHBOARD)}: schema {MIN_SCHEMA_VERSION}+, the datasource variable only, "
           "every panel a query over the README's metrics", check_file(DASHBOARD.read_text(encoding="utf-8")))
    same = CHART_COPY.is_file() and CHART_COPY.read_bytes() == DASHBOARD.read_bytes()
    report(f"the chart's {rel(CHART_COPY)} is {rel(DASHBOARD)}",
           [] if same else [f"differs or is missing: cp {rel(DASHBOARD)} {rel(CHART_COPY)}"])


def main():
    RENDER_DIR.mkdir(parents=True, exist_ok=True)
    for step in (check_iam, check_kubernetes, check_dashboard, check_terraform, check_catalog, check_image_tags):
        try:
            step()
        except Exception as e:  # a crash in one family must not hide the others
            report(f"{step.__name__} crashed", [f"{type(e).__name__}: {e}"])
    return summary()


if __name__ == "__main__":
    sys.exit(main())
