//! The Pod Security Standards' "restricted" profile (Kubernetes v1.34, the baseline
//! rules included) as a check of a pod spec, plus the read-only root filesystem pkiplane
//! asks of its own pods. The pods the operator creates and the chart's pods are tested
//! against it; a namespace labelled `pod-security.kubernetes.io/enforce=restricted`
//! applies the same rules in the API server.

use k8s_openapi::api::core::v1::{Container, PodSecurityContext, PodSpec, SecurityContext};

/// Volume types the restricted profile allows.
const ALLOWED_VOLUMES: [&str; 8] =
    ["configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"];
/// Sysctls the baseline profile allows.
const SAFE_SYSCTLS: [&str; 9] = [
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
];

/// Every rule of the restricted profile (and pkiplane's read-only root filesystem) the
/// pod breaks, one line each naming the container and the field; empty when it passes.
pub fn restricted_violations(pod: &PodSpec) -> Vec<String> {
    let mut out = Vec::new();
    let pod_ctx = pod.security_context.clone().unwrap_or_default();
    for (flag, name) in [(pod.host_network, "hostNetwork"), (pod.host_pid, "hostPID"), (pod.host_ipc, "hostIPC")] {
        if flag == Some(true) {
            out.push(format!("spec.{name} is true"));
        }
    }
    for v in pod.volumes.iter().flatten() {
        let value = serde_json::to_value(v).unwrap_or_default();
        let kinds: Vec<&String> =
            value.as_object().into_iter().flat_map(|o| o.keys()).filter(|k| *k != "name").collect();
        for kind in kinds {
            if !ALLOWED_VOLUMES.contains(&kind.as_str()) {
                out.push(format!("volume {}: type {kind} is not allowed", v.name));
            }
        }
    }
    for s in pod_ctx.sysctls.iter().flatten() {
        if !SAFE_SYSCTLS.contains(&s.name.as_str()) {
            out.push(format!("spec.securityContext.sysctls: {} is not a safe sysctl", s.name));
        }
    }
    pod_level(&pod_ctx, &mut out);
    let containers = pod.containers.iter().chain(pod.init_containers.iter().flatten());
    for c in containers {
        container(c, &pod_ctx, &mut out);
    }
    out
}

fn pod_level(ctx: &PodSecurityContext, out: &mut Vec<String>) {
    if ctx.run_as_user == Some(0) {
        out.push("spec.securityContext.runAsUser is 0".into());
    }
    if let Some(t) = ctx.se_linux_options.as_ref().and_then(|o| o.type_.as_deref())
        && !["container_t", "container_init_t", "container_kvm_t", "container_engine_t"].contains(&t)
    {
        out.push(format!("spec.securityContext.seLinuxOptions.type {t} is not allowed"));
    }
}

fn container(c: &Container, pod_ctx: &PodSecurityContext, out: &mut Vec<String>) {
    let at = format!("container {}", c.name);
    let ctx: SecurityContext = c.security_context.clone().unwrap_or_default();
    if ctx.privileged == Some(true) {
        out.push(format!("{at}: privileged"));
    }
    if ctx.allow_privilege_escalation != Some(false) {
        out.push(format!("{at}: securityContext.allowPrivilegeEscalation must be false"));
    }
    let non_root = ctx.run_as_non_root.or(pod_ctx.run_as_non_root);
    if non_root != Some(true) {
        out.push(format!("{at}: runAsNonRoot must be true (pod or container)"));
    }
    if ctx.run_as_user == Some(0) {
        out.push(format!("{at}: runAsUser is 0"));
    }
    let seccomp = ctx.seccomp_profile.as_ref().or(pod_ctx.seccomp_profile.as_ref()).map(|s| s.type_.as_str());
    if !matches!(seccomp, Some("RuntimeDefault" | "Localhost")) {
        out.push(format!("{at}: seccompProfile.type must be RuntimeDefault or Localhost (pod or container)"));
    }
    let caps = ctx.capabilities.clone().unwrap_or_default();
    if !caps.drop.iter().flatten().any(|d| d == "ALL") {
        out.push(format!("{at}: capabilities.drop must include ALL"));
    }
    for add in caps.add.iter().flatten().filter(|a| *a != "NET_BIND_SERVICE") {
        out.push(format!("{at}: capability {add} may not be added"));
    }
    if ctx.proc_mount.as_deref().is_some_and(|m| m != "Default") {
        out.push(format!("{at}: procMount must be Default"));
    }
    for p in c.ports.iter().flatten() {
        if p.host_port.is_some_and(|h| h != 0) {
            out.push(format!("{at}: hostPort {}", p.host_port.unwrap_or_default()));
        }
    }
    if ctx.read_only_root_filesystem != Some(true) {
        out.push(format!("{at}: readOnlyRootFilesystem must be true (pkiplane's own rule)"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(yaml: &str) -> PodSpec {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn a_compliant_pod_passes_and_each_rule_is_named() {
        let good = pod(r#"
securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}
containers:
  - name: c
    securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
volumes: [{name: s, secret: {secretName: x}}, {name: t, emptyDir: {}}]
"#);
        assert_eq!(restricted_violations(&good), Vec::<String>::new());

        let bad = pod(r#"
hostNetwork: true
securityContext: {sysctls: [{name: kernel.msgmax, value: "1"}]}
containers:
  - name: c
    ports: [{containerPort: 80, hostPort: 80}]
    securityContext: {privileged: true, capabilities: {add: [NET_ADMIN]}}
volumes: [{name: h, hostPath: {path: /}}]
"#);
        let found = restricted_violations(&bad).join("\n");
        for rule in [
            "hostNetwork",
            "kernel.msgmax",
            "privileged",
            "allowPrivilegeEscalation",
            "runAsNonRoot",
            "seccompProfile",
            "drop must include ALL",
            "NET_ADMIN",
            "hostPort 80",
            "type hostPath",
            "readOnlyRootFilesystem",
        ] {
            assert!(found.contains(rule), "missing {rule} in:\n{found}");
        }
    }
}
