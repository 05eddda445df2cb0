#!/usr/bin/env bash
# A Helm post-renderer for cert-manager's chart in e2e/certmanager.sh: drops the objects
# of cert-manager's admission webhook (Deployment, Service, ServiceAccount, RBAC and the
# webhook configurations, all named <release>-webhook...), which the test does not run:
# its sources are not among those scripts/tools/cert-manager.sh builds from. Everything
# else (the controller's Deployment, ServiceAccount, ClusterRoles and bindings) is
# installed as the chart renders it. Reads the rendered manifests on stdin.
set -euo pipefail
awk -v prefix="${CM_RELEASE:-cert-manager}-webhook" '
  function flush() { if (doc != "" && !drop) printf "---\n%s", doc; doc = ""; drop = 0 }
  /^---/ { flush(); next }
  { doc = doc $0 "\n" }
  $0 ~ ("^  name: \"?" prefix) { drop = 1 }
  END { flush() }
'
