//! The KMS v2 `EncryptedObject` decoder, against its own encoder and prost.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    k8s_envelope_test_support::checks::check_encrypted_object(data)
        .unwrap_or_else(|e| panic!("{e}"));
});
