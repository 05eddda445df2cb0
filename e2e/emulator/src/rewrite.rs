//! The rewrites that make a pod template's container command run on this machine: the
//! program `pkiplane` becomes the locally built binary, `$(VAR)` references expand as the
//! kubelet expands them, volume mount paths become the materialized directories, and
//! "any address" listen addresses become the pod's own loopback address.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// The program and arguments to run for a container: `command` (or, when the container
/// leaves it empty, the image entrypoint `default_entrypoint`) followed by `args`, with a
/// program whose last path element is `pkiplane` replaced by `pkiplane_bin`.
pub fn program_and_args(
    command: &[String],
    args: &[String],
    default_entrypoint: &str,
    pkiplane_bin: &Path,
) -> (String, Vec<String>) {
    let (program, mut rest) = match command.split_first() {
        Some((program, rest)) => (program.clone(), rest.to_vec()),
        None => (default_entrypoint.to_string(), Vec::new()),
    };
    rest.extend(args.iter().cloned());
    let program = if is_pkiplane(&program) { pkiplane_bin.display().to_string() } else { program };
    (program, rest)
}

fn is_pkiplane(program: &str) -> bool {
    program.rsplit('/').next() == Some("pkiplane")
}

/// Expands `$(NAME)` with the value of the earlier variable NAME, as the kubelet does in
/// `command`, `args` and `env[].value`: `$$` is a literal `$`, and a reference to an
/// unknown variable is left as written.
pub fn expand_vars(input: &str, env: &[(String, String)]) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(stripped) = after.strip_prefix('$') {
            out.push('$');
            rest = stripped;
        } else if let Some(body) = after.strip_prefix('(') {
            match body.find(')') {
                Some(end) => {
                    let name = &body[..end];
                    match env.iter().rev().find(|(k, _)| k == name) {
                        Some((_, value)) => out.push_str(value),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &body[end + 1..];
                }
                None => {
                    out.push_str(&rest[at..]);
                    rest = "";
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Maps each `volumeMount.mountPath` to the host directory it was materialized into.
#[derive(Debug, Default, Clone)]
pub struct MountMap {
    /// Longest mount path first, so `/etc/a/b` wins over `/etc/a`.
    mounts: Vec<(String, PathBuf)>,
}

impl MountMap {
    pub fn new(mounts: impl IntoIterator<Item = (String, PathBuf)>) -> Self {
        let mut mounts: Vec<(String, PathBuf)> = mounts
            .into_iter()
            .map(|(path, host)| (path.trim_end_matches('/').to_string(), host))
            .filter(|(path, _)| !path.is_empty())
            .collect();
        mounts.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        Self { mounts }
    }

    /// Replaces every occurrence of a mount path that stands as a path prefix (preceded by
    /// the start or a non-path character such as `=`, `:` or `,`, and followed by the end,
    /// `/` or a non-path character) with its host directory.
    pub fn rewrite(&self, input: &str) -> String {
        let mut out = String::with_capacity(input.len());
        let mut i = 0;
        'scan: while i < input.len() {
            let before = input[..i].chars().next_back();
            if before.is_none_or(|c| !is_path_char(c)) {
                for (mount, host) in &self.mounts {
                    if let Some(after) = input[i..].strip_prefix(mount.as_str())
                        && after.chars().next().is_none_or(|c| c == '/' || !is_path_char(c))
                    {
                        out.push_str(&host.display().to_string());
                        i += mount.len();
                        continue 'scan;
                    }
                }
            }
            let c = input[i..].chars().next().expect("i is a char boundary below len");
            out.push(c);
            i += c.len_utf8();
        }
        out
    }
}

fn is_path_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '/' | '.' | '-' | '_' | '~' | '+' | '@')
}

/// Rewrites the "any address" listen addresses `0.0.0.0` and `[::]` to the pod's address,
/// where they stand alone (not inside `10.0.0.0` or `0.0.0.0/0`-like longer tokens).
pub fn rewrite_any_address(input: &str, pod_ip: Ipv4Addr) -> String {
    let ip = pod_ip.to_string();
    let mut out = String::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let before = input[..i].chars().next_back();
        let standalone_start = before.is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '.'));
        if standalone_start {
            let matched = ["0.0.0.0", "[::]"].into_iter().find(|any| {
                input[i..].strip_prefix(any).is_some_and(|after| {
                    after.chars().next().is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '.' || c == '/'))
                })
            });
            if let Some(any) = matched {
                out.push_str(&ip);
                i += any.len();
                continue;
            }
        }
        let c = input[i..].chars().next().expect("i is a char boundary below len");
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// All rewrites of one argument or environment value, in the order the kubelet and the
/// emulator apply them: `$(VAR)` expansion, mount paths, any-address.
pub fn rewrite_value(input: &str, env: &[(String, String)], mounts: &MountMap, pod_ip: Ipv4Addr) -> String {
    rewrite_any_address(&mounts.rewrite(&expand_vars(input, env)), pod_ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn pkiplane_program_is_replaced_by_the_local_binary() {
        let bin = Path::new("/repo/target/debug/pkiplane");
        let (program, args) = program_and_args(&s(&["pkiplane"]), &s(&["endpoint", "--x"]), "pkiplane", bin);
        assert_eq!(program, "/repo/target/debug/pkiplane");
        assert_eq!(args, s(&["endpoint", "--x"]));
        let (program, _) = program_and_args(&s(&["/usr/local/bin/pkiplane"]), &[], "pkiplane", bin);
        assert_eq!(program, "/repo/target/debug/pkiplane");
        let (program, args) = program_and_args(&s(&["python3", "-m"]), &s(&["http.server"]), "pkiplane", bin);
        assert_eq!((program.as_str(), args), ("python3", s(&["-m", "http.server"])));
        let (program, _) = program_and_args(&s(&["/bin/pkiplane-helper"]), &[], "pkiplane", bin);
        assert_eq!(program, "/bin/pkiplane-helper");
    }

    #[test]
    fn empty_command_runs_the_image_entrypoint() {
        let bin = Path::new("/b/pkiplane");
        let (program, args) = program_and_args(&[], &s(&["ca", "--x"]), "pkiplane", bin);
        assert_eq!((program.as_str(), args), ("/b/pkiplane", s(&["ca", "--x"])));
    }

    #[test]
    fn variables_expand_like_the_kubelet() {
        let env = vec![("POD_IP".to_string(), "127.64.0.2".to_string()), ("A".to_string(), "x".to_string())];
        assert_eq!(expand_vars("--listen=$(POD_IP):80", &env), "--listen=127.64.0.2:80");
        assert_eq!(expand_vars("$$(POD_IP) $(MISSING) $(A)$(A)", &env), "$(POD_IP) $(MISSING) xx");
        assert_eq!(expand_vars("cost $5 $(unterminated", &env), "cost $5 $(unterminated");
    }

    #[test]
    fn mount_paths_are_rewritten_as_path_prefixes_only() {
        let mounts = MountMap::new([
            ("/etc/pkiplane/config".to_string(), PathBuf::from("/e2e/pods/ns/p/volumes/config")),
            ("/etc/pkiplane/config/extra/".to_string(), PathBuf::from("/e2e/pods/ns/p/volumes/extra")),
            ("/etc/pkiplane/internal".to_string(), PathBuf::from("/e2e/pods/ns/p/volumes/internal")),
        ]);
        assert_eq!(
            mounts.rewrite("--config=/etc/pkiplane/config/endpoint.yaml"),
            "--config=/e2e/pods/ns/p/volumes/config/endpoint.yaml"
        );
        assert_eq!(mounts.rewrite("/etc/pkiplane/config/extra/a"), "/e2e/pods/ns/p/volumes/extra/a");
        assert_eq!(
            mounts.rewrite("--internal-tls=/etc/pkiplane/internal"),
            "--internal-tls=/e2e/pods/ns/p/volumes/internal"
        );
        assert_eq!(
            mounts.rewrite("a:/etc/pkiplane/internal,b:/etc/pkiplane/config"),
            "a:/e2e/pods/ns/p/volumes/internal,b:/e2e/pods/ns/p/volumes/config"
        );
        // Not a prefix of another name, and not inside another path.
        assert_eq!(mounts.rewrite("/etc/pkiplane/configs/x"), "/etc/pkiplane/configs/x");
        assert_eq!(mounts.rewrite("/opt/etc/pkiplane/config"), "/opt/etc/pkiplane/config");
    }

    #[test]
    fn any_addresses_become_the_pod_address() {
        let ip = Ipv4Addr::new(127, 64, 0, 7);
        assert_eq!(rewrite_any_address("--listen=0.0.0.0:9090", ip), "--listen=127.64.0.7:9090");
        assert_eq!(rewrite_any_address("[::]:443", ip), "127.64.0.7:443");
        assert_eq!(rewrite_any_address("0.0.0.0", ip), "127.64.0.7");
        assert_eq!(rewrite_any_address("10.0.0.0/8 0.0.0.0/0 10.0.0.0", ip), "10.0.0.0/8 0.0.0.0/0 10.0.0.0");
    }

    #[test]
    fn all_rewrites_compose() {
        let mounts = MountMap::new([("/data".to_string(), PathBuf::from("/h/data"))]);
        let env = vec![("PORT".to_string(), "8000".to_string())];
        let ip = Ipv4Addr::new(127, 64, 1, 2);
        assert_eq!(
            rewrite_value("--bind=0.0.0.0:$(PORT) --dir=/data/www", &env, &mounts, ip),
            "--bind=127.64.1.2:8000 --dir=/h/data/www"
        );
    }
}
