{{- define "cargobay.name" -}}{{ .Release.Name }}-cargobay{{- end -}}

{{- define "cargobay.labels" -}}
app.kubernetes.io/name: cargobay
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "cargobay.selector" -}}
app.kubernetes.io/name: cargobay
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "cargobay.databaseUrl" -}}
{{- if .Values.postgresql.enabled -}}
postgresql://{{ .Values.postgresql.user }}:{{ .Values.postgresql.password }}@{{ include "cargobay.name" . }}-postgres:5432/{{ .Values.postgresql.database }}
{{- else -}}
{{ required "postgresql.externalUrl is required when postgresql.enabled is false" .Values.postgresql.externalUrl }}
{{- end -}}
{{- end -}}

{{- define "cargobay.s3Endpoint" -}}
{{- if .Values.s3.enabled -}}
http://{{ include "cargobay.name" . }}-s3:7070
{{- else -}}
{{ required "s3.externalEndpoint is required when s3.enabled is false" .Values.s3.externalEndpoint }}
{{- end -}}
{{- end -}}

{{- define "cargobay.masterKey" -}}
{{- if .Values.masterKey -}}
{{ .Values.masterKey }}
{{- else -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (printf "%s-secrets" (include "cargobay.name" .)) -}}
{{- if and $existing (index $existing.data "master.key") -}}
{{ index $existing.data "master.key" | b64dec }}
{{- else -}}
{{ randBytes 32 }}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The container spec shared by the API replicas, the workers and the migration init container. */}}
{{- define "cargobay.container" -}}
image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
imagePullPolicy: {{ .Values.image.pullPolicy }}
envFrom:
  - configMapRef:
      name: {{ include "cargobay.name" . }}-config
  - secretRef:
      name: {{ include "cargobay.name" . }}-env
volumeMounts:
  - name: master-key
    mountPath: /run/secrets/cargobay
    readOnly: true
  - name: data
    mountPath: /data
{{- end -}}

{{- define "cargobay.volumes" -}}
- name: master-key
  secret:
    secretName: {{ include "cargobay.name" . }}-secrets
    defaultMode: 0440  # root-owned, group fsGroup: the cargobay user reads it through its group
- name: data
  emptyDir: {}
{{- end -}}
