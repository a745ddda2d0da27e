//! The KMS v1 envelope parser, then a read through a KMS v1 provider.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    k8s_envelope_test_support::checks::check_kms_v1(data).unwrap_or_else(|e| panic!("{e}"));
});
