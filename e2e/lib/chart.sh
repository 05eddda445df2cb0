# shellcheck shell=bash
# shellcheck disable=SC2154 # set by the script that sources this file
# The pkiplane chart on the real node (e2e/node.sh), as a platform team installs it:
# the image built by scripts/image.sh and imported into the node's containerd, then
# `helm install charts/pkiplane`. Sourced by e2e scripts that run on a node (the
# operator flow, the scale benchmark); expects the node's environment (`eval "$(e2e/node.sh
# up)"`) and $root, the repository.
#
#   chart_image ARCHIVE          build the image into the OCI archive ARCHIVE (skipped when
#                                $PKIPLANE_IMAGE_ARCHIVE names one already built) and print
#                                its reference (the chart's default image)
#   chart_load ARCHIVE REF       import the archive into the node as REF
#   chart_install RELEASE NS [HELM ARGS...]
#                                helm install with --wait: the CA with its PVC, the operators,
#                                the webhook, all Ready; NS must exist
#   chart_helm ARGS...           helm (built by scripts/tools/helm.sh) with the node's kubeconfig

chart_helm() {
  local helm
  helm=$("$root/scripts/tools/helm.sh")
  "$helm" --kubeconfig "$KUBECONFIG" "$@"
}

chart_image() {
  local archive=$1
  if [ -n "${PKIPLANE_IMAGE_ARCHIVE:-}" ]; then
    cp "$PKIPLANE_IMAGE_ARCHIVE" "$archive"
    # The reference the archive was saved under (podman's oci-archive names it).
    tar -xOf "$archive" index.json |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"])'
    return
  fi
  "$root/scripts/image.sh" --archive "$archive"
}

chart_load() {
  "$root/e2e/node.sh" load-image "$1" "$2"
}

chart_install() {
  local release=$1 ns=$2; shift 2
  chart_helm install "$release" "$root/charts/pkiplane" --namespace "$ns" --wait --timeout 5m "$@"
}
