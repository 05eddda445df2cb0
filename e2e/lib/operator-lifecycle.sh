# shellcheck shell=bash
# shellcheck disable=SC2154 # set by the script that sources this file
# The operator flow's lifecycle part (sourced by e2e/operator.sh, in $clients, after the
# enrollments): what happens to a running installation, each on real pods.

# ---------------------------------------------------------------------------- counts

profile_status() { kubectl -n pki get certificateprofile enterprise-tls-47d -o jsonpath="{.status.$1}"; }
at_least() { [ "$("${@:2}")" -ge "$1" ] 2>/dev/null; }
until_ok 30 at_least 3 profile_status issued ||
  fail "certificateprofile enterprise-tls-47d .status.issued >= 3 (EST, CMP, ACME) within 30s" "$(kubectl -n pki get certificateprofile enterprise-tls-47d -o jsonpath='{.status}' 2>&1)"
until_ok 30 at_least 1 profile_status perProtocol.CMP.issued ||
  fail "enterprise-tls-47d .status.perProtocol.CMP.issued >= 1 within 30s" "$(kubectl -n pki get certificateprofile enterprise-tls-47d -o jsonpath='{.status}' 2>&1)"
endpoint_issued() { kubectl -n pki get enrollmentendpoint cmp -o jsonpath='{.status.issued}'; }
until_ok 30 at_least 1 endpoint_issued || fail "enrollmentendpoint cmp .status.issued >= 1 within 30s"
issuer_issued() { kubectl -n pki get issuer example-intermediate -o jsonpath='{.status.issued}'; }
until_ok 30 at_least 4 issuer_issued || fail "issuer example-intermediate .status.issued >= 4 within 30s" \
  "$(kubectl -n pki get issuer example-intermediate -o jsonpath='{.status}' 2>&1)"
pass "counts on CertificateProfile ($(profile_status issued), per protocol), EnrollmentEndpoint and Issuer ($(issuer_issued)) status within 30s"

# ---------------------------------------------------------------------------- profile edit

# A shorter validity applies to the next certificate of every protocol, through the
# running pods: the CA service watches the profile, nothing restarts.
all_pods() { kubectl get pods -A -l app.kubernetes.io/name=pkiplane -o jsonpath='{range .items[*]}{.metadata.name}/{.status.containerStatuses[0].restartCount}{" "}{end}'; }
pods_before=$(all_pods)
kubectl -n pki patch certificateprofile enterprise-tls-47d --type=merge -p '{"spec":{"validity":{"duration":"10d"}}}' >/dev/null ||
  fail "kubectl patch enterprise-tls-47d validity 10d"
cmp_short() { cmp_enroll ne2 >/dev/null && [ "$(days_left ne2.pem)" -le 10 ]; }
until_ok 30 cmp_short || fail "after the edit, a CMP certificate of at most 10 days within 30s" "$(openssl x509 -in ne2.pem -noout -dates 2>&1)"
out=$(est_enroll web2) || fail "EST simpleenroll after the profile edit" "$out"
[ "$(days_left web2.pem)" -le 10 ] || fail "after the edit, the EST certificate has $(days_left web2.pem) days (want <= 10)"
out=$(certbot_order second) || fail "certbot after the profile edit" "$out"
acme_left=$(days_left certbot/config/live/second/cert.pem)
[ "$acme_left" -le 10 ] || fail "after the edit, the ACME certificate has $acme_left days (want <= 10)"
kubectl -n pki patch certificateprofile scep-device-90d --type=merge -p '{"spec":{"validity":{"duration":"30d"}}}' >/dev/null ||
  fail "kubectl patch scep-device-90d validity 30d"
scep_short() { scep_enroll router-2 >/dev/null && [ "$(days_left router-2/r.pem)" -le 30 ]; }
until_ok 30 scep_short || fail "after the edit, a SCEP certificate of at most 30 days within 30s"
for cert in ne2.pem web2.pem certbot/config/live/second/cert.pem router-2/r.pem; do
  out=$(verify "$cert") || fail "openssl verify of $cert (after the profile edit)" "$out"
done
[ "$(all_pods)" = "$pods_before" ] || fail "no pod was replaced or restarted by the profile edits" "before: $pods_before
after: $(all_pods)"
pass "profile edits apply to the next certificate, no pod replaced or restarted: enterprise-tls-47d 47d -> 10d gives CMP $(days_left ne2.pem), EST $(days_left web2.pem), ACME $acme_left days; scep-device-90d 90d -> 30d gives SCEP $(days_left router-2/r.pem) days; each verifies"

