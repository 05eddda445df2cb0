//! Loading manifests: the same multi-document YAML you would `kubectl apply`, from a
//! file or a directory, as `pkiplane serve -f` reads it.
//!
//! Issuers, CertificateProfiles, EnrollmentEndpoints and Secrets are kept; Namespaces
//! are skipped silently and every other kind with a warning. Objects without a namespace
//! land in `default`. Documents are numbered from 1 in messages.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Secret;
use kube::core::ObjectMeta;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::v1alpha1::{API_VERSION, CertificateProfile, EnrollmentEndpoint, GROUP, Issuer};

/// The namespace of objects that do not name one.
pub const DEFAULT_NAMESPACE: &str = "default";

/// Errors loading manifests or reading Secrets from them.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    /// A document that cannot be read; `document` counts from 1.
    #[error("{file}, document {document}: {message}")]
    Document { file: String, document: usize, message: String },
    #[error("Secret {namespace}/{name} not found")]
    SecretNotFound { namespace: String, name: String },
    #[error("Secret {namespace}/{name} has no key `{key}`")]
    SecretKeyNotFound { namespace: String, name: String, key: String },
}

/// Everything pkiplane reads from a set of manifests.
#[derive(Clone, Debug, Default)]
pub struct Manifests {
    pub issuers: Vec<Issuer>,
    pub profiles: Vec<CertificateProfile>,
    pub endpoints: Vec<EnrollmentEndpoint>,
    pub secrets: Vec<Secret>,
    /// Documents that were skipped, and why.
    pub warnings: Vec<String>,
    /// Where each object was defined, to report duplicates.
    origins: BTreeMap<(String, String, String), String>,
}

/// Read access to Secrets, from manifests or from a cluster cache.
pub trait SecretLookup {
    /// The decoded entries of Secret `namespace/name` (`data` merged with `stringData`,
    /// which wins, as the API server does), or `None` when there is no such Secret.
    fn secret_data(&self, namespace: &str, name: &str) -> Option<BTreeMap<String, Vec<u8>>>;
}

/// The decoded entries of a Secret: `data` merged with `stringData`.
pub fn secret_entries(secret: &Secret) -> BTreeMap<String, Vec<u8>> {
    let mut out: BTreeMap<String, Vec<u8>> =
        secret.data.iter().flatten().map(|(k, v)| (k.clone(), v.0.clone())).collect();
    for (k, v) in secret.string_data.iter().flatten() {
        out.insert(k.clone(), v.clone().into_bytes());
    }
    out
}

fn in_namespace(meta: &ObjectMeta, namespace: &str, name: &str) -> bool {
    meta.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE) == namespace && meta.name.as_deref() == Some(name)
}

impl SecretLookup for [Secret] {
    fn secret_data(&self, namespace: &str, name: &str) -> Option<BTreeMap<String, Vec<u8>>> {
        self.iter().find(|s| in_namespace(&s.metadata, namespace, name)).map(secret_entries)
    }
}

impl SecretLookup for Vec<Secret> {
    fn secret_data(&self, namespace: &str, name: &str) -> Option<BTreeMap<String, Vec<u8>>> {
        self.as_slice().secret_data(namespace, name)
    }
}

impl SecretLookup for Manifests {
    fn secret_data(&self, namespace: &str, name: &str) -> Option<BTreeMap<String, Vec<u8>>> {
        self.secrets.secret_data(namespace, name)
    }
}

impl Manifests {
    /// Loads a file, or every `*.yaml`/`*.yml` file below a directory (recursively, in
    /// path order, skipping hidden files and directories).
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ManifestError> {
        let path = path.as_ref();
        let io_err = |source| ManifestError::Io { path: path.to_path_buf(), source };
        let mut out = Manifests::default();
        if path.metadata().map_err(io_err)?.is_dir() {
            let mut files = Vec::new();
            collect_yaml_files(path, &mut files)?;
            files.sort();
            if files.is_empty() {
                out.warnings.push(format!("{}: no *.yaml or *.yml files found", path.display()));
            }
            for file in files {
                out.add_file(&file)?;
            }
        } else {
            out.add_file(path)?;
        }
        Ok(out)
    }

