{{/*
Names and labels. The blocks further down marked "compared" are kept free of templating (except
.Release.Namespace) so that tests/install/chart.rs can check them, without Helm, against the objects
`volguard manifests` builds (src/install/).
*/}}

{{- define "volguard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "volguard.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "volguard.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "volguard.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "volguard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "volguard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "volguard.labels" -}}
{{ include "volguard.selectorLabels" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{- define "volguard.tlsSecret" -}}
{{- if and (eq .Values.tls.mode "secret") .Values.tls.secret.name }}
{{- .Values.tls.secret.name }}
{{- else }}
{{- printf "%s-tls" (include "volguard.fullname" .) }}
{{- end }}
{{- end }}

{{/* compared: what the webhooks are sent (src/install/webhook.rs webhook_rules). */}}
{{- define "volguard.webhookRules" -}}
- apiGroups: ["apps"]
  apiVersions: ["v1"]
  operations: ["CREATE", "UPDATE"]
  resources:
    - deployments
    - statefulsets
    - daemonsets
    - replicasets
    - deployments/scale
    - statefulsets/scale
    - replicasets/scale
  scope: Namespaced
- apiGroups: [""]
  apiVersions: ["v1"]
  operations: ["CREATE", "UPDATE"]
  resources:
    - replicationcontrollers
    - persistentvolumeclaims
    - replicationcontrollers/scale
  scope: Namespaced
- apiGroups: ["batch"]
  apiVersions: ["v1"]
  operations: ["CREATE", "UPDATE"]
  resources: ["jobs", "cronjobs"]
  scope: Namespaced
- apiGroups: ["autoscaling"]
  apiVersions: ["v1", "v2"]
  operations: ["CREATE", "UPDATE"]
  resources: ["horizontalpodautoscalers"]
  scope: Namespaced
{{- end }}
{{- /*
Bare pods: the pods webhook (`volguard manifests` builds the same from the table of kinds).
*/ -}}
{{- define "volguard.podRules" -}}
- apiGroups: [""]
  apiVersions: ["v1"]
  operations: ["CREATE"]
  resources: ["pods"]
  scope: Namespaced
{{- end }}
{{- define "volguard.barePodCondition" -}}
!has(object.metadata.ownerReferences) || !object.metadata.ownerReferences.exists(r, has(r.controller) && r.controller && r.kind in ['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'ReplicationController', 'Job', 'CronJob'])
{{- end }}


{{/* compared: every namespace but kube-system, volguard's own, those exempt by name and, with
webhook.labelExemption, those labelled volguard.io/ignore=true (src/install/webhook.rs namespace_selector).
tests/install/chart.rs compares the default rendering; tests/e2e/chart_render.rs renders the others with Helm. */}}
{{- define "volguard.namespaceSelector" -}}
matchExpressions:
  - key: kubernetes.io/metadata.name
    operator: NotIn
    values: {{ include "volguard.exemptNamespaces" . }}
{{- if .Values.webhook.labelExemption }}
  - key: volguard.io/ignore
    operator: NotIn
    values: ["true"]
{{- end }}
{{- end }}

{{/* kube-system, the release namespace, then webhook.exemptNamespaces not already listed, as a flow list. */}}
{{- define "volguard.exemptNamespaces" -}}
{{- $names := list "kube-system" .Release.Namespace }}
{{- range .Values.webhook.exemptNamespaces }}
{{- if not (has . $names) }}
{{- $names = append $names . }}
{{- end }}
{{- end }}
{{- $names | toJson }}
{{- end }}

{{/* compared: read-only access to what the rules look up (src/install/workload.rs cluster_role_rules). */}}
{{- define "volguard.clusterRoleRules" -}}
- apiGroups: ["apps"]
  resources: ["deployments", "statefulsets", "daemonsets", "replicasets"]
  verbs: ["get", "list", "watch"]
- apiGroups: [""]
  resources: ["replicationcontrollers", "pods", "persistentvolumeclaims"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["batch"]
  resources: ["jobs", "cronjobs"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["storage.k8s.io"]
  resources: ["storageclasses"]
  verbs: ["get", "list", "watch"]
{{- end }}

{{/* Self-managed TLS: the Secret and the Lease (src/install/tls.rs role_rules; tests/e2e/chart_render.rs
compares the rendering). list and watch are limited by name too: volguard watches the Secret with a
metadata.name field selector, which the API server authorizes as that name. */}}
{{- define "volguard.tlsRoleRules" -}}
{{- $fullname := include "volguard.fullname" . }}
- apiGroups: [""]
  resources: ["secrets"]
  resourceNames: [{{ include "volguard.tlsSecret" . | quote }}]
  verbs: ["get", "list", "watch", "update", "patch"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["create"]
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  resourceNames: [{{ $fullname | quote }}]
  verbs: ["get", "update", "patch"]
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["create"]
{{- end }}

{{/* Self-managed TLS: volguard's own webhook configurations: their webhooks and caBundle, and deleting
them in the pre-delete hook (src/install/tls.rs cluster_role_rules). */}}
{{- define "volguard.tlsClusterRoleRules" -}}
{{- $fullname := include "volguard.fullname" . }}
- apiGroups: ["admissionregistration.k8s.io"]
  resources: ["validatingwebhookconfigurations", "mutatingwebhookconfigurations"]
  resourceNames: [{{ $fullname | quote }}]
  verbs: ["get", "patch", "delete"]
{{- end }}

{{/* compared: src/install/workload.rs probes. */}}
{{- define "volguard.probes" -}}
readinessProbe:
  httpGet:
    path: /readyz
    port: https
    scheme: HTTPS
  periodSeconds: 10
  timeoutSeconds: 2
  failureThreshold: 3
livenessProbe:
  httpGet:
    path: /healthz
    port: https
    scheme: HTTPS
  periodSeconds: 10
  timeoutSeconds: 2
  failureThreshold: 6
{{- end }}

{{/* compared: src/install/workload.rs container_security_context. */}}
{{- define "volguard.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}
