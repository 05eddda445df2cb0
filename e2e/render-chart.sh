#!/usr/bin/env bash
# Renders charts/pkiplane with `helm template` (helm v3 built from the Go module proxy by
# scripts/tools/helm.sh, cached) and prints the manifests, optionally only some kinds.
# The e2e flow (e2e/operator.sh) applies the ServiceAccounts, RBAC and Services from it.
#
# Usage: e2e/render-chart.sh [--namespace NS] [--release NAME] [--kinds K1,K2,...] [--set k=v]...
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

namespace=pkiplane-system
release=pkiplane
kinds=""
sets=()
while [ $# -gt 0 ]; do
  case $1 in
    --namespace) namespace=$2; shift 2 ;;
    --release) release=$2; shift 2 ;;
    --kinds) kinds=$2; shift 2 ;;
    --set) sets+=(--set "$2"); shift 2 ;;
    *) echo "render-chart.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

helm=$("$root/scripts/tools/helm.sh")
# The harness's Kubernetes version (helm template would otherwise assume v1.20).
kube_version=$(awk '$1=="k8s.io/kubernetes" && $2 ~ /^v/ {print $2; exit}' "$root/e2e/tools/go.mod")
"$helm" template "$release" "$root/charts/pkiplane" --namespace "$namespace" \
  --kube-version "${kube_version#v}" "${sets[@]}" | python3 -c '
import re, sys
kinds = set(k for k in sys.argv[1].split(",") if k)
docs = re.split(r"(?m)^---\s*$", sys.stdin.read())
out = []
for doc in docs:
    m = re.search(r"(?m)^kind:\s*(\S+)", doc)
    if m and (not kinds or m.group(1) in kinds):
        out.append(doc.strip("\n"))
print("---\n" + "\n---\n".join(out) if out else "")
' "$kinds"