# ---------------------------------------------------------------------------- operator restart

endpoint_state() {
  kubectl get deployments -A -l app.kubernetes.io/managed-by=pkiplane-operator -o jsonpath='{range .items[*]}{.metadata.namespace}/{.metadata.name}/{.metadata.uid}{"\n"}{end}' | sort
  for d in acme est scep cmp; do pods_of pki "$d-pkiplane"; done
}
state_before=$(endpoint_state)
out=$(kubectl -n "$NS" rollout restart deployment/pkiplane-operator 2>&1) || fail "kubectl rollout restart deployment/pkiplane-operator" "$out"
out=$(kubectl -n "$NS" rollout status deployment/pkiplane-operator --timeout=180s 2>&1) || fail "the operators restart" "$out"
sleep 10 # at least one full reconcile pass of every object by the new leader
[ "$(endpoint_state)" = "$state_before" ] || fail "after the operators restart the endpoint Deployments and pods are the same" \
  "before: $state_before
after: $(endpoint_state)"
out=$(kubectl -n pki wait --for=condition=Ready enrollmentendpoints --all --timeout=60s 2>&1) ||
  fail "all enrollmentendpoints still Ready after the operator restart" "$out"
pass "operators restarted (rollout restart): same endpoint Deployments, no duplicates, no endpoint pod replaced, endpoints Ready"

# ---------------------------------------------------------------------------- leader failover

until_ok 30 holder || fail "an operator holds the Lease after the restart"
leader=$(holder)
leader_pod=${leader%-*} # the identity is the pod's name and the process id
operator_pods() { kubectl -n "$NS" get pods -l app.kubernetes.io/component=operator -o jsonpath='{range .items[*]}{.metadata.name}{" "}{end}'; }
standby=$(operator_pods | tr ' ' '\n' | grep -v "^$leader_pod$" | sed '/^$/d' | head -n 1)
[ -n "$standby" ] || fail "a second operator pod besides the leader $leader" "$(operator_pods)"
sleep 8 # more than one renewal period of the leader
[ "$(holder)" = "$leader" ] || fail "the standby replica stays passive while the leader renews" "holder now: $(holder)"
kubectl -n "$NS" delete pod "$leader_pod" --wait=false >/dev/null
# The leader releases the Lease when it stops; whichever replica asks first takes it: the
# standby, or the pod the Deployment starts in the deleted one's place.
another_leads() {
  local h
  h=$(holder)
  [ -n "$h" ] && [ "${h%-*}" != "$leader_pod" ] && grep -qw "${h%-*}" <<<"$(operator_pods)"
}
until_ok 60 another_leads || fail "another operator replica takes the Lease after the leader's pod $leader_pod is deleted" "holder: $(holder)"
new_leader=$(holder)
role="the standby"
[ "${new_leader%-*}" = "$standby" ] || role="the replacement pod"
pass "leader failover: the standby $standby stayed passive while the leader renewed; when the leader's pod $leader_pod was deleted, $role ${new_leader%-*} took the Lease"

# The new leader reconciles: an edited Service port is put back.
port_before=$(kubectl -n pki get service cmp-pkiplane -o jsonpath='{.spec.ports[0].port}')
kubectl -n pki patch service cmp-pkiplane --type=json -p '[{"op":"replace","path":"/spec/ports/0/port","value":9999}]' >/dev/null
port_restored() { [ "$(kubectl -n pki get service cmp-pkiplane -o jsonpath='{.spec.ports[0].port}')" = "$port_before" ]; }
until_ok 40 port_restored || fail "drift: the edited Service cmp-pkiplane gets port $port_before back within 40s"
until_ok 20 cmp_enroll ne3 || fail "CMP through the repaired Service" "$(cmp_enroll ne3)"
out=$(verify ne3.pem) || fail "openssl verify of the CMP certificate through the repaired Service" "$out"
pass "drift: an edited Service port (9999) is reverted to $port_before by the new leader; CMP enrolls through it again"

old_uid=$(kubectl -n pki get deployment est-pkiplane -o jsonpath='{.metadata.uid}')
kubectl -n pki delete deployment est-pkiplane --wait=true >/dev/null
recreated_ready() {
  local uid ready
  uid=$(kubectl -n pki get deployment est-pkiplane -o jsonpath='{.metadata.uid}') || return 1
  ready=$(kubectl -n pki get deployment est-pkiplane -o jsonpath='{.status.readyReplicas}')
  [ -n "$uid" ] && [ "$uid" != "$old_uid" ] && [ "${ready:-0}" -ge 1 ]
}
until_ok 90 recreated_ready || fail "deleted Deployment est-pkiplane recreated and ready within 90s"
until_ok 20 est_enroll web3 || fail "EST through the re-created Deployment" "$(est_enroll web3)"
out=$(verify web3.pem) || fail "openssl verify of the EST certificate through the re-created Deployment" "$out"
pass "drift: the deleted Deployment est-pkiplane came back (new uid) with a ready pod; EST enrolls through it"

