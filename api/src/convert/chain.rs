//! Issuer chains across objects: walking from an Issuer up through its `parentRef`s to
//! a root, refusing cycles and missing parents. Shared by the admission webhook and by
//! anything that must order Issuers parents-first.

use std::fmt;

use pkiplane_core::ObjectRef;

/// Why an Issuer's chain cannot be followed to a root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChainError {
    /// Following `parentRef` comes back to an Issuer already on the path; the path is
    /// listed from the start, ending with the repeated Issuer.
    Cycle(Vec<ObjectRef>),
    /// `child` names `parent`, which does not exist.
    MissingParent { child: ObjectRef, parent: ObjectRef },
}

impl fmt::Display for ChainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChainError::Cycle(path) => {
                let names: Vec<String> = path.iter().map(ToString::to_string).collect();
                write!(f, "the Issuer chain has a cycle: {}", names.join(" -> "))
            }
            ChainError::MissingParent { child, parent } => {
                write!(f, "Issuer {child} names parent {parent}, which does not exist")
            }
        }
    }
}

impl std::error::Error for ChainError {}

/// Where an Issuer's certificate comes from, as far as chains care.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChainLink {
    /// A root (self-signed or imported): the chain ends here.
    Root,
    /// An intermediate signed by this parent.
    Parent(ObjectRef),
}

/// The chain from `start` up to its root, `start` first. `link` tells, for an Issuer, whether
/// it exists (`None`: it does not) and what signs it.
pub fn issuer_chain(
    start: &ObjectRef,
    link: impl Fn(&ObjectRef) -> Option<ChainLink>,
) -> Result<Vec<ObjectRef>, ChainError> {
    let mut path = vec![start.clone()];
    let mut current = start.clone();
    loop {
        let parent = match link(&current) {
            Some(ChainLink::Parent(p)) => p,
            Some(ChainLink::Root) | None => return Ok(path),
        };
        if let Some(at) = path.iter().position(|p| *p == parent) {
            let mut cycle = path[at..].to_vec();
            cycle.push(parent);
            return Err(ChainError::Cycle(cycle));
        }
        if link(&parent).is_none() {
            return Err(ChainError::MissingParent { child: current, parent });
        }
        path.push(parent.clone());
        current = parent;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn r(name: &str) -> ObjectRef {
        ObjectRef::new("pki", name)
    }

    fn links(pairs: &[(&str, Option<&str>)]) -> BTreeMap<ObjectRef, ChainLink> {
        pairs.iter().map(|(c, p)| (r(c), p.map(|p| ChainLink::Parent(r(p))).unwrap_or(ChainLink::Root))).collect()
    }

    #[test]
    fn follows_parents_to_the_root() {
        let l = links(&[("root", None), ("mid", Some("root")), ("leaf", Some("mid"))]);
        assert_eq!(issuer_chain(&r("leaf"), |id| l.get(id).cloned()), Ok(vec![r("leaf"), r("mid"), r("root")]));
    }

    #[test]
    fn reports_cycles_and_missing_parents() {
        let l = links(&[("a", Some("b")), ("b", Some("c")), ("c", Some("b"))]);
        let err = issuer_chain(&r("a"), |id| l.get(id).cloned()).unwrap_err();
        assert_eq!(err, ChainError::Cycle(vec![r("b"), r("c"), r("b")]));
        assert_eq!(err.to_string(), "the Issuer chain has a cycle: pki/b -> pki/c -> pki/b");
        let l = links(&[("a", Some("gone"))]);
        assert_eq!(
            issuer_chain(&r("a"), |id| l.get(id).cloned()),
            Err(ChainError::MissingParent { child: r("a"), parent: r("gone") })
        );
    }
}
