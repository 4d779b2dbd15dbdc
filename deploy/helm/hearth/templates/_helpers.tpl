{{/* Names, labels and derived sizes shared by the hearth chart's templates. */}}

{{- define "hearth.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "hearth.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "hearth.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "hearth.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "hearth.labels" -}}
app.kubernetes.io/name: {{ include "hearth.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Selector labels of one component: pass (dict "root" $ "component" "serve"). */}}
{{- define "hearth.selector" -}}
app.kubernetes.io/name: {{ include "hearth.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "hearth.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "hearth.serveName" -}}{{ include "hearth.fullname" . }}-serve{{- end -}}
{{- define "hearth.headless" -}}{{ include "hearth.fullname" . }}-serve-pods{{- end -}}
{{- define "hearth.secret" -}}{{ default (printf "%s-keys" (include "hearth.fullname" .)) .Values.gateway.existingSecret }}{{- end -}}

{{/* The most replicas there can be: the gateway lists each of them as a backend. */}}
{{- define "hearth.maxReplicas" -}}
{{- if or .Values.autoscaling.enabled .Values.autoscaling.keda.enabled -}}
{{- .Values.autoscaling.maxReplicas -}}
{{- else -}}
{{- .Values.serve.replicas -}}
{{- end -}}
{{- end -}}

{{/* Memory of one replica in MiB: weights + KV cache + overhead. */}}
{{- define "hearth.serveMemory" -}}
{{- add .Values.model.sizeMiB .Values.serve.kvCacheMiB .Values.serve.overheadMiB -}}Mi
{{- end -}}

{{/* What serve loads: the fetched repository, or the path on the volume. */}}
{{- define "hearth.modelArg" -}}
{{- if .Values.model.fetch.enabled -}}{{ .Values.model.fetch.repo }}{{- else -}}{{ .Values.model.path }}{{- end -}}
{{- end -}}
