{{/* The image of every component. */}}
{{- define "pkiplane.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* Labels common to every object of the release. */}}
{{- define "pkiplane.labels" -}}
app.kubernetes.io/name: pkiplane
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}

{{/* The CA service's internal URL, as the operator passes it to endpoint pods. */}}
{{- define "pkiplane.caUrl" -}}
{{ .Values.operator.caUrl | default (printf "https://pkiplane-ca.%s.svc:9443" .Release.Namespace) }}
{{- end -}}

{{/* Pod and container security settings shared by every component. */}}
{{- define "pkiplane.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "pkiplane.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end -}}
