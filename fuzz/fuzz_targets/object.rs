//! The decoder of stored Kubernetes objects (protobuf, JSON, CBOR sniffing)
//! and its JSON and YAML writers.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    k8s_envelope_test_support::checks::check_object(data).unwrap_or_else(|e| panic!("{e}"));
});
