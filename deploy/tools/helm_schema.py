#!/usr/bin/env python3
"""Writes deploy/helm/rancher-ecr-credentials/values.schema.json, the chart's values schema (JSON Schema draft 7,
what Helm 3 checks values against): every object closed (additionalProperties false) so that a misspelt key fails
at install, list-like settings accepted as a list or a comma-separated string (Rancher's form gives strings).

  deploy/tools/helm_schema.py            # rewrite the schema after changing this file
  deploy/tools/helm_schema.py --check    # exit 1 when the schema is not what this file generates
"""
import json


def obj(props, required=None, desc=None, extra=False):
    o = {"type": "object", "additionalProperties": extra, "properties": props}
    if required:
        o["required"] = required
    if desc:
        o["description"] = desc
    return o


def s(desc, **kw):
    return dict({"type": "string", "description": desc}, **kw)


def b(desc):
    return {"type": "boolean", "description": desc}


def csv(desc, item_pattern=None):
    # One schema for both forms (no oneOf, whose error names neither): pattern applies to a string only,
    # items to an array only.
    o = {"description": desc + " (a list, or a comma-separated string)", "type": ["array", "string"],
         "items": {"type": "string"}}
    if item_pattern:
        o["items"]["pattern"] = item_pattern
        x = item_pattern.strip("^$")
        o["pattern"] = "^\\s*$|^\\s*(%s)(\\s*,\\s*(%s))*\\s*$" % (x, x)
    return o


def secret_ref(desc):
    return obj({"name": s("Secret name", minLength=1), "key": s("key in the Secret", minLength=1)},
               required=["name", "key"], desc=desc)


strmap = {"type": "object", "additionalProperties": {"type": "string"}}
duration = "^$|^([0-9]+(ms|s|m|h|d))+$"
account = "^[0-9]{12}$"
project = "^[a-z0-9-]+:p-[a-z0-9]+$"
# RANCHER_PROJECT_SECRETS also takes every project of a cluster (c-xxxxx:*) and every project (*).
project_pattern = "^([a-z0-9-]+:p-[a-z0-9]+|[a-z0-9-]+:[*]|[*])$"
list_of_str = {"type": "array", "items": {"type": "string"}}

source = obj({
    "name": s("source name: letters, digits, - and _", pattern="^[A-Za-z0-9_-]+$"),
    "region": s("AWS region"),
    "registry_ids": {"type": "array", "items": {"type": "string", "pattern": account}},
    "role_arn": s("role assumed on top", pattern="^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$"),
    "externalIdSecret": secret_ref("ExternalId of role_arn, from a Secret (becomes external_id_file)"),
    "session_name": s("session name"),
    "session_duration": s("15m..12h", pattern=duration),
    "endpoint": s("ECR endpoint URL", pattern="^https?://"),
    "addresses": strmap,
    "public": {"type": "boolean"},
}, required=["name"], desc="a [[source]] of the configuration file (external_id is not accepted: use externalIdSecret)")
target = obj({
    "name": s("target name: letters, digits, - and _", pattern="^[A-Za-z0-9_-]+$"),
    "api": {"type": "string", "enum": ["auto", "cattle", "v3", "kubernetes"]},
    "url": s("Rancher API endpoint", pattern="^https?://"),
    "tokenSecret": secret_ref("Rancher 2 token from a Secret (becomes token_file)"),
    "accessKeySecret": secret_ref("API access key from a Secret (becomes access_key_file)"),
    "secretKeySecret": secret_ref("API secret key from a Secret (becomes secret_key_file)"),
    "ca_bundle": s("PEM file path in the container"),
    "insecure_skip_verify": {"type": "boolean"},
    "timeout": s("request time limit", pattern=duration),
    "projects": {"type": "array", "items": {"type": "string", "pattern": project}},
    "cluster": s("cluster id"),
    "environments": list_of_str,
    "auto_create": {"type": "boolean"},
    "sources": list_of_str,
    "context": s("kubeconfig context"),
    "namespaces": list_of_str,
    "namespace_selector": s("label selector"),
    "exclude_namespaces": list_of_str,
    "secret_name": s("Secret name", pattern="^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"),
    "service_accounts": list_of_str,
    "adopt": {"type": "boolean"},
    "diagnose_pulls": {"type": "boolean"},
    "rancher_projects": {"type": "array", "items": {"type": "string", "pattern": project_pattern}},
    "projects_check_interval": s("RANCHER_PROJECTS_CHECK_INTERVAL", pattern=duration),
}, required=["name"], desc="a [[target]] of the configuration file (token, access_key, secret_key and kubeconfig are not accepted: "
   "use the *Secret references; Kubernetes targets use the pod's ServiceAccount)")

