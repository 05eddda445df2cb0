//! `pkiplane policy lint` as a CI job runs it: the real binary over the quickstart and
//! over each of the webhook's bad fixtures applied on top of it.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn lint(args: &[&Path], extra: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pkiplane"));
    cmd.args(["policy", "lint"]);
    for a in args {
        cmd.arg("-f").arg(a);
    }
    let out = cmd.args(extra).output().expect("pkiplane runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_quickstart_lints_clean() {
    let (code, stdout, stderr) = lint(&[&repo().join("examples/quickstart.yaml")], &[]);
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stderr.contains("11 objects checked, 0 denied"), "{stderr}");
    assert!(!stdout.lines().any(|l| !l.contains(": warning: ")), "only warnings may be printed:\n{stdout}");
}

#[test]
fn every_bad_fixture_is_denied_with_its_message() {
    let dir = repo().join("webhook/tests/fixtures/bad");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(files.len() >= 25);
    let quickstart = repo().join("examples/quickstart.yaml");
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let (code, stdout, stderr) = lint(&[&quickstart, &file], &[]);
        assert_eq!(code, 1, "{}: stdout:\n{stdout}\nstderr:\n{stderr}", file.display());
        for expect in text.lines().filter_map(|l| l.strip_prefix("# expect: ")) {
            let found = stdout.lines().any(|l| {
                // `Kind ns/name: field: reason`
                l.split_once(": ").is_some_and(|(object, rest)| object.contains(' ') && rest.contains(expect.trim()))
            });
            assert!(found, "{}: no line with `{expect}` in:\n{stdout}", file.display());
        }
    }
}

#[test]
fn json_output_lists_denials_by_field() {
    let fixture = repo().join("webhook/tests/fixtures/bad/01-profile-issuer-missing.yaml");
    let (code, stdout, _) = lint(&[&repo().join("examples/quickstart.yaml"), &fixture], &["-o", "json"]);
    assert_eq!(code, 1);
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(report["denied"], 1);
    let denied: Vec<&serde_json::Value> =
        report["objects"].as_array().unwrap().iter().filter(|o| o["allowed"] == false).collect();
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0]["kind"], "CertificateProfile");
    assert_eq!(denied[0]["name"], "orphan-profile");
    assert_eq!(denied[0]["denials"][0]["field"], "spec.issuerRef.name");
}

#[test]
fn unreadable_input_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "apiVersion: pkiplane.dev/v1alpha1\nkind: Issuer\nmetadata: {name: x}\nspec: {bogus: 1}\n")
        .unwrap();
    let (code, _, stderr) = lint(&[&bad], &[]);
    assert_eq!(code, 2, "{stderr}");
    let (code, _, _) = lint(&[&dir.path().join("missing.yaml")], &[]);
    assert_eq!(code, 2);
}
