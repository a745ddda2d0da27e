//! No error message and no `Debug` output contains key material or plaintext.
//!
//! Every provider is built from distinctive keys (printable ASCII, so a raw
//! copy shows up as text, and random bytes given as base64), every error this
//! crate can produce from them is triggered, and everything is formatted with
//! `{}`, `{:?}` and `{:#?}`; no output may contain a key's bytes, its hex, its
//! base64, its `Debug` byte list, or the plaintext.

use std::fmt::Debug;
use std::sync::Arc;

use base64::Engine as _;
use k8s_envelope::config::EncryptionConfiguration;
use k8s_envelope::ProviderFuture;
use k8s_envelope::{
    AesCbc, AesGcm, BlockingProvider, Decrypted, Error, Identity, NamedKey, Provider, ProviderKind,
    SecretKey, Secretbox, StorageKey, Transformer,
};

/// Printable keys: a raw copy in a message is visible as text.
const ASCII_KEYS: [&[u8]; 6] = [
    b"LeakCanaryKey16!",
    b"LeakCanaryKey24!xyzXYZ!!",
    b"LeakCanaryKey32!abcdefghijklmnop",
    b"ZebraQuokka#16Bb",
    b"PLATYPUS-axolotl-32byte-key-0001",
    // Wrong lengths, for the constructors' errors.
    b"LeakCanaryKey31!abcdefghijklmno",
];

/// Random-looking keys given as base64, as in an EncryptionConfiguration.
const BASE64_KEYS: [&str; 3] = [
    "q83vASNFZ4mrze8BI0VniavN7wEjRWeJq83vASNFZ4k=",
    "3q2+796tvu/erb7v3q2+7w==",
    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
];

const PLAINTEXT: &[u8] = b"PLAINTEXT-CANARY-7f3a9c-DO-NOT-PRINT";
const SK: &str = "/registry/secrets/default/leak-test";

/// Every string whose presence in an output would be a leak.
struct Needles(Vec<(String, String)>);

impl Needles {
    fn new(keys: &[SecretKey]) -> Self {
        let mut needles = Vec::new();
        let mut push = |what: String, needle: String| {
            assert!(needle.len() >= 8, "needle too short to be meaningful");
            needles.push((what, needle));
        };
        for (k, key) in keys.iter().enumerate() {
            let bytes = key.expose();
            let engines = [
                &base64::engine::general_purpose::STANDARD,
                &base64::engine::general_purpose::STANDARD_NO_PAD,
                &base64::engine::general_purpose::URL_SAFE,
            ];
            for engine in engines {
                let encoded = engine.encode(bytes);
                push(format!("key {k} base64"), encoded.clone());
                // Any 16 characters of it.
                for start in 0..=encoded.len().saturating_sub(16) {
                    push(
                        format!("key {k} base64 part"),
                        encoded[start..start + 16].to_owned(),
                    );
                }
            }
            // Any 8 bytes, as lowercase and uppercase hex, as text, and as a
            // `Debug` byte list or array.
            for window in bytes.windows(8) {
                let hex: String = window.iter().map(|b| format!("{b:02x}")).collect();
                push(format!("key {k} hex"), hex.to_uppercase());
                push(format!("key {k} hex"), hex);
                let raw = String::from_utf8_lossy(window);
                if !raw.contains('\u{fffd}') {
                    push(format!("key {k} raw"), raw.into_owned());
                }
                let list = format!("{window:?}");
                push(
                    format!("key {k} byte list"),
                    list[1..list.len() - 1].to_owned(),
                );
                let hex_list = format!("{window:x?}");
                push(
                    format!("key {k} hex byte list"),
                    hex_list[1..hex_list.len() - 1].to_owned(),
                );
            }
        }
        for window in PLAINTEXT.windows(10) {
            push(
                "plaintext".to_owned(),
                String::from_utf8_lossy(window).into_owned(),
            );
        }
        let list = format!("{:?}", &PLAINTEXT[..8]);
        push(
            "plaintext byte list".to_owned(),
            list[1..list.len() - 1].to_owned(),
        );
        Self(needles)
    }

