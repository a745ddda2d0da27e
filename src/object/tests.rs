//! The decoder against Kubernetes' own fixtures of every built-in kind
//! (`../shared/k8s-api-testdata/HEAD`: each object as the apiserver stores
//! it, `.pb`, and as it serves it, `.json`): Secret and ConfigMap exactly,
//! the metadata of every other kind.

#![allow(
    clippy::unwrap_used,
    reason = "a test's panic, with the line it names, is its failure report"
)]

use std::path::PathBuf;

use super::{decode, DecodeOptions, Decoded, Encoding, UNDECODED_FIELD};

/// Kubernetes' fixtures beside the repository: a test that needs them
/// fails without them, it never passes without asserting.
fn testdata() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/k8s-api-testdata/HEAD");
    assert!(
        dir.is_dir(),
        "{} is missing: Kubernetes' API fixtures, beside the repository (shared/k8s-api-testdata)",
        dir.display()
    );
    dir
}

fn object(bytes: &[u8]) -> super::Object {
    match decode(bytes, &DecodeOptions::default()) {
        Ok(Decoded::Object(object)) => object,
        other => panic!("not decoded: {other:?}"),
    }
}

#[test]
fn secrets_and_config_maps_decode_to_exactly_the_served_json() {
    let dir = testdata();
    for kind in ["Secret", "ConfigMap"] {
        let pb = std::fs::read(dir.join(format!("core.v1.{kind}.pb"))).unwrap();
        let json = std::fs::read_to_string(dir.join(format!("core.v1.{kind}.json"))).unwrap();
        let yaml = std::fs::read_to_string(dir.join(format!("core.v1.{kind}.yaml"))).unwrap();
        let object = object(&pb);
        assert_eq!(object.kind(), kind);
        assert_eq!(object.encoding(), Encoding::Protobuf);
        assert!(object.is_complete());
        assert_eq!(object.to_json(), json, "{kind}");
        assert_eq!(object.to_yaml(), yaml, "{kind}");
        assert_eq!(object.name(), (Some("nameValue"), Some("namespaceValue")));
    }
}

#[test]
fn every_kind_decodes_to_its_type_and_full_metadata() {
    let dir = testdata();
    let mut checked = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for pb in entries
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "pb"))
    {
        let name = pb.file_name().unwrap().to_string_lossy().into_owned();
        let served: serde_json::Value =
            serde_json::from_slice(&std::fs::read(pb.with_extension("json")).unwrap()).unwrap();
        let object = match decode(&std::fs::read(pb).unwrap(), &DecodeOptions::default()) {
            Ok(Decoded::Object(object)) => object,
            other => panic!("{name}: not decoded: {other:?}"),
        };
        let decoded: serde_json::Value = serde_json::from_str(&object.to_json())
            .unwrap_or_else(|e| panic!("{name}: our JSON does not parse: {e}"));
        for field in ["kind", "apiVersion", "metadata"] {
            assert_eq!(decoded.get(field), served.get(field), "{name}: {field}");
        }
        if !object.is_complete() && served.as_object().is_some_and(|o| o.len() > 3) {
            assert!(
                decoded.get(UNDECODED_FIELD).is_some(),
                "{name}: the rest is kept"
            );
        }
        checked += 1;
    }
    assert_eq!(checked, 193);
}

#[test]
fn json_passes_through_cbor_is_recognised_and_other_bytes_are_not_objects() {
    let json =
        br#"{"kind":"Widget","apiVersion":"example.com/v1","metadata":{"name":"w"},"z":1,"a":2}"#;
    let object = object(json);
    assert_eq!(object.encoding(), Encoding::Json);
    assert_eq!(object.to_json_compact(), String::from_utf8_lossy(json));
    let cbor = [0xd9, 0xd9, 0xf7, 0xa1, 0x61, 0x61, 0x01];
    assert_eq!(decode(&cbor, &DecodeOptions::default()), Ok(Decoded::Cbor));
    for bytes in [
        &b"k8s:enc:aescbc:v1:key1:xxxx"[..],
        b"plain text",
        b"",
        b"\x00\x01",
    ] {
        assert_eq!(
            decode(bytes, &DecodeOptions::default()),
            Ok(Decoded::NotAnObject)
        );
    }
    for bad in [&b"k8s\0"[..], b"k8s\0\x0a\xff", b"{not json", b"{\"a\":"] {
        let e = decode(bad, &DecodeOptions::default()).unwrap_err();
        assert!(
            e.to_string().starts_with("not a valid Kubernetes object"),
            "{e}"
        );
    }
}