schema = {
  "$schema": "http://json-schema.org/draft-07/schema#",
  "title": "rancher-ecr-credentials chart values",
  "type": "object",
  "additionalProperties": False,
  "properties": {
    "global": {"type": "object", "description": "Helm/Rancher global values (ignored)"},
    "image": obj({
        "repository": s("image without tag", minLength=1),
        "tag": s("image tag; empty: appVersion"),
        "pullPolicy": {"type": "string", "enum": ["Always", "IfNotPresent", "Never"]},
    }, required=["repository"]),
    "imagePullSecrets": {"type": "array", "items": {"type": "string"}},
    "nameOverride": s("replaces the chart name"),
    "fullnameOverride": s("replaces the full name"),
    "aws": obj({
        "region": s("AWS_REGION", pattern="^[a-z]{2}(-[a-z]+)+-[0-9]+$"),
        "registryIds": csv("AWS_ECR_REGISTRY_IDS", account),
        "credentials": {"type": "string", "enum": ["podIdentity", "irsa", "secret", "node"],
                        "description": "podIdentity, irsa, secret or node"},
        "irsa": obj({
            "roleArn": s("eks.amazonaws.com/role-arn", pattern="^$|^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$"),
            "stsRegionalEndpoints": b("eks.amazonaws.com/sts-regional-endpoints"),
        }),
        "secret": obj({
            "existingSecret": s("Secret with the keys"),
            "accessKeyIdKey": s("key of AWS_ACCESS_KEY_ID", minLength=1),
            "secretAccessKeyKey": s("key of AWS_SECRET_ACCESS_KEY", minLength=1),
            "sessionTokenKey": s("key of AWS_SESSION_TOKEN"),
            "accessKeyId": s("explicit access key id (creates a Secret)"),
            "secretAccessKey": s("explicit secret access key (creates a Secret)"),
        }),
        "roleArn": s("AWS_ROLE_ARN", pattern="^$|^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$"),
        "externalId": obj({
            "existingSecret": s("Secret with the ExternalId"),
            "key": s("key in that Secret", minLength=1),
            "value": s("explicit ExternalId (creates a Secret)"),
        }),
        "roleSessionName": s("AWS_ROLE_SESSION_NAME"),
        "caBundle": obj({
            "existingSecret": s("AWS_CA_BUNDLE: Secret holding CA certificates (PEM) for AWS calls"),
            "key": s("key in that Secret", minLength=1),
        }),
        "registryAddressMap": dict(strmap, description="REGISTRY_ADDRESS_MAP: ECR host -> address"),
        "ecrPublic": b("ECR_PUBLIC"),
        "hostForms": csv("ECR_HOST_FORMS", "^(standard|dualstack|fips|dualstack-fips)$"),
    }, required=["region", "credentials"]),
    "target": obj({
        "mode": {"type": "string", "enum": ["rancher", "kubernetes", "rancher-project-secrets", "file"]},
        "rancher": obj({
            "url": s("CATTLE_URL", pattern="^$|^https?://"),
            "api": {"type": "string", "enum": ["auto", "cattle", "v3"]},
            "projects": csv("RANCHER_PROJECTS", project),
            "cluster": s("RANCHER_CLUSTER", pattern="^$|^[a-z0-9-]+$"),
            "projectsCheckInterval": s("RANCHER_PROJECTS_CHECK_INTERVAL", pattern=duration),
            "autoCreate": b("AUTO_CREATE"),
            "timeout": s("RANCHER_TIMEOUT", pattern=duration),
            "insecureSkipVerify": b("CATTLE_INSECURE_SKIP_VERIFY"),
            "caBundle": obj({"existingConfigMap": s("ConfigMap with the CA PEM"), "key": s("key", minLength=1)}),
            "token": obj({"existingSecret": s("Secret with the token"), "key": s("key", minLength=1),
                          "value": s("explicit token (creates a Secret)")}),
        }),
        "kubernetes": obj({
            "namespaces": csv("KUBERNETES_NAMESPACES"),
            "namespaceSelector": s("KUBERNETES_NAMESPACE_SELECTOR"),
            "excludeNamespaces": csv("KUBERNETES_EXCLUDE_NAMESPACES"),
            "secretName": s("KUBERNETES_SECRET_NAME", pattern="^$|^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"),
            "serviceAccounts": csv("KUBERNETES_SERVICE_ACCOUNTS"),
            "adoptSecrets": b("KUBERNETES_ADOPT_SECRETS"),
            "diagnosePulls": b("KUBERNETES_DIAGNOSE_PULLS"),
            "events": b("KUBERNETES_EVENTS"),
        }),
        "rancherProjectSecrets": obj({
            "projects": csv("RANCHER_PROJECT_SECRETS", project_pattern),
            "secretName": s("KUBERNETES_SECRET_NAME", pattern="^$|^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"),
            "adoptSecrets": b("KUBERNETES_ADOPT_SECRETS"),
            "events": b("KUBERNETES_EVENTS"),
            "backingNamespaces": csv("backing namespaces for rbac.scope namespaced"),
        }),
    }, required=["mode"]),
    "configFile": obj({
        "sources": {"type": "array", "items": source},
        "targets": {"type": "array", "items": target},
    }),
    "daemon": obj({
        "logLevel": {"type": "string", "enum": ["error", "warn", "info", "debug", "trace"]},
        "logFormat": {"type": "string", "enum": ["text", "json"]},
        "refreshInterval": s("REFRESH_INTERVAL", pattern=duration, minLength=1),
        "retryDelay": s("RETRY_DELAY", pattern=duration),
        "retryMaxDelay": s("RETRY_MAX_DELAY", pattern=duration),
        "maxConcurrentTargets": {"type": "integer", "minimum": 0},
        "listenPort": {"type": "integer", "minimum": 1, "maximum": 65535},
        "extraEnv": {"type": "object", "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
                     "additionalProperties": {"type": ["string", "number", "boolean"]}},
    }),
    "proxy": obj({
        "httpsProxy": s("HTTPS_PROXY", pattern="^$|^(https?://)?[^/\\s]+"),
        "httpProxy": s("HTTP_PROXY", pattern="^$|^(https?://)?[^/\\s]+"),
        "noProxy": s("NO_PROXY"),
        "existingSecret": s("Secret whose key holds HTTPS_PROXY with credentials"),
        "key": s("key in that Secret", minLength=1),
    }),
    "serviceAccount": obj({"create": b("create it"), "name": s("name"), "annotations": strmap}),
    "rbac": obj({"create": b("create RBAC"), "scope": {"type": "string", "enum": ["cluster", "namespaced"]}}),
    "replicaCount": {"type": "integer", "minimum": 1, "maximum": 10,
                     "description": "replicas; above 1 they elect a leader on a Lease and only it writes"},
    "podAnnotations": strmap,
    "podLabels": strmap,
    "resources": {"type": "object"},
    "nodeSelector": strmap,
    "tolerations": {"type": "array"},
    "affinity": {"type": "object"},
    "priorityClassName": s("priority class"),
    "monitoring": obj({
        "service": obj({"enabled": b("Service"), "port": {"type": "integer", "minimum": 1, "maximum": 65535}}),
        "serviceMonitor": obj({"enabled": b("ServiceMonitor"), "interval": s("interval", pattern=duration, minLength=1),
                               "labels": strmap}),
        "prometheusRule": obj({"enabled": b("PrometheusRule"), "labels": strmap, "additionalAlertLabels": strmap}),
    }),
    "grafanaDashboard": obj({
        "enabled": b("a ConfigMap with the Grafana dashboard"),
        "namespace": s("namespace of the ConfigMap (empty: the release namespace)",
                       pattern="^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"),
        "labelValue": s("value of the grafana_dashboard label", minLength=1),
        "annotations": strmap,
    }),
  },
  "required": ["image", "aws", "target", "daemon"],
}
import sys
from pathlib import Path

path = Path(__file__).resolve().parents[1] / "helm" / "rancher-ecr-credentials" / "values.schema.json"
text = json.dumps(schema, indent=2) + "\n"
if sys.argv[1:] == ["--check"]:
    if path.read_text() != text:
        print(f"{path} is not what {Path(__file__).name} generates: run deploy/tools/helm_schema.py")
        sys.exit(1)
else:
    path.write_text(text)