    /// The first needle `output` contains, if any.
    fn find(&self, output: &str) -> Option<&(String, String)> {
        self.0
            .iter()
            .find(|(_, needle)| output.contains(needle.as_str()))
    }
}

/// Collects every rendering of every value under test.
#[derive(Default)]
struct Outputs(Vec<(String, String)>);

impl Outputs {
    fn debug(&mut self, what: &str, value: &dyn Debug) {
        self.0
            .push((format!("{what} {{:?}}"), format!("{value:?}")));
        self.0
            .push((format!("{what} {{:#?}}"), format!("{value:#?}")));
    }

    fn error(&mut self, what: &str, error: &(dyn std::error::Error + 'static)) {
        self.0.push((format!("{what} {{}}"), format!("{error}")));
        self.0
            .push((format!("{what} {{:#}}"), format!("{error:#}")));
        self.debug(what, error);
        let mut source = error.source();
        while let Some(e) = source {
            self.0.push((format!("{what} source {{}}"), format!("{e}")));
            self.0
                .push((format!("{what} source {{:?}}"), format!("{e:?}")));
            source = e.source();
        }
    }

    fn result<T: Debug>(&mut self, what: &str, result: &Result<T, Error>) {
        self.debug(&format!("{what} result"), result);
        if let Err(e) = result {
            self.error(what, e);
        }
    }

    fn errors(&self) -> usize {
        self.0
            .iter()
            .filter(|(what, _)| what.ends_with("{}"))
            .count()
    }
}

/// A provider with no blocking form, to get [`Error::RequiresAsync`].
struct AsyncOnly;

impl Provider for AsyncOnly {
    fn prefix(&self) -> &[u8] {
        b"k8s:enc:test:v1:"
    }

    fn kind(&self) -> ProviderKind {
        ProviderKind::Custom
    }

    fn encrypt<'a>(
        &'a self,
        plaintext: &'a [u8],
        _: StorageKey<'a>,
    ) -> ProviderFuture<'a, Vec<u8>> {
        Box::pin(std::future::ready(Ok(plaintext.to_vec())))
    }

    fn decrypt<'a>(&'a self, stored: &'a [u8], _: StorageKey<'a>) -> ProviderFuture<'a, Decrypted> {
        Box::pin(std::future::ready(Ok(Decrypted {
            plaintext: stored.to_vec(),
            stale: false,
        })))
    }
}

fn named(name: &str, key: &SecretKey) -> NamedKey {
    NamedKey::new(name, key.clone())
}

