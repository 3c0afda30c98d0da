{{/* Chart name, overridable. */}}
{{- define "tep-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: release name + chart name (once), at most 63 characters. */}}
{{- define "tep-operator.fullname" -}}
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

{{- define "tep-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "tep-operator.labels" -}}
helm.sh/chart: {{ include "tep-operator.chart" . }}
{{ include "tep-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: tep-operator
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of the operator pod. */}}
{{- define "tep-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tep-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "tep-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tep-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* image reference: repository:tag or repository@digest; tag defaults to appVersion. */}}
{{- define "tep-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "tep-operator.runnerImage" -}}
{{- printf "%s:%s" .Values.runner.image.repository (default .Chart.AppVersion .Values.runner.image.tag) }}
{{- end }}

{{/* The operator's default reports claim. */}}
{{- define "tep-operator.reportsClaim" -}}
{{- default .Values.reports.claimName .Values.reports.existingClaim }}
{{- end }}

{{/* Namespaces in which the chart creates the reports claim, as a JSON list. */}}
{{- define "tep-operator.reportsNamespaces" -}}
{{- if .Values.reports.namespaces }}
{{- toJson (uniq .Values.reports.namespaces) }}
{{- else if .Values.watchNamespaces }}
{{- toJson (uniq .Values.watchNamespaces) }}
{{- else }}
{{- toJson (list .Release.Namespace) }}
{{- end }}
{{- end }}

{{/* Selector labels of the reports server's pods: a name of their own, so that neither the
operator's Deployment nor its metrics Service ever selects them. */}}
{{- define "tep-operator.reportsServerSelectorLabels" -}}
app.kubernetes.io/name: {{ include "tep-operator.name" . }}-reports
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The namespace of the reports server: the one whose reports claim it mounts. */}}
{{- define "tep-operator.reportsServerNamespace" -}}
{{- default (include "tep-operator.reportsNamespaces" . | fromJsonArray | first) .Values.reportsServer.namespace }}
{{- end }}
