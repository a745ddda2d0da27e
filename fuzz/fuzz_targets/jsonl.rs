//! The CLI's JSON Lines protocol, both directions, over a configuration with
//! every provider.
#![no_main]

use std::sync::LazyLock;

use k8s_envelope_test_support::checks::Harness;

static HARNESS: LazyLock<Harness> = LazyLock::new(|| {
    Harness::from_config(include_bytes!("../../tests/data/fuzz/every-provider.yaml"))
        .unwrap_or_else(|e| panic!("the fuzz configuration: {e}"))
});

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    HARNESS.check_jsonl(data).unwrap_or_else(|e| panic!("{e}"));
});
