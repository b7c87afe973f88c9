{{/*
Names are DNS labels: at most 63 characters, no trailing "-".
*/}}
{{- define "index-service.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: release + chart name (the release name alone when it already contains the chart name).
*/}}
{{- define "index-service.fullname" -}}
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

{{/*
A name derived from the full name: fullname truncated so that "-<suffix>" fits in 63 characters.
Usage: include "index-service.suffixed" (list . "token")
*/}}
{{- define "index-service.suffixed" -}}
{{- $root := index . 0 }}
{{- $suffix := index . 1 }}
{{- printf "%s-%s" (include "index-service.fullname" $root | trunc (int (sub 62 (len $suffix))) | trimSuffix "-") $suffix }}
{{- end }}

{{- define "index-service.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of every object.
*/}}
{{- define "index-service.labels" -}}
{{ include "index-service.selectorLabels" . }}
app.kubernetes.io/component: index-service
{{ include "index-service.commonLabels" . }}
{{- end }}

{{/*
Labels that say which chart and release made an object, without those that select the service's pods.
*/}}
{{- define "index-service.commonLabels" -}}
helm.sh/chart: {{ include "index-service.chart" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: rag-jobs
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Labels that select the service's pods (never change them on upgrade: Deployment selectors are immutable).
*/}}
{{- define "index-service.selectorLabels" -}}
app.kubernetes.io/name: {{ include "index-service.name" . }}
app.kubernetes.io/instance: {{ .Release.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The label a client pod carries to be let through the NetworkPolicy: rag-jobs.io/index-client=<fullname>.
*/}}
{{- define "index-service.clientLabelKey" -}}
rag-jobs.io/index-client
{{- end }}

{{- define "index-service.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "index-service.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "index-service.tokenSecretName" -}}
{{- default (include "index-service.suffixed" (list . "token")) .Values.auth.existingSecret }}
{{- end }}

{{/*
The image: repository:tag, pinned by digest when one is given (the pipeline image when serving a bundle).
*/}}
{{- define "index-service.image" -}}
{{- $image := .Values.image }}
{{- if .Values.pipeline.bundle }}
{{- $image = .Values.pipeline.image }}
{{- end }}
{{- $tag := default .Chart.AppVersion $image.tag }}
{{- if $image.digest }}
{{- printf "%s:%s@%s" $image.repository $tag $image.digest }}
{{- else }}
{{- printf "%s:%s" $image.repository $tag }}
{{- end }}
{{- end }}

{{/*
The in-cluster URL of the service.
*/}}
{{- define "index-service.url" -}}
{{- printf "http://%s.%s.svc:%v" (include "index-service.fullname" .) .Release.Namespace .Values.service.port }}
{{- end }}
