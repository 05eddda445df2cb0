//! Inventory queries whose SQL both stores run: written once, with each store's
//! placeholders.

use std::time::SystemTime;

use pkiplane_core::inventory::{GroupBy, InventoryFilter};

use crate::rows::secs;

/// Which store the SQL is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// The placeholder of the `n`th (1-based) parameter.
    fn param(self, n: usize) -> String {
        match self {
            Dialect::Sqlite => format!("?{n}"),
            Dialect::Postgres => format!("${n}"),
        }
    }

    /// The column that orders records made in the same second: the latest inserted first.
    fn insertion_order(self) -> &'static str {
        match self {
            Dialect::Sqlite => "rowid",
            Dialect::Postgres => "seq",
        }
    }
}

/// A parameter of an inventory query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Param {
    Text(String),
    Int(i64),
}

/// The certificate columns, in the order [`crate::rows::record_from_row`] reads them.
pub(crate) const CERT_COLUMNS: &str = "issuer, serial, profile, protocol, endpoint, requester, \
     subject, sans, key_algorithm, not_before, not_after, status, revocation_reason, \
     revoked_at, der, renewed_from, created_at, exchange";

/// The certificates `filter` selects at `now`, newest first: the SQL and its parameters.
pub(crate) fn list_certificates(dialect: Dialect, filter: &InventoryFilter, now: SystemTime) -> (String, Vec<Param>) {
    let mut clauses: Vec<String> = Vec::new();
    let mut values: Vec<Param> = Vec::new();
    let mut equal = |column: &str, value: Option<String>| {
        if let Some(value) = value {
            values.push(Param::Text(value));
            clauses.push(format!("{column} = {}", dialect.param(values.len())));
        }
    };
    equal("issuer", filter.issuer.as_ref().map(ToString::to_string));
    equal("profile", filter.profile.as_ref().map(ToString::to_string));
    equal("protocol", filter.protocol.map(|p| p.as_str().to_owned()));
    equal("endpoint", filter.endpoint.as_ref().map(ToString::to_string));
    equal("status", filter.status.map(|s| s.as_str().to_owned()));
    equal("exchange", filter.exchange.clone());
    if let Some(before) = filter.expiring_before {
        values.push(Param::Int(secs(before)));
        values.push(Param::Int(secs(now)));
        let n = values.len();
        clauses.push(format!(
            "status = 'issued' AND not_after < {} AND not_after > {}",
            dialect.param(n - 1),
            dialect.param(n)
        ));
    }
    let mut sql = format!("SELECT {CERT_COLUMNS} FROM certificates");
    if !clauses.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&clauses.join(" AND "));
    }
    sql.push_str(&format!(" ORDER BY created_at DESC, {} DESC", dialect.insertion_order()));
    if let Some(limit) = filter.limit {
        values.push(Param::Int(i64::try_from(limit).unwrap_or(i64::MAX)));
        sql.push_str(&format!(" LIMIT {}", dialect.param(values.len())));
    }
    (sql, values)
}

/// The grouping expression and extra condition, on `certificates` and on `denials`.
fn group_sql(group: GroupBy) -> (&'static str, &'static str, &'static str) {
    match group {
        GroupBy::Issuer => ("issuer", "", "issuer <> ''"),
        GroupBy::Profile => ("profile", "", "true"),
        GroupBy::Endpoint => ("endpoint", " AND endpoint IS NOT NULL", "endpoint <> ''"),
        GroupBy::ProfileProtocol => ("profile || '|' || protocol", "", "true"),
        GroupBy::EndpointProfile => ("endpoint || '|' || profile", " AND endpoint IS NOT NULL", "endpoint <> ''"),
    }
}

/// The two queries of the counts per group: certificates (parameters: now, the end of
/// the "expiring soon" window, in unix seconds) and denials (no parameters). Their rows
/// are what [`crate::rows::GroupCounts`] reads.
pub(crate) fn counts(dialect: Dialect, group: GroupBy) -> (String, String) {
    let (key, cert_cond, denial_cond) = group_sql(group);
    let (now, window_end) = (dialect.param(1), dialect.param(2));
    let certificates = format!(
        "SELECT {key} AS k, \
         count(*) FILTER (WHERE status IN ('issued', 'revoked')), \
         count(*) FILTER (WHERE status = 'issued' AND not_after > {now}), \
         count(*) FILTER (WHERE status = 'issued' AND not_after > {now} AND not_after <= {window_end}), \
         count(*) FILTER (WHERE status = 'revoked'), \
         max(CASE WHEN status IN ('issued', 'revoked') THEN coalesce(issued_at, created_at) END) \
         FROM certificates WHERE true{cert_cond} GROUP BY k"
    );
    let denials = format!("SELECT {key} AS k, CAST(sum(count) AS BIGINT) FROM denials WHERE {denial_cond} GROUP BY k");
    (certificates, denials)
}

/// The revoked certificates of an issuer (parameter 1) not yet expired at parameter 2,
/// as [`crate::rows::revoked_entry_from_row`] reads them.
pub(crate) fn revoked_entries(dialect: Dialect) -> String {
    format!(
        "SELECT serial, revocation_reason, revoked_at, not_after FROM certificates \
         WHERE issuer = {} AND status = 'revoked' AND not_after > {} ORDER BY revoked_at, serial",
        dialect.param(1),
        dialect.param(2)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use pkiplane_core::model::ObjectRef;

    #[test]
    fn each_dialect_numbers_its_placeholders() {
        let filter = InventoryFilter {
            issuer: Some(ObjectRef::new("pki", "root")),
            expiring_before: Some(SystemTime::UNIX_EPOCH),
            limit: Some(5),
            ..InventoryFilter::default()
        };
        let (sqlite, values) = list_certificates(Dialect::Sqlite, &filter, SystemTime::UNIX_EPOCH);
        assert!(sqlite.contains("issuer = ?1 AND status = 'issued' AND not_after < ?2 AND not_after > ?3"), "{sqlite}");
        assert!(sqlite.ends_with("ORDER BY created_at DESC, rowid DESC LIMIT ?4"), "{sqlite}");
        let (postgres, _) = list_certificates(Dialect::Postgres, &filter, SystemTime::UNIX_EPOCH);
        assert!(postgres.contains("issuer = $1 AND status = 'issued' AND not_after < $2 AND not_after > $3"));
        assert!(postgres.ends_with("ORDER BY created_at DESC, seq DESC LIMIT $4"), "{postgres}");
        assert_eq!(values, [Param::Text("pki/root".into()), Param::Int(0), Param::Int(0), Param::Int(5)]);
    }
}