#[test]
fn secret_data_shows_as_text_when_asked_and_it_is_utf8() {
    let dir = testdata();
    let pb = std::fs::read(dir.join("core.v1.Secret.pb")).unwrap();
    let Ok(Decoded::Object(object)) = decode(&pb, &DecodeOptions::default().with_decoded_data())
    else {
        panic!("decoded");
    };
    // The fixture's value is the byte 0x02: UTF-8, so shown as text, under
    // stringData (where a write takes text), and gone from data.
    let json = object.to_json();
    assert!(
        json.contains("\"stringData\": {\n    \"dataKey\": \"\\u0002\""),
        "{json}"
    );
    assert!(!json.contains("\"data\""), "{json}");
}

/// Whether `decode` reads `bytes` as an object, the question
/// [`holds_object`](super::holds_object) answers without decoding.
fn decodes(bytes: &[u8]) -> bool {
    matches!(
        decode(bytes, &DecodeOptions::default()),
        Ok(Decoded::Object(_) | Decoded::Cbor)
    )
}

#[test]
fn the_check_accepts_exactly_what_the_decoder_accepts() {
    let dir = testdata();
    let mut fixtures: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pb" || e == "json"))
        .collect();
    fixtures.sort();
    for path in &fixtures {
        let bytes = std::fs::read(path).unwrap();
        assert!(super::holds_object(&bytes), "{}", path.display());
    }
    // The kinds the decoder reads whole, and one it reads only the
    // metadata of, cut short at every length and with each byte changed in
    // the ways that break a length, a varint, a wire type or JSON.
    let (mut accepted, mut refused) = (0, 0);
    let mut agree = |bytes: &[u8], what: &dyn Fn() -> String| {
        let decoded = decodes(bytes);
        assert_eq!(super::holds_object(bytes), decoded, "{}", what());
        if decoded {
            accepted += 1;
        } else {
            refused += 1;
        }
    };
    for name in [
        "core.v1.Secret.pb",
        "core.v1.ConfigMap.pb",
        "core.v1.Secret.json",
        "scheduling.k8s.io.v1.PriorityClass.pb",
        "core.v1.Status.pb",
    ] {
        let original = std::fs::read(dir.join(name)).unwrap();
        for len in 0..original.len() {
            agree(&original[..len], &|| format!("{name} cut at {len}"));
        }
        for at in 0..original.len() {
            for change in [0x00, 0x01, 0x07, 0x0a, 0x80, 0xff] {
                let mut bytes = original.clone();
                bytes[at] ^= change;
                agree(&bytes, &|| format!("{name} with byte {at} xor {change:#x}"));
            }
            for put in [b'"', b'{', b'}', b'9', b'e'] {
                let mut bytes = original.clone();
                bytes[at] = put;
                agree(&bytes, &|| format!("{name} with byte {at} set to {put:#x}"));
            }
        }
    }
    // JSON the tree refuses though it is well formed: a number out of
    // range; and fieldsV1 that is not JSON, deep in a Secret's metadata.
    agree(br#"{"a":1e400}"#, &|| "a number out of range".to_owned());
    agree(br#"{"a":[1,{"b":-0.0}],"c":null}"#, &|| {
        "nesting".to_owned()
    });
    let fields_v1 = [0x0a, 0x03, b'{', b'x', b'}'];
    let mut managed = vec![0x3a, fields_v1.len() as u8];
    managed.extend_from_slice(&fields_v1);
    let mut meta = vec![0x8a, 0x01, managed.len() as u8];
    meta.extend_from_slice(&managed);
    let mut secret = vec![0x0a, meta.len() as u8];
    secret.extend_from_slice(&meta);
    let mut stored = b"k8s\0\x0a\x0c\x0a\x02v1\x12\x06Secret\x12".to_vec();
    stored.push(secret.len() as u8);
    stored.extend_from_slice(&secret);
    agree(&stored, &|| "fieldsV1 that is not JSON".to_owned());
    assert!(!decodes(&stored), "the fieldsV1 case is refused");
    assert!(accepted > 1000 && refused > 1000, "{accepted} {refused}");
}