# ---------------------------------------------------------------------------- stranding warning

active=$(profile_status active)
[ "${active:-0}" -ge 1 ] || fail "enterprise-tls-47d has active certificates on its status" "active=$active"
out=$(kubectl -n pki patch certificateprofile enterprise-tls-47d --type=merge \
  -p '{"spec":{"issuerRef":{"name":"example-root"}}}' 2>&1) || fail "the stranding update was refused" "$out"
grep -q "Warning: .*strands $active active" <<<"$out" || fail "kubectl printed no stranding warning naming $active certificates" "$out"
pass "stranding update admitted; kubectl printed: $(grep -o 'Warning: .*' <<<"$out" | head -1 | cut -c1-110)..."

# ---------------------------------------------------------------------------- webhook fails closed

probe_profile() {
  kubectl -n pki create --dry-run=server -f - 2>&1 <<'EOF'
apiVersion: pkiplane.dev/v1alpha1
kind: CertificateProfile
metadata: {name: fail-closed-probe, namespace: pki}
spec:
  issuerRef: {name: example-intermediate}
  validity: {duration: 30d}
  subjectAltNames: {dns: {suffixes: [example.com]}}
EOF
}
out=$(probe_profile) || fail "a valid CertificateProfile is admitted while the webhook runs" "$out"
kubectl -n "$NS" scale deployment pkiplane-webhook --replicas=0 >/dev/null
no_webhook() { [ -z "$(kubectl -n "$NS" get pods -l app.kubernetes.io/component=webhook -o name)" ]; }
until_ok 60 no_webhook || fail "the webhook pods are gone after scaling to 0"
refused() { ! out=$(probe_profile) && grep -q 'failed calling webhook' <<<"$out"; }
until_ok 20 refused || fail "with no webhook replica, admission of a CertificateProfile fails closed" "$(probe_profile)"
out=$(probe_profile || true)
kubectl -n "$NS" scale deployment pkiplane-webhook --replicas=2 >/dev/null
out2=$(kubectl -n "$NS" rollout status deployment/pkiplane-webhook --timeout=120s 2>&1) || fail "the webhook comes back" "$out2"
until_ok 30 probe_profile || fail "admission works again once a webhook replica is Ready" "$(probe_profile)"
pass "webhook fails closed: with 0 replicas kubectl got '$(grep -o 'failed calling webhook[^:]*' <<<"$out" | head -1)'; admitted again once Ready"

# ---------------------------------------------------------------------------- deletion

est_selector=app.kubernetes.io/instance=est
kubectl -n pki delete enrollmentendpoint est --wait=true --timeout=60s >/dev/null || fail "delete enrollmentendpoint est within 60s"
children_gone() {
  [ -z "$(kubectl -n pki get deployment,replicaset,pod,service,secret,configmap -l "$est_selector" -o name)" ] &&
    ! kubectl -n pki get deployment est-pkiplane >/dev/null 2>&1 && ! kubectl -n pki get service est-pkiplane >/dev/null 2>&1
}
until_ok 60 children_gone || fail "the children of enrollmentendpoint est are gone within 60s" \
  "$(kubectl -n pki get deployment,replicaset,pod,service,secret -l "$est_selector" 2>&1)"
pass "deletion: EnrollmentEndpoint est's Deployment, ReplicaSet, pods, Service and Secrets are garbage-collected"

# ---------------------------------------------------------------------------- helm upgrade

# A changed value rolls only the Deployment it concerns: here the webhook's log level.
component_pods() { kubectl -n "$NS" get pods -l "app.kubernetes.io/component=$1" -o jsonpath='{range .items[*]}{.metadata.name}{" "}{end}'; }
replicasets() { kubectl -n "$1" get replicasets -o jsonpath='{range .items[?(@.spec.replicas>0)]}{.metadata.name}{" "}{end}'; }
untouched_before="ca: $(component_pods ca) operator: $(component_pods operator) rs: $(replicasets "$NS" | tr ' ' '\n' | grep -v webhook | tr '\n' ' ') endpoints: $(replicasets pki) $(for d in acme scep cmp; do pods_of pki "$d-pkiplane"; done)"
webhook_before=$(component_pods webhook)
t_up=$SECONDS
out=$(chart_helm upgrade pkiplane "$root/charts/pkiplane" --namespace "$NS" --reuse-values --set webhook.logLevel=debug --wait --timeout 5m 2>&1) ||
  fail "helm upgrade --set webhook.logLevel=debug" "$out"
