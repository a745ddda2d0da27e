//! No `tracing` event at any level holds key material or plaintext. In its
//! own test binary: `tracing` caches per-callsite interest process-wide, so a
//! test without a subscriber running on another thread could hide events
//! from this one.

use std::io::Write;
use std::sync::{Arc, Mutex};

use k8s_envelope::kms::{KmsV2Options, KmsV2Provider};
use k8s_envelope::observe::Observer;
use k8s_envelope::Transformer;

#[path = "support/observe.rs"]
mod observe_support;
use observe_support::*;

/// A `tracing` writer that keeps everything in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn no_tracing_event_at_any_level_holds_key_material_or_plaintext() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let transformers = transformers();
        exercise(&Observer::new(), &transformers);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let service = FakeKms::with_key_id("1");
            let provider = KmsV2Provider::new("vault", service.clone(), KmsV2Options::default())
                .expect("provider");
            provider.refresh().await.expect("refresh");
            service.set_key_id("2");
            provider.refresh().await.expect("rotation");
            let transformer = Transformer::new(vec![Arc::new(provider)]).expect("transformer");
            let stored = transformer
                .encrypt(PLAINTEXT, "/k".into())
                .await
                .expect("encrypt");
            transformer
                .decrypt(&stored, "/k".into())
                .await
                .expect("decrypt");
            assert!(transformer
                .decrypt(b"k8s:enc:kms:v2:vault:\x0a\x02xx", "/k".into())
                .await
                .is_err());
        });
    });
    let text = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8");
    assert!(
        text.contains("transformed"),
        "events were captured:\n{text}"
    );
    assert!(text.contains("transform failed"), "{text}");
    assert!(text.contains("kms v2: new write key"), "{text}");
    assert!(text.contains("kms plugin call"), "{text}");
    assert_clean(&text);
}
