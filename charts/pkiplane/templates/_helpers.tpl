{{/* The image of every component: one binary, one subcommand each. */}}
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

{{/* The labels a component's pods are selected by: (dict "root" $ "component" "ca"). */}}
{{- define "pkiplane.selectorLabels" -}}
app.kubernetes.io/name: pkiplane
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* The CA service's internal URL, as the operator passes it to endpoint pods. */}}
{{- define "pkiplane.caUrl" -}}
{{ .Values.operator.caUrl | default (printf "https://pkiplane-ca.%s.svc:9443" .Release.Namespace) }}
{{- end -}}

{{/* The environment every component reads: its log filter and the log format. */}}
{{- define "pkiplane.logEnv" -}}
- name: PKIPLANE_LOG
  value: {{ .logLevel | quote }}
- name: PKIPLANE_LOG_FORMAT
  value: {{ .root.Values.logFormat | quote }}
{{- end -}}

{{/* Pod and container security settings shared by every component (Pod Security
     "restricted"; the image's user is 65532). */}}
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

{{/* Pod template fields shared by every component: (dict "root" $ "account" "pkiplane-ca"). */}}
{{- define "pkiplane.podCommon" -}}
serviceAccountName: {{ .account }}
enableServiceLinks: false
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- include "pkiplane.podSecurityContext" .root | nindent 2 }}
{{- end -}}

{{/* pkiplane is installed once per cluster: its CRDs, ClusterRoles and webhook
     configurations are cluster-wide and its operator reconciles every namespace. When
     another release (or kubectl) already owns them, stop with a message that says so
     instead of Helm's ownership error. Needs a cluster (install, upgrade, template
     --dry-run=server); a plain `helm template` cannot look and renders. */}}
{{- define "pkiplane.singleInstall" -}}
{{- range $ref := list (list "admissionregistration.k8s.io/v1" "ValidatingWebhookConfiguration" "pkiplane-validating") (list "rbac.authorization.k8s.io/v1" "ClusterRole" "pkiplane-operator") }}
{{- $found := lookup (index $ref 0) (index $ref 1) "" (index $ref 2) }}
{{- if $found }}
{{- $annotations := $found.metadata.annotations | default dict }}
{{- $owner := get $annotations "meta.helm.sh/release-name" }}
{{- $ownerNamespace := get $annotations "meta.helm.sh/release-namespace" }}
{{- if or (ne $owner $.Release.Name) (ne $ownerNamespace $.Release.Namespace) }}
{{- $by := ternary "outside Helm" (printf "by release %s in namespace %s" $owner $ownerNamespace) (eq $owner "") }}
{{- fail (printf "pkiplane is already installed in this cluster (%s %s was created %s). pkiplane runs once per cluster: its CRDs, ClusterRoles and webhook configurations are cluster-wide and its operator serves every namespace. Upgrade that installation instead, or uninstall it first." (index $ref 1) (index $ref 2) $by) }}
{{- end }}
{{- end }}
{{- end }}
{{- end -}}
