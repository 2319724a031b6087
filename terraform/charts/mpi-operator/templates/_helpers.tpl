{{- /* The labels manifests/overlays/standalone gives every object (kustomize labels, selectors included). */ -}}
{{- define "mpi-operator.selectorLabels" -}}
app: mpi-operator
app.kubernetes.io/component: mpijob
app.kubernetes.io/name: mpi-operator
kustomize.component: mpi-operator
{{- end -}}

{{- define "mpi-operator.labels" -}}
{{ include "mpi-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}
