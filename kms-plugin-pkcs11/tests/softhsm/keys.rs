//! The key: created inside the token, sensitive and never extractable, its
//! key ID stable across restarts; keys that can leave the token refused;
//! the PIN only from a private file or the environment.

use crate::plugin::{command, Plugin};
use k8s_envelope_test_support::plugin_process::run_to_exit;
use k8s_envelope_test_support::softhsm::{SoftHsm, PIN};

/// The key ID the plugin logs when it starts serving.
fn served_key_id(plugin: &Plugin) -> String {
    let log = plugin.log();
    let start = log.find("with key pkcs11-").expect("key in log") + "with key ".len();
    log[start..]
        .split_whitespace()
        .next()
        .expect("key ID")
        .to_owned()
}

#[test]
#[ignore = "needs SoftHSM2 (apt-get install softhsm2 opensc)"]
fn a_created_key_never_leaves_the_token_and_keeps_its_key_id() {
    let hsm = SoftHsm::new_token();
    let plugin = Plugin::start(&hsm, "kek1", &["--create-key"]);
    let key_id = served_key_id(&plugin);
    assert!(plugin.terminate().success());

    let listed = hsm.pkcs11_tool(&["--list-objects", "--type", "secrkey"]);
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert_eq!(listed.matches("Secret Key Object").count(), 1, "{listed}");
    assert!(
        listed.contains("Secret Key Object; AES length 32"),
        "{listed}"
    );
    assert!(listed.contains("label:      kek1"), "{listed}");
    assert!(
        listed.contains("Access:     sensitive, always sensitive, never extractable, local"),
        "{listed}"
    );
    assert!(
        listed.contains("Usage:      encrypt, decrypt\n"),
        "{listed}"
    );
    let cka_id = key_id.strip_prefix("pkcs11-").expect("prefix");
    assert!(
        listed.contains(&format!("ID:         {cka_id}")),
        "{listed}"
    );
    let read = hsm.pkcs11_tool(&["--read-object", "--type", "secrkey", "--label", "kek1"]);
    assert!(!read.status.success(), "the key's value was read: {read:?}");

    // A restart, with or without --create-key, finds the same key.
    for extra in [&[][..], &["--create-key"]] {
        let plugin = Plugin::start(&hsm, "kek1", extra);
        assert_eq!(served_key_id(&plugin), key_id);
        assert!(plugin.terminate().success());
    }
    let listed = hsm.pkcs11_tool(&["--list-objects", "--type", "secrkey"]);
    assert_eq!(
        String::from_utf8_lossy(&listed.stdout)
            .matches("Secret Key Object")
            .count(),
        1
    );
}

#[test]
#[ignore = "needs SoftHSM2 (apt-get install softhsm2 opensc)"]
fn a_key_that_can_leave_the_token_is_refused_unless_allowed() {
    let hsm = SoftHsm::new_token();
    // pkcs11-tool without --sensitive: CKA_SENSITIVE false.
    let made = hsm.pkcs11_tool(&[
        "--keygen",
        "--key-type",
        "AES:32",
        "--label",
        "loose",
        "--id",
        "0202",
    ]);
    assert!(made.status.success(), "{made:?}");
    let mut refused = command(&hsm, "loose", &[]);
    refused.arg("--pin-file").arg(hsm.pin_file());
    let (code, stderr) = run_to_exit(refused);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("can leave the token"), "{stderr}");
    assert!(stderr.contains("--allow-extractable-key"), "{stderr}");

    let plugin = Plugin::start(&hsm, "loose", &["--allow-extractable-key"]);
    assert_eq!(
        plugin
            .log()
            .lines()
            .next()
            .map(|l| l.contains("pkcs11-0202")),
        Some(true),
        "{}",
        plugin.log()
    );
}

#[test]
#[ignore = "needs SoftHSM2 (apt-get install softhsm2 opensc)"]
fn a_key_usable_without_the_pin_is_refused_and_a_private_sensitive_one_is_used() {
    let hsm = SoftHsm::new_token();
    let keygen = |label: &str, id: &str, flags: &[&str]| {
        let mut args = vec![
            "--keygen",
            "--key-type",
            "AES:32",
            "--label",
            label,
            "--id",
            id,
        ];
        args.extend_from_slice(flags);
        let made = hsm.pkcs11_tool(&args);
        assert!(made.status.success(), "{made:?}");
    };
    // Sensitive and never extractable, but not CKA_PRIVATE.
    keygen("public", "0303", &["--sensitive"]);
    let mut refused = command(&hsm, "public", &[]);
    refused.arg("--pin-file").arg(hsm.pin_file());
    let (code, stderr) = run_to_exit(refused);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("not a private object"), "{stderr}");

    // Made by another tool the right way: used as it is.
    keygen("made-elsewhere", "0404", &["--sensitive", "--private"]);
    let plugin = Plugin::start(&hsm, "made-elsewhere", &[]);
    assert!(plugin.log().contains("pkcs11-0404"), "{}", plugin.log());
    assert!(plugin.terminate().success());
}

