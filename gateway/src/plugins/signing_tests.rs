//! Unit tests of plugin signatures: each tampering named, scopes and versions held.

use super::*;

fn trusted(key: &SigningKey) -> SignaturePolicy {
    SignaturePolicy::new(
        &public_key_text(&key.verifying_key()),
        SignatureMode::Required,
    )
    .unwrap()
}

#[test]
fn a_valid_signature_vouches_and_each_tampering_is_named() {
    let (private, public) = generate();
    let key = parse_signing_key(&format!("# a comment\n{private}\n")).unwrap();
    assert_eq!(public_key_text(&key.verifying_key()), public);
    let bytes = b"a component".to_vec();
    let signed =
        serde_json::to_string(&sign(&key, "p", "1.0.0", &bytes, SignedScope::default())).unwrap();
    let policy = trusted(&key);
    assert_eq!(
        policy.verify(Some(&signed), "p", "1.0.0", &bytes),
        Ok(key_id(&key.verifying_key()))
    );

    let mut flipped = bytes.clone();
    flipped[0] ^= 1;
    assert_eq!(
        policy.verify(Some(&signed), "p", "1.0.0", &flipped),
        Err(SignatureError::OtherFile)
    );
    let other = serde_json::to_string(&sign(
        &key,
        "p",
        "1.0.0",
        b"another",
        SignedScope::default(),
    ))
    .unwrap();
    assert_eq!(
        policy.verify(Some(&other), "p", "1.0.0", &bytes),
        Err(SignatureError::OtherFile)
    );
    assert!(matches!(
        policy.verify(Some(&signed), "p", "2.0.0", &bytes),
        Err(SignatureError::OtherPlugin { .. })
    ));
    let stranger = SigningKey::from_bytes(&[7; 32]);
    let by_stranger = serde_json::to_string(&sign(
        &stranger,
        "p",
        "1.0.0",
        &bytes,
        SignedScope::default(),
    ))
    .unwrap();
    assert_eq!(
        policy.verify(Some(&by_stranger), "p", "1.0.0", &bytes),
        Err(SignatureError::Untrusted(key_id(&stranger.verifying_key())))
    );
    // A trusted key claimed on a signature it did not make.
    let mut forged: SignatureFile = serde_json::from_str(&by_stranger).unwrap();
    forged.key = public;
    let forged = serde_json::to_string(&forged).unwrap();
    assert_eq!(
        policy.verify(Some(&forged), "p", "1.0.0", &bytes),
        Err(SignatureError::Invalid)
    );
    assert_eq!(
        policy.verify(None, "p", "1.0.0", &bytes),
        Err(SignatureError::Missing)
    );
    assert!(matches!(
        policy.verify(Some("{}"), "p", "1.0.0", &bytes),
        Err(SignatureError::Malformed(_))
    ));
}

#[test]
fn a_scoped_signature_covers_its_scope_and_holds_a_binding_to_it() {
    let key = SigningKey::from_bytes(&[3; 32]);
    let policy = trusted(&key);
    let bytes = b"a component".to_vec();
    let scope = SignedScope {
        bindings: vec!["mail-guard".into()],
        tools: vec!["gmail_send".into()],
        fail: Some(FailMode::Closed),
    };
    let file = sign(&key, "p", "1.0.0", &bytes, scope);
    assert_eq!(file.format, FORMAT_RESTRICTED);
    let text = serde_json::to_string(&file).unwrap();
    let vouched = policy.verify_bytes(Some(&text), &bytes).unwrap();
    let tools = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let inside = |b: &str, t: &[&str], f| vouched.scope.check(b, &tools(t), f);
    assert!(inside("mail-guard", &["gmail_send"], FailMode::Closed).is_ok());
    assert!(inside("other", &["gmail_send"], FailMode::Closed).is_err());
    assert!(inside("mail-guard", &["*"], FailMode::Closed).is_err());
    assert!(inside("mail-guard", &["gmail_send"], FailMode::Open).is_err());
    assert!(matches!(
        policy.check_use(
            "p",
            Some(&vouched),
            "other",
            &tools(&["gmail_send"]),
            FailMode::Closed
        ),
        Err(SignatureError::OutOfScope(_))
    ));

    // The scope is signed: widening or dropping it breaks the signature.
    let mut widened = file.clone();
    widened.fail = None;
    let widened = serde_json::to_string(&widened).unwrap();
    assert_eq!(
        policy.verify_bytes(Some(&widened), &bytes),
        Err(SignatureError::Invalid)
    );
    let mut dropped = file;
    (dropped.bindings, dropped.tools, dropped.fail) = (Vec::new(), Vec::new(), None);
    let dropped = serde_json::to_string(&dropped).unwrap();
    assert!(matches!(
        policy.verify_bytes(Some(&dropped), &bytes),
        Err(SignatureError::Malformed(_))
    ));
}

#[test]
fn a_lower_semantic_version_is_a_downgrade() {
    assert!(is_downgrade("1.0.0", "1.0.1"));
    assert!(!is_downgrade("1.0.1", "1.0.1"));
    assert!(!is_downgrade("2.0.0", "1.9.9"));
    assert!(!is_downgrade("not-a-version", "1.0.0"));
    assert_eq!(
        highest_version(["1.0.0", "1.10.0", "1.9.0", "x"]),
        Some("1.10.0".into())
    );
}

#[test]
fn warn_mode_admits_what_required_refuses() {
    let key = SigningKey::from_bytes(&[1; 32]);
    let mut policy = trusted(&key);
    let never_loaded = || -> Result<Plugin, String> { panic!("unvouched bytes are not loaded") };
    assert_eq!(
        policy
            .admit("p", None, b"x", never_loaded, |e| e.to_string())
            .unwrap_err(),
        "not signed"
    );
    policy.mode = SignatureMode::Warn;
    let loaded = policy.admit(
        "p",
        None,
        b"x",
        || Err::<Plugin, String>("loaded".into()),
        |e| e.to_string(),
    );
    assert_eq!(loaded.unwrap_err(), "loaded", "warn goes on to load");
    assert!(SignaturePolicy::new("ed25519:nope", SignatureMode::Warn).is_err());
    assert!(SignaturePolicy::new(" , ", SignatureMode::Warn).is_ok());
}
