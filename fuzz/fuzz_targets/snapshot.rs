//! The etcd snapshot reader (bbolt pages, the key bucket's revisions), then
//! the store's listing and an offline re-keying of what it read.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    k8s_envelope_test_support::checks::check_snapshot(data).unwrap_or_else(|e| panic!("{e}"));
});