    /// Parses YAML text; `file` names it in messages.
    pub fn from_yaml(text: &str, file: &str) -> Result<Self, ManifestError> {
        let mut out = Manifests::default();
        out.add_yaml(text, file)?;
        Ok(out)
    }

    /// Adds the objects of one file.
    pub fn add_file(&mut self, path: &Path) -> Result<(), ManifestError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ManifestError::Io { path: path.to_path_buf(), source })?;
        self.add_yaml(&text, &path.display().to_string())
    }

    /// Adds the objects of a multi-document YAML text; `file` names it in messages.
    pub fn add_yaml(&mut self, text: &str, file: &str) -> Result<(), ManifestError> {
        for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
            let document = i + 1;
            let err = |message: String| ManifestError::Document { file: file.to_string(), document, message };
            let value = serde_yaml::Value::deserialize(doc).map_err(|e| err(e.to_string()))?;
            let raw = Raw { text, index: i };
            self.add_value(value, Some(raw), file, document, "").map_err(err)?;
        }
        Ok(())
    }

    /// Adds one object; `raw` locates it in its text (for errors with field paths and
    /// lines) unless it is an item of a List.
    fn add_value(
        &mut self,
        value: serde_yaml::Value,
        raw: Option<Raw<'_>>,
        file: &str,
        document: usize,
        item: &str,
    ) -> Result<(), String> {
        if value.is_null() {
            return Ok(());
        }
        if !value.is_mapping() {
            return Err(format!("{item}expected a Kubernetes object (a mapping with apiVersion and kind)"));
        }
        let field = |k: &str| value.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_string();
        let (api_version, kind) = (field("apiVersion"), field("kind"));
        if api_version.is_empty() || kind.is_empty() {
            return Err(format!("{item}apiVersion and kind are required"));
        }
        let meta_name = value.get("metadata").and_then(|m| m.get("name")).and_then(|n| n.as_str()).unwrap_or("");
        let what = format!("{item}{kind} {meta_name}");
        let ours = matches!(
            (api_version.as_str(), kind.as_str()),
            (API_VERSION, "Issuer" | "CertificateProfile" | "EnrollmentEndpoint") | ("v1", "Secret")
        );
        if ours && meta_name.is_empty() {
            return Err(format!("{item}{kind}: metadata.name is required"));
        }
        let origin = if item.is_empty() {
            format!("{file}, document {document}")
        } else {
            format!("{file}, document {document}, {}", item.trim_end_matches(": "))
        };
        match (api_version.as_str(), kind.as_str()) {
            (API_VERSION, "Issuer") => {
                let obj: Issuer = typed(value, raw, &what)?;
                let obj = self.register(obj, |o| &mut o.metadata, "Issuer", origin, &what)?;
                self.issuers.push(obj);
            }
            (API_VERSION, "CertificateProfile") => {
                let obj: CertificateProfile = typed(value, raw, &what)?;
                let obj = self.register(obj, |o| &mut o.metadata, "CertificateProfile", origin, &what)?;
                self.profiles.push(obj);
            }
            (API_VERSION, "EnrollmentEndpoint") => {
                let obj: EnrollmentEndpoint = typed(value, raw, &what)?;
                let obj = self.register(obj, |o| &mut o.metadata, "EnrollmentEndpoint", origin, &what)?;
                self.endpoints.push(obj);
            }
            ("v1", "Secret") => {
                let obj: Secret = typed(value, raw, &what)?;
                let obj = self.register(obj, |o| &mut o.metadata, "Secret", origin, &what)?;
                self.secrets.push(obj);
            }
            ("v1", "List") => {
                let items = value.get("items").and_then(|v| v.as_sequence()).cloned().unwrap_or_default();
                for (n, item_value) in items.into_iter().enumerate() {
                    self.add_value(item_value, None, file, document, &format!("{item}item {}: ", n + 1))?;
                }
            }
            ("v1", "Namespace") => {}
            (v, k) if v.split('/').next() == Some(GROUP) => {
                return Err(format!(
                    "{item}{v} {k} is not supported (this pkiplane reads {API_VERSION} Issuer, CertificateProfile and EnrollmentEndpoint)"
                ));
            }
            (v, k) => self.warnings.push(format!(
                "{origin}: skipped {v} {k} {meta_name} (pkiplane reads Issuer, CertificateProfile, EnrollmentEndpoint and Secret)"
            )),
        }
        Ok(())
    }

    /// Defaults the namespace, requires a name and refuses duplicates.
    fn register<T>(
        &mut self,
        mut obj: T,
        meta: impl Fn(&mut T) -> &mut ObjectMeta,
        kind: &str,
        origin: String,
        what: &str,
    ) -> Result<T, String> {
        let m = meta(&mut obj);
        let name =
            m.name.clone().filter(|n| !n.is_empty()).ok_or_else(|| format!("{what}: metadata.name is required"))?;
        let namespace = m.namespace.get_or_insert_with(|| DEFAULT_NAMESPACE.to_string()).clone();
        let key = (kind.to_string(), namespace.clone(), name.clone());
        if let Some(first) = self.origins.get(&key) {
            return Err(format!("{kind} {namespace}/{name} is already defined at {first}"));
        }
        self.origins.insert(key, origin);
        Ok(obj)
    }

    pub fn issuer(&self, namespace: &str, name: &str) -> Option<&Issuer> {
        self.issuers.iter().find(|o| in_namespace(&o.metadata, namespace, name))
    }

    pub fn profile(&self, namespace: &str, name: &str) -> Option<&CertificateProfile> {
        self.profiles.iter().find(|o| in_namespace(&o.metadata, namespace, name))
    }

    pub fn endpoint(&self, namespace: &str, name: &str) -> Option<&EnrollmentEndpoint> {
        self.endpoints.iter().find(|o| in_namespace(&o.metadata, namespace, name))
    }

    pub fn secret(&self, namespace: &str, name: &str) -> Option<&Secret> {
        self.secrets.iter().find(|o| in_namespace(&o.metadata, namespace, name))
    }

    /// One decoded entry of a Secret.
    pub fn secret_value(&self, namespace: &str, name: &str, key: &str) -> Result<Vec<u8>, ManifestError> {
        let data = self
            .secret_data(namespace, name)
            .ok_or_else(|| ManifestError::SecretNotFound { namespace: namespace.into(), name: name.into() })?;
        data.get(key).cloned().ok_or_else(|| ManifestError::SecretKeyNotFound {
            namespace: namespace.into(),
            name: name.into(),
            key: key.into(),
        })
    }
}

/// Where a document sits in its text.
#[derive(Clone, Copy)]
struct Raw<'a> {
    text: &'a str,
    index: usize,
}

/// Deserialises an object. On failure the document is read again from its text, when
/// known, because serde_yaml then reports the field path and line of the mistake, which
/// it cannot do from a `Value`.
fn typed<T: DeserializeOwned>(value: serde_yaml::Value, raw: Option<Raw<'_>>, what: &str) -> Result<T, String> {
    serde_yaml::from_value(value).map_err(|e| {
        let located = raw
            .and_then(|r| serde_yaml::Deserializer::from_str(r.text).nth(r.index))
            .and_then(|doc| T::deserialize(doc).err());
        format!("{what}: {}", located.unwrap_or(e))
    })
}

fn collect_yaml_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), ManifestError> {
    let io_err = |source| ManifestError::Io { path: dir.to_path_buf(), source };
    for entry in std::fs::read_dir(dir).map_err(io_err)? {
        let path = entry.map_err(io_err)?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            collect_yaml_files(&path, out)?;
        } else if let Some(ext) = path.extension().and_then(|e| e.to_str())
            && (ext.eq_ignore_ascii_case("yaml") || ext.eq_ignore_ascii_case("yml"))
        {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
