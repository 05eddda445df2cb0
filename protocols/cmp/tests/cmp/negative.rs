//! Refusals: each gets the right PKIFailureInfo and nothing is issued.

use pkiplane_cmp::wire::FailBit;
use pkiplane_core::inventory::CertStatus;

use crate::common::*;

fn bits(b: &[FailBit]) -> Vec<&'static str> {
    b.iter().map(|b| b.name()).collect()
}

async fn ir(pki: &Pki, name: &str, extra: &[&str]) -> Run {
    let k = ec_key(pki.dir.path(), name);
    let cert = pki.path(&format!("{name}.pem"));
    let mut args: Vec<&str> = vec!["-cmd", "ir", "-newkey", p(&k), "-certout", p(&cert), "-unprotected_errors"];
    args.extend_from_slice(extra);
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let argv: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    pki.cmp(name, None, &argv).await
}

const SUBJ: [&str; 4] = ["-subject", "/CN=neg.example.com", "-sans", "neg.example.com"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_secret_and_unknown_sender_kid_fail_the_message_check_alike() {
    let pki = start(Options::default()).await;
    let before = pki.cmp_count().await;
    let wrong = ir(&pki, "wrong", &[&["-ref", KID, "-secret", "pass:not-the-secret"][..], &SUBJ].concat()).await;
    assert!(!wrong.ok);
    assert_eq!(fail_of(&wrong).names(), bits(&[FailBit::BadMessageCheck]));
    let unknown =
        ir(&pki, "unknown", &[&["-ref", "nobody", "-secret", &format!("pass:{SECRET}")][..], &SUBJ].concat()).await;
    assert!(!unknown.ok);
    assert_eq!(fail_of(&unknown).names(), bits(&[FailBit::BadMessageCheck]));
    assert_eq!(text_of(&wrong), text_of(&unknown), "no oracle for which senderKIDs exist");
    assert_eq!(pki.cmp_count().await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_transaction_id_is_refused() {
    let pki = start(Options::default()).await;
    let run = ir(
        &pki,
        "first",
        &[&["-ref", KID, "-secret", &format!("pass:{SECRET}"), "-implicit_confirm"][..], &SUBJ].concat(),
    )
    .await;
    assert!(run.ok, "{}", run.stderr);
    let count = pki.cmp_count().await;
    let saved = std::fs::read(pki.path("first.req0.der")).unwrap();
    let reply = pki.post(None, &saved).await;
    assert_eq!(status_of(&reply).fail().names(), bits(&[FailBit::TransactionIdInUse]));
    assert_eq!(pki.cmp_count().await, count, "the replay issued nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signature_by_an_untrusted_certificate_is_refused() {
    let pki = start(Options::default()).await;
    let before = pki.cmp_count().await;
    // A leaf from a CA the endpoint does not trust, and a self-signed certificate.
    let rogue_ca_key = ec_key(pki.dir.path(), "rogue-ca");
    let rogue_ca = pki.path("rogue-ca.crt");
    openssl_ok(&[
        "req",
        "-x509",
        "-new",
        "-key",
        p(&rogue_ca_key),
        "-subj",
        "/CN=Rogue CA",
        "-days",
        "1",
        "-out",
        p(&rogue_ca),
    ]);
    let rogue_key = ec_key(pki.dir.path(), "rogue");
    let rogue_csr = pki.path("rogue.csr");
    openssl_ok(&["req", "-new", "-key", p(&rogue_key), "-subj", "/CN=rogue.example.com", "-out", p(&rogue_csr)]);
    let rogue = pki.path("rogue.crt");
    openssl_ok(&[
        "x509",
        "-req",
        "-in",
        p(&rogue_csr),
        "-CA",
        p(&rogue_ca),
        "-CAkey",
        p(&rogue_ca_key),
        "-CAcreateserial",
        "-days",
        "1",
        "-out",
        p(&rogue),
    ]);
    let selfsigned = pki.path("selfsigned.crt");
    openssl_ok(&[
        "req",
        "-x509",
        "-new",
        "-key",
        p(&rogue_key),
        "-subj",
        "/CN=self.example.com",
        "-days",
        "1",
        "-out",
        p(&selfsigned),
    ]);
    let issuer = ["-trusted", p(&pki.root_pem), "-issuer", "/O=Example/CN=Test Issuing CA"];
    let ss =
        ir(&pki, "selfsigned", &[&["-cert", p(&selfsigned), "-key", p(&rogue_key)][..], &issuer, &SUBJ].concat()).await;
    assert!(!ss.ok);
    assert_eq!(fail_of(&ss).names(), bits(&[FailBit::SignerNotTrusted]), "{}", text_of(&ss));
    let run = ir(&pki, "untrusted", &[&["-cert", p(&rogue), "-key", p(&rogue_key)][..], &issuer, &SUBJ].concat()).await;
    assert!(!run.ok);
    assert_eq!(fail_of(&run).names(), bits(&[FailBit::SignerNotTrusted]), "{}", text_of(&run));
    assert_eq!(pki.cmp_count().await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_unearned_pop_is_bad_pop() {
    let pki = start(Options::default()).await;
    let before = pki.cmp_count().await;
    let secret = format!("pass:{SECRET}");
    let none = ir(&pki, "nopop", &[&["-ref", KID, "-secret", &secret, "-popo", "-1"][..], &SUBJ].concat()).await;
    assert!(!none.ok);
    assert_eq!(fail_of(&none).names(), bits(&[FailBit::BadPop]));
    // raVerified from a MAC sender, who is no registration authority.
    let ra = ir(&pki, "rapop", &[&["-ref", KID, "-secret", &secret, "-popo", "0"][..], &SUBJ].concat()).await;
    assert!(!ra.ok);
    assert_eq!(fail_of(&ra).names(), bits(&[FailBit::BadPop]));
    assert_eq!(pki.cmp_count().await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_the_profile_forbids_names_the_rule() {
    let pki = start(Options::default()).await;
    let before = pki.cmp_count().await;
    let run = ir(
        &pki,
        "evil",
        &["-ref", KID, "-secret", &format!("pass:{SECRET}"), "-subject", "/CN=evil.org", "-sans", "evil.org"],
    )
    .await;
    assert!(!run.ok);
    assert_eq!(fail_of(&run).names(), bits(&[FailBit::BadCertTemplate]));
    let text = text_of(&run);
    assert!(text.contains("subjectAltNames.dns.suffixes"), "{text}");
    assert_eq!(pki.cmp_count().await, before);
    // The denial is counted in the inventory like any other protocol's.
    let wrong_issuer = ir(
        &pki,
        "issuer",
        &[&["-ref", KID, "-secret", &format!("pass:{SECRET}"), "-issuer", "/CN=Someone Else"][..], &SUBJ].concat(),
    )
    .await;
    assert_eq!(fail_of(&wrong_issuer).names(), bits(&[FailBit::WrongAuthority]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kur_needs_the_old_certificate_and_rr_needs_its_owner() {
    let pki = start(Options::default()).await;
    let secret = format!("pass:{SECRET}");
    let run = ir(&pki, "owned", &[&["-ref", KID, "-secret", &secret, "-implicit_confirm"][..], &SUBJ].concat()).await;
    assert!(run.ok, "{}", run.stderr);
    let cert = pki.path("owned.pem");
    let before = pki.cmp_count().await;
    // kur protected by a MAC instead of the certificate to update.
    let k = ec_key(pki.dir.path(), "kurmac");
    let kur = pki
        .cmp(
            "kurmac",
            None,
            &[
                "-cmd",
                "kur",
                "-ref",
                KID,
                "-secret",
                &secret,
                "-oldcert",
                p(&cert),
                "-newkey",
                p(&k),
                "-certout",
                p(&pki.path("kurmac.pem")),
                "-unprotected_errors",
            ],
        )
        .await;
    assert!(!kur.ok);
    assert!(!kur.responses.is_empty(), "{}", kur.stderr);
    assert_eq!(fail_of(&kur).names(), bits(&[FailBit::NotAuthorized]));
    assert_eq!(pki.cmp_count().await, before);
    // Another senderKID may not revoke it; the one that requested it may.
    let other = pki
        .cmp(
            "rr2",
            None,
            &[
                "-cmd",
                "rr",
                "-ref",
                "device-2",
                "-secret",
                "pass:another-secret-2",
                "-oldcert",
                p(&cert),
                "-unprotected_errors",
            ],
        )
        .await;
    assert!(!other.ok);
    assert_eq!(fail_of(&other).names(), bits(&[FailBit::NotAuthorized]));
    assert_eq!(pki.record(&cert).await.status, CertStatus::Issued);
    let own = pki.cmp("rr1", None, &["-cmd", "rr", "-ref", KID, "-secret", &secret, "-oldcert", p(&cert)]).await;
    assert!(own.ok, "{}", own.stderr);
    assert_eq!(pki.record(&cert).await.status, CertStatus::Revoked);
    let again = pki
        .cmp("rr3", None, &["-cmd", "rr", "-ref", KID, "-secret", &secret, "-oldcert", p(&cert), "-unprotected_errors"])
        .await;
    assert_eq!(fail_of(&again).names(), bits(&[FailBit::CertRevoked]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_messages_and_unknown_versions_are_refused() {
    let pki = start(Options { max_clock_skew: Some(std::time::Duration::from_secs(1)), ..Options::default() }).await;
    let run = ir(
        &pki,
        "late",
        &[&["-ref", KID, "-secret", &format!("pass:{SECRET}"), "-implicit_confirm"][..], &SUBJ].concat(),
    )
    .await;
    assert!(run.ok, "{}", run.stderr);
    let count = pki.cmp_count().await;
    let mut saved = std::fs::read(pki.path("late.req0.der")).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    let reply = pki.post(None, &saved).await;
    assert_eq!(status_of(&reply).fail().names(), bits(&[FailBit::BadTime]));
    // pvno 1 (cmp1999): the INTEGER right after the header's SEQUENCE header.
    let header_at = 2 + if saved[1] & 0x80 != 0 { (saved[1] & 0x7f) as usize } else { 0 };
    let pvno_at =
        header_at + 2 + if saved[header_at + 1] & 0x80 != 0 { (saved[header_at + 1] & 0x7f) as usize } else { 0 } + 2;
    assert_eq!(saved[pvno_at], 2);
    saved[pvno_at] = 1;
    let reply = pki.post(None, &saved).await;
    assert_eq!(status_of(&reply).fail().names(), bits(&[FailBit::UnsupportedVersion]));
    assert_eq!(pki.cmp_count().await, count);
}