#[test]
fn no_key_material_or_plaintext_in_any_output() {
    let mut keys: Vec<SecretKey> = ASCII_KEYS
        .iter()
        .map(|k| SecretKey::new(k.to_vec()))
        .collect();
    for encoded in BASE64_KEYS {
        keys.push(SecretKey::from_base64(encoded).expect("base64 key"));
    }
    let generated = SecretKey::generate(32).expect("generate");
    keys.push(generated.clone());
    let needles = Needles::new(&keys);
    // The check is live: the key's own renderings are caught.
    for leaky in [
        format!("x{:?}x", keys[2].expose()),
        format!("x{}x", &*keys[7].to_base64()),
        format!("{:x?}", keys[6].expose()),
        String::from_utf8_lossy(&ASCII_KEYS[4][3..12]).into_owned(),
        String::from_utf8_lossy(&PLAINTEXT[2..14]).into_owned(),
        keys[9].expose()[5..13]
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect(),
    ] {
        assert!(needles.find(&leaky).is_some(), "self test missed {leaky:?}");
    }

    let [k16, k24, k32, k16b, k32b, k31, b32, b16, b32b, gen32] = &keys[..] else {
        panic!("ten keys");
    };
    assert_eq!(
        [
            k16.len(),
            k24.len(),
            k32.len(),
            k16b.len(),
            k32b.len(),
            k31.len()
        ],
        [16, 24, 32, 16, 32, 31]
    );
    assert_eq!(
        [b32.len(), b16.len(), b32b.len(), gen32.len()],
        [32, 16, 32, 32]
    );

    let mut out = Outputs::default();

    // Key types themselves.
    for (i, key) in keys.iter().enumerate() {
        out.debug(&format!("SecretKey {i}"), key);
        out.debug(&format!("NamedKey {i}"), &named("name", key));
    }

    // Constructor errors, with the key material in the refused keys.
    let bad_lengths = [k31, k24, k16];
    for key in bad_lengths {
        out.result(
            "Secretbox::new bad length",
            &Secretbox::new(vec![named("sb", key)]),
        );
    }
    for key in [
        k31,
        &SecretKey::new(b"LeakCanaryKey31!abcdefghijklmnoPQ".to_vec()),
    ] {
        out.result(
            "AesGcm::new bad length",
            &AesGcm::new(vec![named("g", key)]),
        );
        out.result(
            "AesCbc::new bad length",
            &AesCbc::new(vec![named("c", key)]),
        );
    }
    out.result(
        "AesGcm::new second key bad",
        &AesGcm::new(vec![named("ok", k32), named("bad", k31)]),
    );
    out.result("AesGcm::new empty name", &AesGcm::new(vec![named("", k32)]));
    out.result("AesCbc::new empty name", &AesCbc::new(vec![named("", k16)]));
    out.result(
        "Secretbox::new empty name",
        &Secretbox::new(vec![named("", k32)]),
    );
    out.result("AesGcm::new no keys", &AesGcm::new(vec![]));
    out.result("Transformer::new empty", &Transformer::new(vec![]));
    // Invalid base64 that carries key material.
    for bad in [
        format!("{}!", BASE64_KEYS[0]),
        format!("{}=", &*k32.to_base64()),
        BASE64_KEYS[1].replace('+', "-"),
        String::from_utf8_lossy(ASCII_KEYS[2]).into_owned(),
    ] {
        match SecretKey::from_base64(&bad) {
            Ok(_) => panic!("{bad:?} decoded"),
            Err(e) => {
                out.0.push(("InvalidBase64 {}".to_owned(), e.to_string()));
                out.debug("InvalidBase64", &e);
            }
        }
    }

    // Providers over every key.
    let gcm = |keys: &[(&str, &SecretKey)]| -> Arc<dyn Provider> {
        Arc::new(AesGcm::new(keys.iter().map(|(n, k)| named(n, k)).collect()).expect("aesgcm"))
    };
    let cbc = |keys: &[(&str, &SecretKey)]| -> Arc<dyn Provider> {
        Arc::new(AesCbc::new(keys.iter().map(|(n, k)| named(n, k)).collect()).expect("aescbc"))
    };
    let sb = |keys: &[(&str, &SecretKey)]| -> Arc<dyn Provider> {
        Arc::new(
            Secretbox::new(keys.iter().map(|(n, k)| named(n, k)).collect()).expect("secretbox"),
        )
    };
    let gcm_a =
        AesGcm::new(vec![named("g1", k32), named("g2", k16), named("g3", b32)]).expect("aesgcm");
    let cbc_a =
        AesCbc::new(vec![named("c1", k24), named("c2", k32b), named("c3", b16)]).expect("aescbc");
    let sb_a = Secretbox::new(vec![
        named("s1", k32b),
        named("s2", b32b),
        named("s3", gen32),
    ])
    .expect("secretbox");
    out.debug("AesGcm", &gcm_a);
    out.debug("AesCbc", &cbc_a);
    out.debug("Secretbox", &sb_a);
    out.debug("Identity", &Identity::new());
    for (i, key) in keys.iter().enumerate() {
        if let Ok(p) = AesGcm::new(vec![named("one", key)]) {
            out.debug(&format!("AesGcm over key {i}"), &p);
        }
        if let Ok(p) = AesCbc::new(vec![named("one", key)]) {
            out.debug(&format!("AesCbc over key {i}"), &p);
        }
        if let Ok(p) = Secretbox::new(vec![named("one", key)]) {
            out.debug(&format!("Secretbox over key {i}"), &p);
        }
    }

    let writers: Vec<(&str, &SecretKey, Arc<dyn Provider>)> = vec![
        ("aesgcm k32", k32, gcm(&[("w", k32)])),
        ("aesgcm k16", k16b, gcm(&[("w", k16b)])),
        ("aesgcm k24", k24, gcm(&[("w", k24)])),
        ("aesgcm b32", b32, gcm(&[("w", b32)])),
        ("aescbc k24", k24, cbc(&[("w", k24)])),
        ("aescbc b16", b16, cbc(&[("w", b16)])),
        ("aescbc k32", k32b, cbc(&[("w", k32b)])),
        ("secretbox k32", k32, sb(&[("w", k32)])),
        ("secretbox b32", b32b, sb(&[("w", b32b)])),
        ("secretbox gen", gen32, sb(&[("w", gen32)])),
    ];
    let others: [&SecretKey; 3] = [k32b, b32, gen32];
    for (name, writer_key, writer) in &writers {
        let blocking = writer.as_blocking().expect("blocking");
        let stored = blocking
            .encrypt_blocking(PLAINTEXT, SK.into())
            .expect("encrypt");
        let kind = writer.kind();
        let build = |keys: &[(&str, &SecretKey)]| match kind {
            ProviderKind::AesGcm => gcm(keys),
            ProviderKind::AesCbc => cbc(keys),
            _ => sb(keys),
        };

        // A successful read: Decrypted holds the plaintext.
        let read = blocking.decrypt_blocking(&stored, SK.into());
        assert_eq!(read.as_ref().expect("decrypt").plaintext, PLAINTEXT);
        out.result(&format!("{name} read"), &read);

        // Wrong keys under the right name, alone and several (aggregate).
        for other in others {
            if other == *writer_key {
                continue;
            }
            let wrong = build(&[("w", other)]);
            let r = wrong
                .as_blocking()
                .expect("blocking")
                .decrypt_blocking(&stored, SK.into());
            out.result(&format!("{name} wrong key"), &r);
        }
        let many_wrong = build(&[("w", k32b), ("w", b32), ("w", gen32), ("x", k32)]);
        out.result(
            &format!("{name} several wrong keys"),
            &many_wrong
                .as_blocking()
                .expect("blocking")
                .decrypt_blocking(&stored, SK.into()),
        );
        // Wrong storage key, unknown key name, tampering, truncation.
        out.result(
            &format!("{name} other storage key"),
            &blocking.decrypt_blocking(&stored, "/registry/secrets/x/y".into()),
        );
        let unknown = build(&[("nope", k32b)]);
        out.result(
            &format!("{name} unknown key"),
            &unknown
                .as_blocking()
                .expect("blocking")
                .decrypt_blocking(&stored, SK.into()),
        );
        let prefix_len = writer.prefix().len() + 2;
        for cut in [
            prefix_len,
            prefix_len + 5,
            prefix_len + 15,
            prefix_len + 16,
            prefix_len + 39,
            stored.len() - 1,
        ] {
            let cut = cut.min(stored.len());
            out.result(
                &format!("{name} truncated to {cut}"),
                &blocking.decrypt_blocking(&stored[..cut], SK.into()),
            );
        }
        for i in [prefix_len, stored.len() / 2, stored.len() - 1] {
            let mut tampered = stored.clone();
            tampered[i] ^= 0x80;
            out.result(
                &format!("{name} tampered at {i}"),
                &blocking.decrypt_blocking(&tampered, SK.into()),
            );
        }

        // Transformers: aggregates, identity, no matching prefix, async-only.
        let t = Transformer::new(vec![
            build(&[("a", k32b)]),
            build(&[("w", gen32)]),
            Arc::new(Identity::new()),
            writer.clone(),
        ])
        .expect("transformer");
        out.debug(&format!("{name} transformer"), &t);
        out.result(
            &format!("{name} transformer read"),
            &t.decrypt_blocking(&stored, SK.into()),
        );
        let failing = Transformer::new(vec![
            build(&[("w", k32b)]),
            build(&[("w", b32)]),
            build(&[("other", gen32)]),
            Arc::new(Identity::new()),
        ])
        .expect("transformer");
        out.result(
            &format!("{name} transformer aggregate"),
            &failing.decrypt_blocking(&stored, SK.into()),
        );
        let async_only =
            Transformer::new(vec![Arc::new(AsyncOnly), writer.clone()]).expect("transformer");
        out.result(
            &format!("{name} requires async"),
            &async_only.encrypt_blocking(PLAINTEXT, SK.into()),
        );
        let no_match = Transformer::new(vec![build(&[("w", k32)])]).expect("transformer");
        out.result(
            &format!("{name} no matching prefix"),
            &no_match.decrypt_blocking(PLAINTEXT, SK.into()),
        );
        out.result(
            &format!("{name} identity only"),
            &Transformer::identity().decrypt_blocking(&stored, SK.into()),
        );
        out.result(
            &format!("{name} identity provider"),
            &Identity::new().decrypt_blocking(&stored, SK.into()),
        );
    }

    // Configuration files: secrets of the wrong length, not base64, of the
    // wrong type, in unknown fields, or cut off by a syntax error.
    let b64 = |key: &SecretKey| key.to_base64().as_str().to_owned();
    let (good, short, long) = (b64(k32), b64(k31), b64(b16));
    let yaml = |providers: &str| {
        format!(
            "kind: EncryptionConfiguration\n\
             apiVersion: apiserver.config.k8s.io/v1\n\
             resources:\n  - resources: [secrets]\n    providers:\n{providers}"
        )
    };
    let keys_of = |provider: &str, keys: &[(&str, &str)]| {
        let mut out = format!("      - {provider}:\n          keys:\n");
        for (name, secret) in keys {
            out.push_str(&format!(
                "            - name: {name}\n              secret: {secret}\n"
            ));
        }
        out
    };
    let mut configs: Vec<(String, String)> = Vec::new();
    for provider in ["aescbc", "aesgcm", "secretbox"] {
        for (what, secret) in [
            ("valid", good.clone()),
            ("31 bytes", short.clone()),
            ("16 bytes", long.clone()),
            ("not base64", format!("{good}!")),
            ("url-safe", b64(b32).replace('+', "-").replace('/', "_")),
            ("unpadded", good.trim_end_matches('=').to_owned()),
            (
                "raw ascii",
                String::from_utf8_lossy(ASCII_KEYS[2]).into_owned(),
            ),
            (
                "quoted raw",
                format!("\"{}\"", String::from_utf8_lossy(ASCII_KEYS[4])),
            ),
            ("list", format!("[{good}]")),
            ("map", format!("{{a: {good}}}")),
            ("unterminated", format!("\"{good}")),
            ("tab", format!("{good}\t{good}")),
        ] {
            let body = keys_of(provider, &[("k1", &secret), ("k2", &b64(b32))]);
            configs.push((format!("{provider} {what}"), yaml(&body)));
        }
        // Duplicate names, empty names, an unknown field holding a secret.
        configs.push((
            format!("{provider} duplicate"),
            yaml(&keys_of(provider, &[("k1", &good), ("k1", &good)])),
        ));
        configs.push((
            format!("{provider} empty name"),
            yaml(&keys_of(provider, &[("\"\"", &good)])),
        ));
        configs.push((
            format!("{provider} unknown field"),
            yaml(&format!(
                "      - {provider}:\n          keys:\n            - name: k1\n              \
                 secret: {good}\n              secrett: {good}\n"
            )),
        ));
        configs.push((
            format!("{provider} duplicate field"),
            yaml(&format!(
                "      - {provider}:\n          keys:\n            - name: k1\n              \
                 secret: {good}\n              secret: {long}\n"
            )),
        ));
        // The same, as JSON.
        for secret in [
            format!("\"{good}\""),
            format!("\"{short}\""),
            format!("\"{good}!\""),
            format!("[\"{good}\"]"),
            format!("\"{good}"),
        ] {
            configs.push((
                format!("{provider} json {secret}"),
                format!(
                    r#"{{"kind":"EncryptionConfiguration","apiVersion":"apiserver.config.k8s.io/v1","resources":[{{"resources":["secrets"],"providers":[{{"{provider}":{{"keys":[{{"name":"k1","secret":{secret}}}]}}}}]}}]}}"#
                ),
            ));
        }
    }
    // A second rule and an identity-first list, to build several transformers.
    configs.push((
        "two rules".to_owned(),
        yaml(&format!(
            "{}      - identity: {{}}\n  - resources: [configmaps]\n    providers:\n{}",
            keys_of("aesgcm", &[("g", &good)]),
            keys_of("secretbox", &[("s", &b64(b32b))]),
        )),
    ));
    let mut built = 0;
    for (what, text) in &configs {
        for (how, parsed) in [
            (
                "from_slice",
                EncryptionConfiguration::from_slice(text.as_bytes()),
            ),
            (
                "from_yaml",
                EncryptionConfiguration::from_yaml(text.as_bytes()),
            ),
        ] {
            let what = format!("config {what} {how}");
            match parsed {
                Err(e) => {
                    out.debug(&what, &e);
                    out.error(&what, &e);
                }
                Ok(config) => {
                    out.debug(&format!("{what} EncryptionConfiguration"), &config);
                    if let Err(e) = config.validate() {
                        out.debug(&format!("{what} validate"), &e);
                        out.error(&format!("{what} validate"), &e);
                    }
                    match config.build() {
                        Err(e) => {
                            out.debug(&format!("{what} build"), &e);
                            out.error(&format!("{what} build"), &e);
                            let e = Error::from(e);
                            out.error(&format!("{what} build as Error"), &e);
                        }
                        Ok(transformers) => {
                            built += 1;
                            out.debug(&format!("{what} ResourceTransformers"), &transformers);
                            let secrets = transformers.for_resource("secrets");
                            out.debug(&format!("{what} Transformer"), secrets);
                            let stored = secrets
                                .encrypt_blocking(PLAINTEXT, SK.into())
                                .expect("encrypt");
                            out.result(
                                &format!("{what} read elsewhere"),
                                &transformers
                                    .for_resource("pods")
                                    .decrypt_blocking(&stored, SK.into()),
                            );
                        }
                    }
                }
            }
        }
    }
    assert!(built >= 4, "only {built} configurations built");

    // Every error variant reachable from the public API was produced.
    let all: String = out
        .0
        .iter()
        .map(|(_, s)| s.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    for variant in [
        "InvalidKey",
        "NoKeys",
        "NoProviders",
        "Decrypt",
        "Malformed",
        "NoMatchingKey",
        "NoMatchingPrefix",
        "EncryptedData",
        "Aggregate",
        "RequiresAsync",
        "Decrypted",
        "Config",
    ] {
        assert!(all.contains(variant), "no {variant} was produced");
    }

    for (what, output) in &out.0 {
        if let Some((kind, needle)) = needles.find(output) {
            panic!(
                "{what} leaks {kind} ({} bytes matched) in {output:?}",
                needle.len()
            );
        }
    }
    assert!(out.errors() > 150, "only {} outputs checked", out.errors());
}

/// A decoded Secret's `Debug` (the object, and the `Decoded` around it)
/// shows its shape, never its data: neither the base64 of a value nor,
/// decoded with `decode_data`, the value itself.
#[cfg(feature = "objects")]
#[test]
fn decoded_objects_show_their_shape_not_their_data() {
    use k8s_envelope::object::{decode, DecodeOptions, Decoded};

    let data = base64::engine::general_purpose::STANDARD.encode(PLAINTEXT);
    let secret = format!(
        r#"{{"kind":"Secret","apiVersion":"v1","metadata":{{"name":"db","namespace":"prod"}},"data":{{"password":"{data}"}},"stringData":{{"token":"{}"}}}}"#,
        std::str::from_utf8(PLAINTEXT).expect("ASCII")
    );
    for options in [
        DecodeOptions::default(),
        DecodeOptions::default().with_decoded_data(),
    ] {
        let decoded = decode(secret.as_bytes(), &options).expect("decodes");
        let Decoded::Object(object) = &decoded else {
            panic!("not an object");
        };
        for shown in [
            format!("{decoded:?}"),
            format!("{decoded:#?}"),
            format!("{object:?}"),
        ] {
            assert!(!shown.contains(&data), "{shown}");
            assert!(
                !shown.contains(std::str::from_utf8(PLAINTEXT).expect("ASCII")),
                "{shown}"
            );
            for expected in [
                "Secret",
                "\"db\"",
                "\"prod\"",
                "\"password\"",
                "\"token\"",
                "bytes",
            ] {
                assert!(shown.contains(expected), "{expected} in {shown}");
            }
        }
    }
}
