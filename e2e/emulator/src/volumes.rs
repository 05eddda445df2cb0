//! Volumes of a pod materialized as directories:
//! `<pod dir>/volumes/<volume>/` holds what the container would see at the mount path.
//! Secrets, ConfigMaps, projected volumes (secrets, config maps, service-account tokens
//! from the TokenRequest API, downward API names), downward API volumes and emptyDir.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, DownwardAPIVolumeFile, KeyToPath, PodSpec, Secret, ServiceAccount, ServiceAccountTokenProjection,
    Volume, VolumeMount,
};
use kube::api::PostParams;
use kube::{Api, Client};

use crate::env::{PodIdentity, field_value};

/// The file mode Kubernetes gives projected keys when the volume sets none (0644).
pub const DEFAULT_FILE_MODE: u32 = 0o644;

/// One file of a volume: its path relative to the volume directory, content and mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeFile {
    pub path: PathBuf,
    pub data: Vec<u8>,
    pub mode: u32,
}

/// The files a Secret or ConfigMap projects: every key, or only `items` (each under its
/// own `path`, with its own `mode`), with `default_mode` for the others. A key named in
/// `items` but missing from the object is an error unless the source is optional.
pub fn project_keys(
    source: &str,
    data: &BTreeMap<String, Vec<u8>>,
    items: Option<&[KeyToPath]>,
    default_mode: Option<i32>,
    optional: bool,
) -> Result<Vec<VolumeFile>> {
    let default_mode = default_mode.map_or(DEFAULT_FILE_MODE, mode_bits);
    let Some(items) = items.filter(|items| !items.is_empty()) else {
        return Ok(data
            .iter()
            .map(|(key, value)| VolumeFile { path: PathBuf::from(key), data: value.clone(), mode: default_mode })
            .collect());
    };
    let mut files = Vec::new();
    for item in items {
        let Some(value) = data.get(&item.key) else {
            if optional {
                continue;
            }
            bail!("{source} has no key {:?}", item.key);
        };
        files.push(VolumeFile {
            path: relative_path(&item.path)?,
            data: value.clone(),
            mode: item.mode.map_or(default_mode, mode_bits),
        });
    }
    Ok(files)
}

fn mode_bits(mode: i32) -> u32 {
    (mode as u32) & 0o7777
}

/// A path inside a volume: relative, without `..`.
pub fn relative_path(path: &str) -> Result<PathBuf> {
    let p = Path::new(path);
    if path.is_empty() || p.components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir)) {
        bail!("{path:?} must be a relative path without '..'");
    }
    Ok(p.to_path_buf())
}

/// Writes the files under `dir` (created if missing) with their modes.
pub fn write_files(dir: &Path, files: &[VolumeFile]) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for file in files {
        let path = dir.join(&file.path);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        fs::write(&path, &file.data).with_context(|| format!("writing {}", path.display()))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(file.mode))
            .with_context(|| format!("chmod {}", path.display()))?;
    }
    Ok(())
}

/// Where a volume mount points on this machine: the volume's directory, or the `subPath`
/// inside it.
pub fn mount_host_path(volumes_dir: &Path, mount: &VolumeMount) -> Result<PathBuf> {
    let volume_dir = volumes_dir.join(&mount.name);
    match mount.sub_path.as_deref().filter(|s| !s.is_empty()) {
        Some(sub) => Ok(volume_dir.join(relative_path(sub).with_context(|| format!("subPath of {}", mount.name))?)),
        None => Ok(volume_dir),
    }
}

/// Materializes every volume of the pod spec under `volumes_dir`; returns nothing but
/// fails on the first volume that cannot be built (a missing Secret, say), as a kubelet
/// keeps such a pod in ContainerCreating.
pub async fn materialize(client: &Client, pod: &PodIdentity, spec: &PodSpec, volumes_dir: &Path) -> Result<()> {
    for volume in spec.volumes.iter().flatten() {
        let files = volume_files(client, pod, volume).await.with_context(|| format!("volume {}", volume.name))?;
        write_files(&volumes_dir.join(&volume.name), &files)?;
    }
    Ok(())
}

