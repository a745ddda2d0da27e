//! Write-then-read of any plaintext and storage key through every static-key
//! provider.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    k8s_envelope_test_support::checks::check_static_round_trip(data)
        .unwrap_or_else(|e| panic!("{e}"));
});
