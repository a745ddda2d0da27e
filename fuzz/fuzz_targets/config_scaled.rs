//! EncryptionConfiguration validation and build at scale: the input blown up
//! to thousands of resources, so that super-linear work shows as a hang.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    k8s_envelope_test_support::checks::check_config_scaled(data).unwrap_or_else(|e| panic!("{e}"));
});
