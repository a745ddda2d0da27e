//! EncryptionConfiguration parsing (YAML and JSON), validation and build.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    k8s_envelope_test_support::checks::check_config(data).unwrap_or_else(|e| panic!("{e}"));
});
