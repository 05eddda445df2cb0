//! ACME accounts and orders written before the ACME state was scoped per endpoint: at
//! start-up they are given to an endpoint or reported (docs/operations/upgrading.md).
//!
//! * `--adopt-acme-endpoint NS/NAME` names the endpoint that gets them;
//! * without it, when exactly one ACME endpoint is configured, that one gets them (before
//!   the upgrade it was the only one that could have written them);
//! * otherwise they stay unowned (no endpoint serves them; their clients register
//!   again) and a warning says how many there are and how to adopt them.
//!
//! Adoption is one transaction and happens once: later starts find nothing to adopt.

use anyhow::Result;
use pkiplane_api::Manifests;
use pkiplane_api::v1alpha1::EndpointProtocol;
use pkiplane_core::model::ObjectRef;
use pkiplane_store::SqliteStore;

/// What became of the legacy rows at this start.
#[derive(Debug, PartialEq, Eq)]
pub enum LegacyAcmeOutcome {
    None,
    Adopted(ObjectRef, pkiplane_store::LegacyAcmeRows),
    LeftUnowned(pkiplane_store::LegacyAcmeRows),
}

/// The ACME endpoints among `manifests`.
pub fn acme_endpoints(manifests: &Manifests) -> Vec<ObjectRef> {
    manifests
        .endpoints
        .iter()
        .filter(|e| e.spec.protocol == EndpointProtocol::Acme)
        .map(|e| {
            ObjectRef::new(
                e.metadata.namespace.clone().unwrap_or_default(),
                e.metadata.name.clone().unwrap_or_default(),
            )
        })
        .collect()
}

/// Adopts or reports the legacy ACME rows of `store` (see the module documentation).
pub async fn adopt_at_start(
    store: &SqliteStore,
    acme_endpoints: &[ObjectRef],
    chosen: Option<&ObjectRef>,
) -> Result<LegacyAcmeOutcome> {
    let rows = store.legacy_acme_rows().await?;
    if rows.is_empty() {
        return Ok(LegacyAcmeOutcome::None);
    }
    let target = match (chosen, acme_endpoints) {
        (Some(chosen), _) => Some(chosen),
        (None, [only]) => Some(only),
        (None, _) => None,
    };
    let Some(target) = target else {
        tracing::warn!(
            %rows,
            endpoints = acme_endpoints.len(),
            "ACME state from before it was kept per endpoint belongs to no endpoint: its clients must register \
             again. To keep it, start once with --adopt-acme-endpoint NAMESPACE/NAME (the ACME endpoint that served \
             it)"
        );
        return Ok(LegacyAcmeOutcome::LeftUnowned(rows));
    };
    if !acme_endpoints.is_empty() && !acme_endpoints.contains(target) {
        anyhow::bail!("--adopt-acme-endpoint {target}: no ACME EnrollmentEndpoint of that name is configured");
    }
    let adopted = store.adopt_legacy_acme(target).await?;
    let left = store.legacy_acme_rows().await?;
    tracing::info!(endpoint = %target, %adopted, "ACME state from before it was kept per endpoint was given to the endpoint");
    if !left.is_empty() {
        tracing::warn!(
            endpoint = %target,
            %left,
            "some ACME accounts from before were not adopted: the endpoint has registered the same account keys since"
        );
    }
    Ok(LegacyAcmeOutcome::Adopted(target.clone(), adopted))
}

#[cfg(test)]
mod tests {
    use pkiplane_store::LegacyAcmeRows;
    use pkiplane_store::testing::{SQLITE_VERSION_BEFORE_ACME_ENDPOINTS, sqlite_at_version};

    use super::*;

    /// A store upgraded from the old schema with one legacy ACME account.
    fn upgraded(dir: &std::path::Path) -> SqliteStore {
        let path = dir.join("inventory.db");
        let conn = sqlite_at_version(&path, SQLITE_VERSION_BEFORE_ACME_ENDPOINTS);
        conn.execute("INSERT INTO acme_accounts (id, thumbprint, body, version) VALUES ('a1', 't1', '{}', 1)", [])
            .unwrap();
        drop(conn);
        SqliteStore::open(&path).unwrap()
    }

    #[tokio::test]
    async fn the_only_acme_endpoint_or_the_named_one_adopts_otherwise_they_stay_unowned() {
        let (one, two) = (ObjectRef::new("acme", "one"), ObjectRef::new("acme", "two"));
        let rows = LegacyAcmeRows { accounts: 1, orders: 0, authorizations: 0 };

        let dir = tempfile::tempdir().unwrap();
        let store = upgraded(dir.path());
        let both = [one.clone(), two.clone()];
        assert_eq!(adopt_at_start(&store, &both, None).await.unwrap(), LegacyAcmeOutcome::LeftUnowned(rows));
        let stray = ObjectRef::new("acme", "three");
        let err = adopt_at_start(&store, &both, Some(&stray)).await.unwrap_err().to_string();
        assert!(err.contains("acme/three") && err.contains("no ACME EnrollmentEndpoint"), "{err}");
        assert_eq!(store.legacy_acme_rows().await.unwrap(), rows, "a refusal changes nothing");
        assert_eq!(
            adopt_at_start(&store, &both, Some(&two)).await.unwrap(),
            LegacyAcmeOutcome::Adopted(two.clone(), rows)
        );
        assert_eq!(adopt_at_start(&store, &both, None).await.unwrap(), LegacyAcmeOutcome::None);

        let dir = tempfile::tempdir().unwrap();
        let store = upgraded(dir.path());
        assert_eq!(
            adopt_at_start(&store, std::slice::from_ref(&one), None).await.unwrap(),
            LegacyAcmeOutcome::Adopted(one, rows)
        );
    }
}