webhook_replaced() {
  local now p
  now=$(component_pods webhook)
  [ "$(wc -w <<<"$now")" = 2 ] || return 1
  for p in $webhook_before; do grep -qw "$p" <<<"$now" && return 1; done
  return 0
}
until_ok 60 webhook_replaced || fail "the webhook's pods are replaced by the upgrade" "before: $webhook_before now: $(component_pods webhook)"
untouched_after="ca: $(component_pods ca) operator: $(component_pods operator) rs: $(replicasets "$NS" | tr ' ' '\n' | grep -v webhook | tr '\n' ' ') endpoints: $(replicasets pki) $(for d in acme scep cmp; do pods_of pki "$d-pkiplane"; done)"
[ "$untouched_after" = "$untouched_before" ] || fail "helm upgrade left the CA, the operators and the endpoints alone" "before: $untouched_before
after:  $untouched_after"
[ "$(kubectl -n "$NS" get deployment pkiplane-webhook -o jsonpath='{.spec.template.spec.containers[0].env[?(@.name=="PKIPLANE_LOG")].value}')" = debug ] ||
  fail "the webhook runs with PKIPLANE_LOG=debug"
pass "helm upgrade --set webhook.logLevel=debug ($((SECONDS - t_up))s) replaced only the webhook's pods ($webhook_before-> $(component_pods webhook)); CA, operator and endpoint ReplicaSets and pods unchanged"

# ---------------------------------------------------------------------------- helm uninstall, install again

issued_before=$(profile_status issued)
out=$(chart_helm uninstall pkiplane --namespace "$NS" --wait --timeout 3m 2>&1) || fail "helm uninstall pkiplane" "$out"
release_gone() { [ -z "$(kubectl -n "$NS" get deployments,pods -l app.kubernetes.io/instance=pkiplane -o name)" ]; }
until_ok 60 release_gone || fail "helm uninstall removes the release's Deployments and pods" "$(kubectl -n "$NS" get all 2>&1)"
[ "$(kubectl -n "$NS" get pvc pkiplane-ca-data -o jsonpath='{.status.phase}' 2>&1)" = Bound ] ||
  fail "helm uninstall keeps PVC pkiplane-ca-data (issuer keys and inventory)" "$(kubectl -n "$NS" get pvc 2>&1)"
pass "helm uninstall: the components are gone, PVC pkiplane-ca-data is kept (helm.sh/resource-policy: keep)"

t_re=$SECONDS
out=$(chart_install pkiplane "$NS" 2>&1) || fail "helm install pkiplane again" "$out"
until_ok 60 check_release_pods 5 || fail "5 pods of the re-installed release Running and Ready" "$(kubectl -n "$NS" get pods 2>&1)"
out=$(kubectl -n pki wait --for=condition=Ready issuers,certificateprofiles,enrollmentendpoints --all --timeout=120s 2>&1) ||
  fail "the quickstart Ready again after the re-install" "$out"
until_ok 30 in_node curl -fsS "http://$ca_svc:8080/issuers/pki/example-root/ca.pem" -o root-again.pem ||
  fail "the re-installed CA service publishes pki/example-root"
in_node curl -fsS "http://$ca_svc:8080/issuers/pki/example-intermediate/ca.pem" -o intermediate-again.pem
{ cmp -s root.pem root-again.pem && cmp -s intermediate.pem intermediate-again.pem; } ||
  fail "the re-installed CA reuses the issuer keys: the same root and intermediate certificates" "$(diff root.pem root-again.pem | head -5)"
until_ok 30 cmp_enroll ne4 || fail "CMP after the re-install" "$(cmp_enroll ne4)"
out=$(verify ne4.pem) || fail "openssl verify of the CMP certificate issued after the re-install" "$out"
# A fresh inventory would count 1; the kept one counts on from before.
one_more() { [ "$(profile_status issued)" -gt "$issued_before" ]; }
until_ok 30 one_more || fail "the inventory continues: enterprise-tls-47d status.issued > $issued_before" "issued: $(profile_status issued)"
pass "helm install again ($((SECONDS - t_re))s) reuses PVC pkiplane-ca-data: the same root and intermediate certificates, the inventory continues (issued $issued_before -> $(profile_status issued))"
