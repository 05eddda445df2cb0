//! Wildcard patterns for identities and URIs.

/// Matches `text` against `pattern`, where `**` matches anything and `*` matches any run
/// of characters other than `sep` (when `sep` is given) or anything (when it is not).
pub fn glob_match(pattern: &str, text: &str, sep: Option<char>) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    matches(&p, &t, sep)
}

fn matches(p: &[char], t: &[char], sep: Option<char>) -> bool {
    // Iterative backtracking over the last star keeps this linear-ish and stack-safe.
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize, bool)> = None; // (pattern index after star, text index, crosses sep)
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            let double = pi + 1 < p.len() && p[pi + 1] == '*';
            let next = if double { pi + 2 } else { pi + 1 };
            star = Some((next, ti, double || sep.is_none()));
            pi = next;
            continue;
        }
        if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
            continue;
        }
        match star {
            Some((next, start, crosses)) if crosses || Some(t[start]) != sep => {
                star = Some((next, start + 1, crosses));
                pi = next;
                ti = start + 1;
            }
            _ => return false,
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn segment_and_deep_wildcards() {
        let sep = Some('/');
        assert!(glob_match("spiffe://example.org/ns/*/sa/*", "spiffe://example.org/ns/prod/sa/web", sep));
        assert!(!glob_match("spiffe://example.org/ns/*/sa/*", "spiffe://example.org/ns/a/b/sa/web", sep));
        assert!(glob_match("spiffe://example.org/**", "spiffe://example.org/a/b/c", sep));
        assert!(!glob_match("spiffe://example.org/*", "spiffe://evil.org/x", sep));
        assert!(glob_match("acct-*", "acct-42", None));
        assert!(!glob_match("acct-*", "xacct-42", None));
        assert!(glob_match("*", "", None));
        assert!(glob_match("a*b*c", "aXXbYYc", None));
        assert!(!glob_match("a*b*c", "aXXbYY", None));
    }
}
