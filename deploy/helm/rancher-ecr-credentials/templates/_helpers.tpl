{{/* Names and labels. */}}
{{- define "recs.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "recs.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "recs.selectorLabels" -}}
app.kubernetes.io/name: {{ include "recs.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "recs.labels" -}}
{{ include "recs.selectorLabels" . }}
app.kubernetes.io/version: {{ include "recs.tag" . | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "recs.tag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{- define "recs.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "recs.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name: give the name of an existing ServiceAccount when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* A value given as a list or as a comma-separated string, as one comma-separated string. */}}
{{- define "recs.csv" -}}
{{- if kindIs "slice" . }}{{ join "," . }}{{ else }}{{ . | default "" | toString | nospace }}{{ end }}
{{- end }}

{{/* The same value as a list of non-empty strings (JSON, for fromJsonArray). */}}
{{- define "recs.list" -}}
{{- $out := list }}
{{- range (include "recs.csv" . | splitList ",") }}{{ if . }}{{ $out = append $out . }}{{ end }}{{ end }}
{{- toJson $out }}
{{- end }}

{{/* Where mounted files live in the container. */}}
{{- define "recs.secretsDir" -}}/var/run/secrets/rancher-ecr-credentials{{- end }}
{{- define "recs.configDir" -}}/etc/rancher-ecr-credentials{{- end }}

{{/* Does the chart create its own Secret (only from values the user set explicitly)? */}}
{{- define "recs.ownSecret" -}}
{{- $v := .Values }}
{{- if or (and (eq $v.target.mode "rancher") (not $v.target.rancher.token.existingSecret) $v.target.rancher.token.value)
          (and (eq $v.aws.credentials "secret") (not $v.aws.secret.existingSecret) (or $v.aws.secret.accessKeyId $v.aws.secret.secretAccessKey))
          (and $v.aws.roleArn (not $v.aws.externalId.existingSecret) $v.aws.externalId.value) }}true{{ end }}
{{- end }}

{{/*
What the Kubernetes target needs, from the mode (JSON): namespaces (list/watch namespaces, get/create/patch
secrets in them), serviceAccounts (get/patch serviceaccounts), projects (get projects.management.cattle.io,
get/create/patch secrets in the backing namespaces). These are exactly the rules issue 11 fixes.
*/}}
{{- /* projectsAll: * (projects get/list/watch everywhere); projectClusters: the clusters of c-xxxxx:* (projects
get/list/watch in their namespaces); either also needs namespaces list/watch (a new project's backing namespace). */}}
{{- define "recs.kubernetesNeeds" -}}
{{- $v := .Values }}
{{- $needs := dict "namespaces" false "serviceAccounts" false "projects" false "projectsAll" false "projectClusters" list "diagnosePulls" false }}
{{- $patterns := list }}
{{- if eq $v.target.mode "kubernetes" }}
{{- $_ := set $needs "namespaces" true }}
{{- if $v.target.kubernetes.diagnosePulls }}{{ $_ := set $needs "diagnosePulls" true }}{{ end }}
{{- if (include "recs.list" $v.target.kubernetes.serviceAccounts | fromJsonArray) }}{{ $_ := set $needs "serviceAccounts" true }}{{ end }}
{{- else if eq $v.target.mode "rancher-project-secrets" }}
{{- $_ := set $needs "projects" true }}
{{- $patterns = include "recs.list" $v.target.rancherProjectSecrets.projects | fromJsonArray }}
{{- else if eq $v.target.mode "file" }}
{{- range $v.configFile.targets }}
{{- if eq (toString .api) "kubernetes" }}
{{- if .rancher_projects }}{{ $_ := set $needs "projects" true }}{{ $patterns = concat $patterns .rancher_projects }}{{ else }}{{ $_ := set $needs "namespaces" true }}{{ end }}
{{- if .service_accounts }}{{ $_ := set $needs "serviceAccounts" true }}{{ end }}
{{- if .diagnose_pulls }}{{ $_ := set $needs "diagnosePulls" true }}{{ end }}
{{- end }}
{{- end }}
{{- end }}
{{- range $patterns }}
{{- if eq . "*" }}{{ $_ := set $needs "projectsAll" true }}{{ $_ := set $needs "namespaces" true }}
{{- else if hasSuffix ":*" . }}{{ $_ := set $needs "projectClusters" (append $needs.projectClusters (trimSuffix ":*" .) | uniq) }}{{ $_ := set $needs "namespaces" true }}
{{- end }}
{{- end }}
{{- toJson $needs }}
{{- end }}

{{- define "recs.usesKubernetes" -}}
{{- $n := include "recs.kubernetesNeeds" . | fromJson }}
{{- if or $n.namespaces $n.projects }}true{{ end }}
{{- end }}

{{/* Checks that the schema cannot express; each failure names the value to fix. */}}
{{- define "recs.validate" -}}
{{- $v := .Values }}
{{- $m := $v.target.mode }}
{{- if eq $m "rancher" }}
{{- if not $v.target.rancher.url }}
{{- fail "target.rancher.url: required with target.mode=rancher (the Rancher /v3 endpoint, e.g. https://rancher.example.com/v3)" }}
{{- end }}
{{- if not (or $v.target.rancher.token.existingSecret $v.target.rancher.token.value) }}
{{- fail "target.rancher.token.existingSecret: name the Secret holding the Rancher API token (or give target.rancher.token.value)" }}
{{- end }}
{{- else if eq $m "kubernetes" }}
{{- if not (or (include "recs.list" $v.target.kubernetes.namespaces | fromJsonArray) $v.target.kubernetes.namespaceSelector) }}
{{- fail "target.kubernetes.namespaces: give namespace names or globs (or target.kubernetes.namespaceSelector) with target.mode=kubernetes" }}
{{- end }}
{{- if eq $v.rbac.scope "namespaced" }}
{{- if $v.target.kubernetes.namespaceSelector }}
{{- fail "rbac.scope: namespaced needs literal namespace names; a namespaceSelector needs rbac.scope=cluster" }}
{{- end }}
{{- range (include "recs.list" $v.target.kubernetes.namespaces | fromJsonArray) }}
{{- if not (regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" .) }}
{{- fail (printf "rbac.scope: namespaced needs literal namespace names; '%s' in target.kubernetes.namespaces is a glob (use rbac.scope=cluster)" .) }}
{{- end }}
{{- end }}
{{- end }}
{{- else if eq $m "rancher-project-secrets" }}
{{- $projects := include "recs.list" $v.target.rancherProjectSecrets.projects | fromJsonArray }}
{{- if not $projects }}
{{- fail "target.rancherProjectSecrets.projects: give project ids (c-xxxxx:p-xxxxx), c-xxxxx:* or * with target.mode=rancher-project-secrets" }}
{{- end }}
{{- range $projects }}
{{- if not (regexMatch "^[a-z0-9-]+:p-[a-z0-9]+$|^[a-z0-9-]+:[*]$|^[*]$" .) }}
{{- fail (printf "target.rancherProjectSecrets.projects: '%s' is not a project id (c-xxxxx:p-xxxxx), every project of a cluster (c-xxxxx:*) or every project (*)" .) }}
{{- end }}
{{- end }}
{{- else if eq $m "file" }}
{{- if not $v.configFile.targets }}
{{- fail "configFile.targets: give at least one target with target.mode=file" }}
{{- end }}
{{- if eq $v.rbac.scope "namespaced" }}
{{- fail "rbac.scope: namespaced is for target.mode kubernetes and rancher-project-secrets; use rbac.scope=cluster with target.mode=file" }}
{{- end }}
{{- $names := list }}
{{- range (concat $v.configFile.sources $v.configFile.targets) }}
{{- if has .name $names }}{{ fail (printf "configFile: the name '%s' is used twice (names of sources and targets must differ, they name mounted files)" .name) }}{{ end }}
{{- $names = append $names .name }}
{{- end }}
{{- end }}
{{- if eq $v.aws.credentials "irsa" }}
{{- if not $v.aws.irsa.roleArn }}
{{- fail "aws.irsa.roleArn: required with aws.credentials=irsa (the IAM role the ServiceAccount assumes)" }}
{{- end }}
{{- if $v.aws.roleArn }}
{{- fail "aws.roleArn: with aws.credentials=irsa, AWS_ROLE_ARN is the web identity role; put a cross-account role in a configFile source (role_arn) instead" }}
{{- end }}
{{- end }}
{{- if eq $v.aws.credentials "secret" }}
{{- if not (or $v.aws.secret.existingSecret (and $v.aws.secret.accessKeyId $v.aws.secret.secretAccessKey)) }}
{{- fail "aws.secret.existingSecret: name the Secret holding the AWS keys with aws.credentials=secret (or give aws.secret.accessKeyId and aws.secret.secretAccessKey)" }}
{{- end }}
{{- end }}
{{- if and (or $v.aws.externalId.existingSecret $v.aws.externalId.value) (not $v.aws.roleArn) }}
{{- fail "aws.externalId: only used with aws.roleArn" }}
{{- end }}
{{- end }}

{{/*
configFile mode: every Secret a source or target names (tokenSecret, accessKeySecret, secretKeySecret,
externalIdSecret), as JSON [{secret, key, path, tomlKey, kind, index, owner}]. They are mounted in one projected
volume at <secretsDir>/file, each at <owner>-<name>/<file>.
*/}}
{{- define "recs.fileSecrets" -}}
{{- $out := list }}
{{- $kinds := list (list "target" "tokenSecret" "token_file" "token") (list "target" "accessKeySecret" "access_key_file" "access-key") (list "target" "secretKeySecret" "secret_key_file" "secret-key") (list "source" "externalIdSecret" "external_id_file" "external-id") }}
{{- range $k := $kinds }}
{{- $owner := index $k 0 }}
{{- $entries := ternary $.Values.configFile.targets $.Values.configFile.sources (eq $owner "target") }}
{{- range $i, $e := $entries }}
{{- with (get $e (index $k 1)) }}
{{- $out = append $out (dict "secret" .name "key" .key "owner" $owner "index" $i "valueKey" (index $k 1) "tomlKey" (index $k 2) "path" (printf "%s-%s/%s" $owner $e.name (index $k 3))) }}
{{- end }}
{{- end }}
{{- end }}
{{- toJson $out }}
{{- end }}

{{/* The TOML configuration file from configFile, with Secret references turned into *_file paths. */}}
{{- define "recs.configToml" -}}
{{- $refs := include "recs.fileSecrets" . | fromJsonArray }}
{{- $dir := printf "%s/file" (include "recs.secretsDir" .) }}
{{- $doc := dict }}
{{- range $owner, $entries := dict "source" .Values.configFile.sources "target" .Values.configFile.targets }}
{{- $list := list }}
{{- range $i, $e := $entries }}
{{- $copy := omit $e "tokenSecret" "accessKeySecret" "secretKeySecret" "externalIdSecret" }}
{{- range $refs }}
{{- if and (eq .owner $owner) (eq (int .index) $i) }}{{ $_ := set $copy .tomlKey (printf "%s/%s" $dir .path) }}{{ end }}
{{- end }}
{{- $list = append $list $copy }}
{{- end }}
{{- if $list }}{{ $_ := set $doc $owner $list }}{{ end }}
{{- end }}
{{- toToml $doc }}
{{- end }}

{{/* The names of the Secrets the Kubernetes target writes (JSON list), for the RBAC's resourceNames. */}}
{{- define "recs.secretNames" -}}
{{- $v := .Values }}
{{- $names := list }}
{{- if eq $v.target.mode "kubernetes" }}
{{- $names = append $names ($v.target.kubernetes.secretName | default "ecr-credentials") }}
{{- else if eq $v.target.mode "rancher-project-secrets" }}
{{- $names = append $names ($v.target.rancherProjectSecrets.secretName | default "ecr-credentials") }}
{{- else if eq $v.target.mode "file" }}
{{- range $v.configFile.targets }}
{{- if eq (toString .api) "kubernetes" }}{{ $names = append $names (.secret_name | default "ecr-credentials") }}{{ end }}
{{- end }}
{{- end }}
{{- toJson (uniq $names) }}
{{- end }}
