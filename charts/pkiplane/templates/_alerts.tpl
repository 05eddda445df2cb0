{{/*
pkiplane's alerting rules (the `spec` of the PrometheusRule in monitoring.yaml; a
Prometheus rules file as it stands). scripts/check-prometheus-rules renders them and runs
`promtool check rules`; docs/monitoring.md explains each alert.
*/}}
{{- define "pkiplane.alertRules" -}}
{{- $r := .Values.metrics.prometheusRule -}}
{{- $days := int ($r.caExpiringDays | default 30) -}}
groups:
  - name: pkiplane
    rules:
      - alert: PkiplaneCaExpiring
        expr: |
          (pkiplane_ca_not_after_timestamp_seconds - time() < {{ mul $days 86400 }})
            and on (issuer) (pkiplane_ca_next_staged == 0)
        for: 1h
        labels:
          severity: warning
        annotations:
          summary: "CA certificate of Issuer {{`{{ $labels.issuer }}`}} ends within {{ $days }} days and no next CA is staged"
          description: "notAfter is {{`{{ $value | humanizeDuration }}`}} away. Stage a rollover (spec.renewBefore) or renew the Issuer."
      - alert: PkiplaneCaExpiringSoon
        expr: pkiplane_ca_not_after_timestamp_seconds - time() < {{ div (mul $days 86400) 4 }}
        for: 10m
        labels:
          severity: critical
        annotations:
          summary: "CA certificate of Issuer {{`{{ $labels.issuer }}`}} ends in {{`{{ $value | humanizeDuration }}`}}"
          description: "Every certificate it signed stops verifying at its notAfter."
      - alert: PkiplaneCrlStale
        expr: pkiplane_crl_next_update_timestamp_seconds - time() < {{ int ($r.crlStaleSeconds | default 3600) }}
        for: 10m
        labels:
          severity: critical
        annotations:
          summary: "CRL of Issuer {{`{{ $labels.issuer }}`}} is at or past its nextUpdate"
          description: "nextUpdate is {{`{{ $value | humanizeDuration }}`}} away (negative: passed). Relying parties that check CRLs will refuse its certificates."
      - alert: PkiplaneDenialsRising
        expr: |
          sum by (profile, rule) (rate(pkiplane_certificates_denied_total[15m])) > {{ $r.denialsPerSecond | default 0.05 }}
            and
          sum by (profile, rule) (rate(pkiplane_certificates_denied_total[15m]))
            > 2 * sum by (profile, rule) (rate(pkiplane_certificates_denied_total[1h] offset 15m))
        for: 15m
        labels:
          severity: warning
        annotations:
          summary: "Denials under profile {{`{{ $labels.profile }}`}} by rule {{`{{ $labels.rule }}`}} are rising"
          description: "{{`{{ $value | humanize }}`}} denials per second over 15 minutes, more than twice the hour before: a misconfigured fleet or a profile change."
      - alert: PkiplaneEndpointDown
        expr: up{job="{{ .Release.Namespace }}/pkiplane-endpoints"} == 0
        for: 5m
        labels:
          severity: critical
        annotations:
          summary: "Endpoint pod {{`{{ $labels.namespace }}`}}/{{`{{ $labels.pod }}`}} is not answering scrapes"
          description: "Its /metrics (health port) has not answered for 5 minutes."
      - alert: PkiplaneCaServiceDown
        expr: up{job="pkiplane-ca", namespace="{{ .Release.Namespace }}"} == 0 or absent(up{job="pkiplane-ca", namespace="{{ .Release.Namespace }}"})
        for: 5m
        labels:
          severity: critical
        annotations:
          summary: "The pkiplane CA service is not answering scrapes"
          description: "No endpoint can issue while the CA service is down."
{{- end -}}
