{{/* The chart's name. */}}
{{- define "flux-commit-tracker.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Name of every object: the release name, unless it already holds the chart's name. */}}
{{- define "flux-commit-tracker.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "flux-commit-tracker.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Labels that select the pods. */}}
{{- define "flux-commit-tracker.selectorLabels" -}}
app.kubernetes.io/name: {{ include "flux-commit-tracker.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "flux-commit-tracker.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "flux-commit-tracker.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "flux-commit-tracker.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "flux-commit-tracker.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* An environment variable from a key of an existing Secret: (list "NAME" .secretRef optional). */}}
{{- define "flux-commit-tracker.secretEnv" -}}
{{- $name := index . 0 -}}
{{- $ref := index . 1 -}}
- name: {{ $name }}
  valueFrom:
    secretKeyRef:
      name: {{ $ref.existingSecret }}
      key: {{ $ref.key }}
      {{- if index . 2 }}
      optional: true
      {{- end }}
{{- end -}}

{{/* A plain environment variable, only when its value is set: (list "NAME" value). */}}
{{- define "flux-commit-tracker.env" -}}
{{- $value := index . 1 -}}
{{- if or (and (kindIs "string" $value) (ne $value "")) (kindIs "bool" $value) (kindIs "float64" $value) (kindIs "int64" $value) (kindIs "int" $value) }}
- name: {{ index . 0 }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end -}}

{{/* The ledger's ConfigMaps, as internal/ledger names them (DefaultPrefix, DefaultShards). */}}
{{- define "flux-commit-tracker.ledgerShards" -}}
{{- range $i := until 256 }}
- flux-commit-tracker-ledger-{{ printf "%02d" $i }}
{{- end }}
{{- end -}}
