{{- define "mlcp.labels" -}}
app.kubernetes.io/part-of: mlcp
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}
