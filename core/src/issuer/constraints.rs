//! Name constraints (RFC 5280 section 4.2.1.10): written into intermediate CA
//! certificates, and enforced by policy on everything issued below them.

use ipnet::IpNet;

use crate::x509::San;

/// Permitted and excluded subtrees per name form.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NameConstraintsConfig {
    pub permitted_dns: Vec<String>,
    pub excluded_dns: Vec<String>,
    pub permitted_ip: Vec<IpNet>,
    pub excluded_ip: Vec<IpNet>,
    pub permitted_email: Vec<String>,
    pub excluded_email: Vec<String>,
    pub permitted_uri: Vec<String>,
    pub excluded_uri: Vec<String>,
}

impl NameConstraintsConfig {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Why `san` falls outside these constraints, if it does.
    pub fn violation(&self, san: &San) -> Option<String> {
        let (permitted, excluded, value): (bool, bool, String) = match san {
            San::Dns(d) => (
                self.permitted_dns.is_empty() || self.permitted_dns.iter().any(|c| dns_within(d, c)),
                self.excluded_dns.iter().any(|c| dns_within(d, c)),
                d.clone(),
            ),
            San::Ip(ip) => (
                self.permitted_ip.is_empty() || self.permitted_ip.iter().any(|n| n.contains(ip)),
                self.excluded_ip.iter().any(|n| n.contains(ip)),
                ip.to_string(),
            ),
            San::Email(e) => {
                let host = e.rsplit_once('@').map(|(_, h)| h).unwrap_or(e);
                (
                    self.permitted_email.is_empty() || self.permitted_email.iter().any(|c| email_within(e, host, c)),
                    self.excluded_email.iter().any(|c| email_within(e, host, c)),
                    e.clone(),
                )
            }
            San::Uri(u) => {
                let host = uri_host(u).unwrap_or_default();
                (
                    self.permitted_uri.is_empty() || self.permitted_uri.iter().any(|c| dns_within(&host, c)),
                    self.excluded_uri.iter().any(|c| dns_within(&host, c)),
                    u.clone(),
                )
            }
        };
        if excluded {
            Some(format!("{} {value} is in a subtree the issuer's name constraints exclude", san.kind().as_str()))
        } else if !permitted {
            Some(format!(
                "{} {value} is outside the subtrees the issuer's name constraints permit",
                san.kind().as_str()
            ))
        } else {
            None
        }
    }

    /// Whether `inner` constrains at least as tightly as `self` for every name form that
    /// `self` restricts (used when a constrained CA signs an intermediate).
    pub fn permits_subset(&self, inner: &NameConstraintsConfig) -> Result<(), String> {
        let check_dns = |outer: &[String], inner: &[String], form: &str| -> Result<(), String> {
            if outer.is_empty() {
                return Ok(());
            }
            if inner.is_empty() {
                return Err(format!("the parent permits only some {form} names, so the intermediate must too"));
            }
            for i in inner {
                if !outer.iter().any(|o| dns_within(i.trim_start_matches('.'), o)) {
                    return Err(format!("permitted {form} subtree `{i}` is not within the parent's"));
                }
            }
            Ok(())
        };
        check_dns(&self.permitted_dns, &inner.permitted_dns, "DNS")?;
        check_dns(&self.permitted_uri, &inner.permitted_uri, "URI")?;
        if !self.permitted_ip.is_empty() {
            if inner.permitted_ip.is_empty() {
                return Err("the parent permits only some IP ranges, so the intermediate must too".into());
            }
            for i in &inner.permitted_ip {
                if !self.permitted_ip.iter().any(|o| o.contains(i)) {
                    return Err(format!("permitted IP range {i} is not within the parent's"));
                }
            }
        }
        Ok(())
    }
}

/// RFC 5280: a DNS constraint `example.com` matches `example.com` and any name below
/// it; `.example.com` matches only names below it.
fn dns_within(name: &str, constraint: &str) -> bool {
    let name = name.trim_start_matches("*.").to_ascii_lowercase();
    let c = constraint.to_ascii_lowercase();
    if let Some(sub) = c.strip_prefix('.') {
        return name.ends_with(&format!(".{sub}"));
    }
    name == c || name.ends_with(&format!(".{c}"))
}

fn email_within(email: &str, host: &str, constraint: &str) -> bool {
    if constraint.contains('@') { email.eq_ignore_ascii_case(constraint) } else { dns_within(host, constraint) }
}

pub(crate) fn uri_host(uri: &str) -> Option<String> {
    let rest = uri.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit_once('@').map(|(_, h)| h).unwrap_or(authority);
    let host = host.split(':').next()?;
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nc() -> NameConstraintsConfig {
        NameConstraintsConfig {
            permitted_dns: vec!["example.com".into()],
            excluded_dns: vec!["secret.example.com".into()],
            permitted_ip: vec!["10.0.0.0/8".parse().unwrap()],
            ..Default::default()
        }
    }

    #[test]
    fn dns_subtrees() {
        assert!(nc().violation(&San::Dns("a.example.com".into())).is_none());
        assert!(nc().violation(&San::Dns("example.com".into())).is_none());
        assert!(nc().violation(&San::Dns("badexample.com".into())).is_some());
        assert!(nc().violation(&San::Dns("x.secret.example.com".into())).is_some());
    }

    #[test]
    fn ip_ranges() {
        assert!(nc().violation(&San::Ip("10.1.2.3".parse().unwrap())).is_none());
        assert!(nc().violation(&San::Ip("192.168.0.1".parse().unwrap())).is_some());
    }

    #[test]
    fn subset_check() {
        let inner = NameConstraintsConfig {
            permitted_dns: vec!["dev.example.com".into()],
            permitted_ip: vec!["10.1.0.0/16".parse().unwrap()],
            ..Default::default()
        };
        assert!(nc().permits_subset(&inner).is_ok());
        let wider = NameConstraintsConfig { permitted_dns: vec!["example.org".into()], ..inner.clone() };
        assert!(nc().permits_subset(&wider).is_err());
        assert!(nc().permits_subset(&NameConstraintsConfig::default()).is_err());
    }
}