#[test]
#[ignore = "needs SoftHSM2 (apt-get install softhsm2 opensc)"]
fn the_pin_comes_from_a_private_file_or_the_environment_and_is_never_shown() {
    use std::os::unix::fs::PermissionsExt as _;

    let hsm = SoftHsm::new_token();
    // No PIN at all.
    let (code, stderr) = run_to_exit(command(&hsm, "kek1", &["--create-key"]));
    assert_eq!(code, 2);
    assert!(stderr.contains("no PIN"), "{stderr}");

    // A PIN file others can read.
    let loose = hsm.dir().join("loose-pin");
    std::fs::write(&loose, format!("{PIN}\n")).expect("write");
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let mut open = command(&hsm, "kek1", &["--create-key"]);
    open.arg("--pin-file").arg(&loose);
    let (code, stderr) = run_to_exit(open);
    assert_eq!(code, 2);
    assert!(stderr.contains("chmod 600"), "{stderr}");
    assert!(!stderr.contains(PIN), "{stderr}");

    // A wrong PIN: the token's answer, named, and not the PIN.
    let wrong = hsm.dir().join("wrong-pin");
    std::fs::write(&wrong, "11112222\n").expect("write");
    std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let mut bad = command(&hsm, "kek1", &["--create-key"]);
    bad.arg("--pin-file").arg(&wrong);
    let (code, stderr) = run_to_exit(bad);
    assert_eq!(code, 2);
    assert!(stderr.contains("C_Login: CKR_PIN_INCORRECT"), "{stderr}");
    assert!(!stderr.contains("11112222"), "{stderr}");

    // The environment.
    let mut env = command(&hsm, "kek1", &["--create-key"]);
    env.env("KMS_PLUGIN_PKCS11_PIN", PIN);
    let plugin = Plugin::spawn(env);
    assert!(!plugin.log().contains(PIN));
    assert!(plugin.terminate().success());
}

#[test]
#[ignore = "needs SoftHSM2 (apt-get install softhsm2 opensc)"]
fn a_missing_key_or_token_is_a_clear_refusal() {
    let hsm = SoftHsm::new_token();
    let mut missing = command(&hsm, "nokey", &[]);
    missing.arg("--pin-file").arg(hsm.pin_file());
    let (code, stderr) = run_to_exit(missing);
    assert_eq!(code, 2);
    assert!(stderr.contains("no AES key labelled \"nokey\""), "{stderr}");
    assert!(stderr.contains("--create-key"), "{stderr}");

    let mut other = hsm.command(crate::plugin::PLUGIN);
    other
        .arg("--module")
        .arg(hsm.module())
        .args([
            "--token-label",
            "not-there",
            "--key-label",
            "k",
            "--pin-file",
        ])
        .arg(hsm.pin_file());
    let (code, stderr) = run_to_exit(other);
    assert_eq!(code, 2);
    // It says which tokens it can see, and where SoftHSM2 looks.
    assert!(
        stderr.contains(&format!(
            "no token labelled \"not-there\" is present (the module shows \"{}\"",
            k8s_envelope_test_support::softhsm::TOKEN_LABEL
        )),
        "{stderr}"
    );
    assert!(stderr.contains("SOFTHSM2_CONF"), "{stderr}");

    // Without its configuration, SoftHSM2 shows no token: said so.
    let mut unconfigured = hsm.command(crate::plugin::PLUGIN);
    unconfigured
        .env("SOFTHSM2_CONF", hsm.dir().join("no-such.conf"))
        .arg("--module")
        .arg(hsm.module())
        .args(["--token-label", "k8s", "--key-label", "k", "--pin-file"])
        .arg(hsm.pin_file());
    let (code, stderr) = run_to_exit(unconfigured);
    assert_ne!(code, 0, "{stderr}");
    assert!(stderr.contains("SOFTHSM2_CONF"), "{stderr}");
}
