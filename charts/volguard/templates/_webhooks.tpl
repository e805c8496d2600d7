{{/*
Both webhook configurations, whole: rendered as objects (tls.mode generate, certManager, secret), or, with
tls.mode selfManaged, into the ConfigMap FULLNAME-webhooks that volguard's leader applies once it serves.
Called with (dict "root" $ "caBundle" BASE64-OR-EMPTY).
*/}}
{{- define "volguard.webhookConfigurations" -}}
{{- $root := .root }}
{{- $caBundle := .caBundle }}
{{- $fullname := include "volguard.fullname" $root }}
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: {{ $fullname }}
  labels:
    {{- include "volguard.labels" $root | nindent 4 }}
  {{- if eq $root.Values.tls.mode "certManager" }}
  annotations:
    cert-manager.io/inject-ca-from: {{ $root.Release.Namespace }}/{{ $fullname }}
  {{- end }}
webhooks:
  - name: validate.volguard.io
    admissionReviewVersions: ["v1"]
    sideEffects: None
    matchPolicy: Equivalent
    failurePolicy: {{ $root.Values.webhook.failurePolicy }}
    timeoutSeconds: {{ $root.Values.webhook.timeoutSeconds }}
    clientConfig:
      service:
        name: {{ $fullname }}
        namespace: {{ $root.Release.Namespace }}
        path: /validate
        port: 443
      {{- if $caBundle }}
      caBundle: {{ $caBundle }}
      {{- end }}
    namespaceSelector:
      {{- include "volguard.namespaceSelector" $root | nindent 6 }}
    rules:
      {{- include "volguard.webhookRules" $root | nindent 6 }}
  {{- if $root.Values.webhook.pods.enabled }}
  - name: pods.validate.volguard.io
    admissionReviewVersions: ["v1"]
    sideEffects: None
    matchPolicy: Equivalent
    failurePolicy: {{ $root.Values.webhook.pods.failurePolicy }}
    timeoutSeconds: {{ $root.Values.webhook.timeoutSeconds }}
    clientConfig:
      service:
        name: {{ $fullname }}
        namespace: {{ $root.Release.Namespace }}
        path: /validate
        port: 443
      {{- if $caBundle }}
      caBundle: {{ $caBundle }}
      {{- end }}
    namespaceSelector:
      {{- include "volguard.namespaceSelector" $root | nindent 6 }}
    {{- if semverCompare ">=1.28-0" $root.Capabilities.KubeVersion.Version }}
    # Only bare pods reach volguard: those a controller volguard reads owns are counted through it.
    matchConditions:
      - name: bare-pods-only
        expression: {{ include "volguard.barePodCondition" $root | quote }}
    {{- end }}
    rules:
      {{- include "volguard.podRules" $root | nindent 6 }}
  {{- end }}
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata:
  name: {{ $fullname }}
  labels:
    {{- include "volguard.labels" $root | nindent 4 }}
  {{- if eq $root.Values.tls.mode "certManager" }}
  annotations:
    cert-manager.io/inject-ca-from: {{ $root.Release.Namespace }}/{{ $fullname }}
  {{- end }}
webhooks:
  - name: mutate.volguard.io
    admissionReviewVersions: ["v1"]
    sideEffects: None
    matchPolicy: Equivalent
    # Another mutating webhook may change the object after volguard: look at it again.
    reinvocationPolicy: IfNeeded
    failurePolicy: {{ $root.Values.webhook.failurePolicy }}
    timeoutSeconds: {{ $root.Values.webhook.timeoutSeconds }}
    clientConfig:
      service:
        name: {{ $fullname }}
        namespace: {{ $root.Release.Namespace }}
        path: /mutate
        port: 443
      {{- if $caBundle }}
      caBundle: {{ $caBundle }}
      {{- end }}
    namespaceSelector:
      {{- include "volguard.namespaceSelector" $root | nindent 6 }}
    rules:
      {{- include "volguard.webhookRules" $root | nindent 6 }}
{{- end }}
