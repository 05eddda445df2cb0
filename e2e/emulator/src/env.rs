//! A container's environment as the kubelet builds it: `envFrom` first, then `env` in
//! order (each value may reference earlier ones with `$(NAME)`), with `secretKeyRef`,
//! `configMapKeyRef` and downward API fields resolved.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use anyhow::{Context, Result, anyhow, bail};
use k8s_openapi::api::core::v1::{ConfigMap, Container, Secret};
use kube::{Api, Client};

use crate::rewrite::expand_vars;

/// What the downward API can tell about an emulated pod.
#[derive(Debug, Clone)]
pub struct PodIdentity {
    pub namespace: String,
    pub name: String,
    pub ip: Ipv4Addr,
    pub service_account: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

/// The value of a downward API `fieldPath`.
pub fn field_value(pod: &PodIdentity, field_path: &str) -> Result<String> {
    let map_line = |m: &BTreeMap<String, String>| m.iter().map(|(k, v)| format!("{k}=\"{v}\"\n")).collect::<String>();
    Ok(match field_path {
        "metadata.name" => pod.name.clone(),
        "metadata.namespace" => pod.namespace.clone(),
        "status.podIP" | "status.podIPs" => pod.ip.to_string(),
        "status.hostIP" | "status.hostIPs" => "127.0.0.1".to_string(),
        "spec.nodeName" => "localhost".to_string(),
        "spec.serviceAccountName" => pod.service_account.clone(),
        "metadata.labels" => map_line(&pod.labels),
        "metadata.annotations" => map_line(&pod.annotations),
        other => {
            if let Some(key) = other.strip_prefix("metadata.labels['").and_then(|k| k.strip_suffix("']")) {
                pod.labels.get(key).cloned().unwrap_or_default()
            } else if let Some(key) = other.strip_prefix("metadata.annotations['").and_then(|k| k.strip_suffix("']")) {
                pod.annotations.get(key).cloned().unwrap_or_default()
            } else {
                bail!("downward API field {other:?} is not emulated")
            }
        }
    })
}

/// The container's environment variables, in the order the kubelet sets them.
pub async fn resolve(client: &Client, pod: &PodIdentity, container: &Container) -> Result<Vec<(String, String)>> {
    let mut env: Vec<(String, String)> = Vec::new();
    let set = |env: &mut Vec<(String, String)>, name: String, value: String| {
        env.retain(|(k, _)| *k != name);
        env.push((name, value));
    };
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        let data = if let Some(cm) = &from.config_map_ref {
            config_map(client, &pod.namespace, &cm.name, cm.optional.unwrap_or(false)).await?
        } else if let Some(secret) = &from.secret_ref {
            secret_strings(client, &pod.namespace, &secret.name, secret.optional.unwrap_or(false)).await?
        } else {
            BTreeMap::new()
        };
        for (key, value) in data {
            set(&mut env, format!("{prefix}{key}"), value);
        }
    }
    for var in container.env.iter().flatten() {
        let value = match (&var.value, &var.value_from) {
            (Some(value), _) => Some(expand_vars(value, &env)),
            (None, Some(from)) => {
                if let Some(field) = &from.field_ref {
                    Some(field_value(pod, &field.field_path).with_context(|| format!("env {}", var.name))?)
                } else if let Some(key) = &from.secret_key_ref {
                    let data = secret_strings(client, &pod.namespace, &key.name, key.optional.unwrap_or(false)).await?;
                    lookup(&data, &key.key, key.optional, || format!("env {}: Secret {}", var.name, key.name))?
                } else if let Some(key) = &from.config_map_key_ref {
                    let data = config_map(client, &pod.namespace, &key.name, key.optional.unwrap_or(false)).await?;
                    lookup(&data, &key.key, key.optional, || format!("env {}: ConfigMap {}", var.name, key.name))?
                } else {
                    bail!("env {}: only fieldRef, secretKeyRef and configMapKeyRef are emulated", var.name)
                }
            }
            (None, None) => Some(String::new()),
        };
        if let Some(value) = value {
            set(&mut env, var.name.clone(), value);
        }
    }
    Ok(env)
}

fn lookup(
    data: &BTreeMap<String, String>,
    key: &str,
    optional: Option<bool>,
    what: impl Fn() -> String,
) -> Result<Option<String>> {
    match data.get(key) {
        Some(value) => Ok(Some(value.clone())),
        None if optional.unwrap_or(false) => Ok(None),
        None => Err(anyhow!("{} has no key {key:?}", what())),
    }
}

async fn config_map(client: &Client, namespace: &str, name: &str, optional: bool) -> Result<BTreeMap<String, String>> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    match api.get_opt(name).await.with_context(|| format!("getting ConfigMap {namespace}/{name}"))? {
        Some(cm) => Ok(cm.data.unwrap_or_default()),
        None if optional => Ok(BTreeMap::new()),
        None => bail!("ConfigMap {namespace}/{name} not found"),
    }
}

async fn secret_strings(
    client: &Client,
    namespace: &str,
    name: &str,
    optional: bool,
) -> Result<BTreeMap<String, String>> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    match api.get_opt(name).await.with_context(|| format!("getting Secret {namespace}/{name}"))? {
        Some(secret) => Ok(secret
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
            .collect()),
        None if optional => Ok(BTreeMap::new()),
        None => bail!("Secret {namespace}/{name} not found"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downward_api_fields() {
        let pod = PodIdentity {
            namespace: "pki".into(),
            name: "est-pkiplane-abc-x1".into(),
            ip: Ipv4Addr::new(127, 64, 0, 9),
            service_account: "default".into(),
            labels: [("app".to_string(), "est".to_string())].into(),
            annotations: BTreeMap::new(),
        };
        assert_eq!(field_value(&pod, "metadata.name").unwrap(), "est-pkiplane-abc-x1");
        assert_eq!(field_value(&pod, "metadata.namespace").unwrap(), "pki");
        assert_eq!(field_value(&pod, "status.podIP").unwrap(), "127.64.0.9");
        assert_eq!(field_value(&pod, "metadata.labels['app']").unwrap(), "est");
        assert_eq!(field_value(&pod, "metadata.labels").unwrap(), "app=\"est\"\n");
        assert!(field_value(&pod, "metadata.uid").is_err());
    }
}