async fn volume_files(client: &Client, pod: &PodIdentity, volume: &Volume) -> Result<Vec<VolumeFile>> {
    if let Some(secret) = &volume.secret {
        let name = secret.secret_name.clone().unwrap_or_default();
        let optional = secret.optional.unwrap_or(false);
        let data = secret_data(client, &pod.namespace, &name, optional).await?;
        return project_keys(&format!("Secret {name}"), &data, secret.items.as_deref(), secret.default_mode, optional);
    }
    if let Some(cm) = &volume.config_map {
        let optional = cm.optional.unwrap_or(false);
        let data = config_map_data(client, &pod.namespace, &cm.name, optional).await?;
        return project_keys(&format!("ConfigMap {}", cm.name), &data, cm.items.as_deref(), cm.default_mode, optional);
    }
    if let Some(projected) = &volume.projected {
        let mut files = Vec::new();
        for source in projected.sources.iter().flatten() {
            if let Some(s) = &source.secret {
                let name = s.name.clone();
                let optional = s.optional.unwrap_or(false);
                let data = secret_data(client, &pod.namespace, &name, optional).await?;
                files.extend(project_keys(
                    &format!("Secret {name}"),
                    &data,
                    s.items.as_deref(),
                    projected.default_mode,
                    optional,
                )?);
            }
            if let Some(c) = &source.config_map {
                let optional = c.optional.unwrap_or(false);
                let data = config_map_data(client, &pod.namespace, &c.name, optional).await?;
                files.extend(project_keys(
                    &format!("ConfigMap {}", c.name),
                    &data,
                    c.items.as_deref(),
                    projected.default_mode,
                    optional,
                )?);
            }
            if let Some(token) = &source.service_account_token {
                let mode = projected.default_mode.map_or(DEFAULT_FILE_MODE, mode_bits);
                files.push(VolumeFile {
                    path: relative_path(&token.path)?,
                    data: service_account_token(client, pod, token).await?.into_bytes(),
                    mode,
                });
            }
            if let Some(downward) = &source.downward_api {
                files.extend(downward_files(pod, downward.items.as_deref().unwrap_or(&[]), projected.default_mode)?);
            }
            if source.cluster_trust_bundle.is_some() || source.pod_certificate.is_some() {
                bail!("clusterTrustBundle and podCertificate projections are not emulated");
            }
        }
        return Ok(files);
    }
    if let Some(downward) = &volume.downward_api {
        return downward_files(pod, downward.items.as_deref().unwrap_or(&[]), downward.default_mode);
    }
    if volume.empty_dir.is_some() {
        return Ok(Vec::new());
    }
    Err(anyhow!("only secret, configMap, projected, downwardAPI and emptyDir volumes are emulated"))
}

fn downward_files(
    pod: &PodIdentity,
    items: &[DownwardAPIVolumeFile],
    default_mode: Option<i32>,
) -> Result<Vec<VolumeFile>> {
    let default_mode = default_mode.map_or(DEFAULT_FILE_MODE, mode_bits);
    items
        .iter()
        .map(|item| {
            let field = item
                .field_ref
                .as_ref()
                .ok_or_else(|| anyhow!("downward API file {}: only fieldRef is emulated", item.path))?;
            Ok(VolumeFile {
                path: relative_path(&item.path)?,
                data: field_value(pod, &field.field_path)?.into_bytes(),
                mode: item.mode.map_or(default_mode, mode_bits),
            })
        })
        .collect()
}

async fn secret_data(
    client: &Client,
    namespace: &str,
    name: &str,
    optional: bool,
) -> Result<BTreeMap<String, Vec<u8>>> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    match api.get_opt(name).await.with_context(|| format!("getting Secret {namespace}/{name}"))? {
        Some(secret) => Ok(secret.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect()),
        None if optional => Ok(BTreeMap::new()),
        None => bail!("Secret {namespace}/{name} not found"),
    }
}

async fn config_map_data(
    client: &Client,
    namespace: &str,
    name: &str,
    optional: bool,
) -> Result<BTreeMap<String, Vec<u8>>> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    match api.get_opt(name).await.with_context(|| format!("getting ConfigMap {namespace}/{name}"))? {
        Some(cm) => {
            let mut data: BTreeMap<String, Vec<u8>> =
                cm.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.into_bytes())).collect();
            data.extend(cm.binary_data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)));
            Ok(data)
        }
        None if optional => Ok(BTreeMap::new()),
        None => bail!("ConfigMap {namespace}/{name} not found"),
    }
}

