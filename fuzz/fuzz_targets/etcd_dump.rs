//! The etcdctl JSON dump parser, then the store's listing, get and swap.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    k8s_envelope_test_support::checks::check_etcd_dump(data).unwrap_or_else(|e| panic!("{e}"));
});