/// A token for the pod's ServiceAccount from the TokenRequest API, with the projection's
/// audience (default: the API server's) and expiry (default one hour).
async fn service_account_token(
    client: &Client,
    pod: &PodIdentity,
    token: &ServiceAccountTokenProjection,
) -> Result<String> {
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), &pod.namespace);
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: token.audience.iter().cloned().collect(),
            expiration_seconds: Some(token.expiration_seconds.unwrap_or(3600)),
            bound_object_ref: None,
        },
        ..Default::default()
    };
    let created = api
        .create_token_request(&pod.service_account, &PostParams::default(), &request)
        .await
        .with_context(|| format!("TokenRequest for ServiceAccount {}/{}", pod.namespace, pod.service_account))?;
    created.status.map(|s| s.token).ok_or_else(|| anyhow!("TokenRequest returned no token"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> BTreeMap<String, Vec<u8>> {
        [("tls.crt", "CERT"), ("tls.key", "KEY"), ("ca.crt", "CA")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    fn item(key: &str, path: &str, mode: Option<i32>) -> KeyToPath {
        KeyToPath { key: key.into(), path: path.into(), mode }
    }

    #[test]
    fn every_key_with_the_default_mode() {
        let files = project_keys("Secret s", &data(), None, None, false).unwrap();
        let names: Vec<_> = files.iter().map(|f| (f.path.display().to_string(), f.mode)).collect();
        assert_eq!(names, [("ca.crt".into(), 0o644), ("tls.crt".into(), 0o644), ("tls.key".into(), 0o644)]);
        let files = project_keys("Secret s", &data(), None, Some(0o400), false).unwrap();
        assert!(files.iter().all(|f| f.mode == 0o400));
    }

    #[test]
    fn items_select_rename_and_set_modes() {
        let items = [item("tls.key", "private/key.pem", Some(0o600)), item("ca.crt", "trust.pem", None)];
        let files = project_keys("Secret s", &data(), Some(&items), Some(0o440), false).unwrap();
        assert_eq!(
            files,
            [
                VolumeFile { path: "private/key.pem".into(), data: b"KEY".to_vec(), mode: 0o600 },
                VolumeFile { path: "trust.pem".into(), data: b"CA".to_vec(), mode: 0o440 },
            ]
        );
    }

    #[test]
    fn a_missing_item_key_fails_unless_optional() {
        let items = [item("nope", "x", None), item("ca.crt", "ca", None)];
        let err = project_keys("Secret s", &data(), Some(&items), None, false).unwrap_err();
        assert_eq!(err.to_string(), "Secret s has no key \"nope\"");
        let files = project_keys("Secret s", &data(), Some(&items), None, true).unwrap();
        assert_eq!(files.len(), 1);
    }

    #[test]
    fn item_paths_cannot_escape_the_volume() {
        for bad in ["../x", "/etc/passwd", "a/../../b", ""] {
            let items = [item("ca.crt", bad, None)];
            assert!(project_keys("Secret s", &data(), Some(&items), None, false).is_err(), "{bad}");
        }
    }

    #[test]
    fn files_are_written_with_their_modes() {
        let dir = std::env::temp_dir().join(format!("emulator-volumes-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let items = [item("tls.key", "private/key.pem", Some(0o600)), item("ca.crt", "ca.pem", None)];
        let files = project_keys("Secret s", &data(), Some(&items), Some(0o444), false).unwrap();
        write_files(&dir.join("internal"), &files).unwrap();
        let key = dir.join("internal/private/key.pem");
        assert_eq!(fs::read(&key).unwrap(), b"KEY");
        assert_eq!(fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::metadata(dir.join("internal/ca.pem")).unwrap().permissions().mode() & 0o777, 0o444);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn sub_path_mounts_point_inside_the_volume() {
        let mount = |sub: Option<&str>| VolumeMount {
            name: "config".into(),
            mount_path: "/etc/app/app.yaml".into(),
            sub_path: sub.map(String::from),
            ..Default::default()
        };
        let dir = Path::new("/e2e/pods/ns/p/volumes");
        assert_eq!(mount_host_path(dir, &mount(None)).unwrap(), dir.join("config"));
        assert_eq!(mount_host_path(dir, &mount(Some("app.yaml"))).unwrap(), dir.join("config/app.yaml"));
        assert!(mount_host_path(dir, &mount(Some("../../x"))).is_err());
    }
}
