//! Hot reload: a changed file is validated and built before it is swapped in,
//! an invalid file keeps the old set serving, the old set is dropped after
//! the grace period, and no request fails while configs are rotated under
//! concurrent reads and writes.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use k8s_envelope::reload::{ReloadOptions, ReloadOutcome, ReloadingTransformers};

const K1: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const K2: &str = "8PHy8/T19vf4+fr7/P3+/wABAgMEBQYHCAkKCwwNDg8=";

fn config(keys: &[(&str, &str)]) -> String {
    let mut yaml = String::from(
        "kind: EncryptionConfiguration\napiVersion: apiserver.config.k8s.io/v1\nresources:\n  - resources: [secrets]\n    providers:\n      - aesgcm:\n          keys:\n",
    );
    for (name, secret) in keys {
        yaml.push_str(&format!(
            "            - name: {name}\n              secret: {secret}\n"
        ));
    }
    yaml
}

struct Dir(PathBuf);

impl Dir {
    fn new(label: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "k8s-envelope-reload-{}-{label}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }

    fn config_path(&self) -> PathBuf {
        self.0.join("config.yaml")
    }

    /// Replaces the config file atomically, as a config management tool would.
    fn write(&self, contents: &str) {
        let staged = self.0.join("config.yaml.new");
        std::fs::write(&staged, contents).expect("write");
        std::fs::rename(staged, self.config_path()).expect("rename");
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn options(grace: Duration) -> ReloadOptions {
    ReloadOptions::default().with_grace_period(grace)
}

#[tokio::test]
async fn an_unchanged_file_is_not_rebuilt() {
    let dir = Dir::new("unchanged");
    dir.write(&config(&[("k1", K1)]));
    let reloading = ReloadingTransformers::open(dir.config_path(), options(Duration::ZERO))
        .await
        .expect("open");
    let before = reloading.current();
    assert_eq!(
        reloading.check().await.expect("check"),
        ReloadOutcome::Unchanged
    );
    assert!(Arc::ptr_eq(&before, &reloading.current()));
    // Rewriting the same bytes is no change either (the hash decides).
    dir.write(&config(&[("k1", K1)]));
    assert_eq!(
        reloading.check().await.expect("check"),
        ReloadOutcome::Unchanged
    );
}

#[tokio::test]
async fn an_invalid_file_keeps_the_old_set_serving_and_reports_why() {
    let dir = Dir::new("invalid");
    dir.write(&config(&[("k1", K1)]));
    let reloading = ReloadingTransformers::open(dir.config_path(), options(Duration::ZERO))
        .await
        .expect("open");
    let hash = reloading.current().hash().to_owned();
    let key = "/registry/secrets/ns/a".into();
    let stored = reloading
        .current()
        .transformers()
        .for_resource("secrets")
        .encrypt(b"v", key)
        .await
        .expect("encrypt");

    dir.write(&config(&[("k1", "c2hvcnQ=")])); // a 5-byte key
    let error = reloading
        .check()
        .await
        .expect_err("invalid file")
        .to_string();
    assert!(
        error.contains("secret is not of the expected length"),
        "{error}"
    );
    assert!(
        !error.contains("c2hvcnQ="),
        "the secret was printed: {error}"
    );
    assert_eq!(
        reloading.last_error().map(|e| e.to_string()).as_deref(),
        Some(error.as_str())
    );
    assert_eq!(reloading.current().hash(), hash);
    let read = reloading
        .current()
        .transformers()
        .for_resource("secrets")
        .decrypt(&stored, key)
        .await
        .expect("the old set still serves");
    assert_eq!(read.plaintext, b"v");

    dir.write("not: [valid");
    assert!(reloading.check().await.is_err());
    assert_eq!(reloading.current().hash(), hash);

    dir.write(&config(&[("k2", K2), ("k1", K1)]));
    assert!(matches!(
        reloading.check().await,
        Ok(ReloadOutcome::Reloaded(_))
    ));
    assert!(reloading.last_error().is_none());
}

#[tokio::test]
async fn the_old_set_is_dropped_after_the_grace_period() {
    let dir = Dir::new("grace");
    dir.write(&config(&[("k1", K1)]));
    let reloading =
        ReloadingTransformers::open(dir.config_path(), options(Duration::from_millis(200)))
            .await
            .expect("open");
    let old = Arc::downgrade(&reloading.current());
    dir.write(&config(&[("k2", K2), ("k1", K1)]));
    reloading.check().await.expect("reload");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(old.upgrade().is_some(), "kept during the grace period");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(old.upgrade().is_none(), "dropped after the grace period");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_request_fails_while_keys_are_rotated_under_load() {
    let dir = Dir::new("load");
    dir.write(&config(&[("k1", K1)]));
    let reloading =
        ReloadingTransformers::open(dir.config_path(), options(Duration::from_millis(100)))
            .await
            .expect("open");
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for worker in 0..4 {
        let (reloading, stop, done) = (reloading.clone(), stop.clone(), done.clone());
        workers.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let key = format!("/registry/secrets/ns/{worker}-{i}");
                let plaintext = format!("value {worker} {i}");
                // Write with the set current now, read with whatever is
                // current a moment later: across reloads both must work.
                let written = reloading
                    .current()
                    .transformers()
                    .for_resource("secrets")
                    .encrypt(plaintext.as_bytes(), key.as_str().into())
                    .await;
                tokio::task::yield_now().await;
                match written {
                    Err(e) => failures.push(format!("write: {e}")),
                    Ok(stored) => match reloading
                        .current()
                        .transformers()
                        .for_resource("secrets")
                        .decrypt(&stored, key.as_str().into())
                        .await
                    {
                        Ok(read) if read.plaintext == plaintext.as_bytes() => {}
                        Ok(_) => failures.push("read a different value".to_owned()),
                        Err(e) => failures.push(format!("read: {e}")),
                    },
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
            failures
        }));
    }
    // The safe rotation order: add k2 as a reader, promote it, retire k1.
    let steps = [
        config(&[("k1", K1), ("k2", K2)]),
        config(&[("k2", K2), ("k1", K1)]),
        config(&[("k2", K2)]),
    ];
    for step in &steps {
        tokio::time::sleep(Duration::from_millis(150)).await;
        dir.write(step);
        let outcome = reloading.check().await.expect("each step is valid");
        assert!(matches!(outcome, ReloadOutcome::Reloaded(_)));
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    stop.store(true, Ordering::Relaxed);
    let mut failures = Vec::new();
    for worker in workers {
        failures.extend(worker.await.expect("worker"));
    }
    assert!(
        done.load(Ordering::Relaxed) > 100,
        "the workers made progress"
    );
    assert!(
        failures.is_empty(),
        "{} failures, first: {:?}",
        failures.len(),
        failures.first()
    );
    let stored = reloading
        .current()
        .transformers()
        .for_resource("secrets")
        .encrypt(b"after", "/k".into())
        .await
        .expect("encrypt");
    assert!(stored.starts_with(b"k8s:enc:aesgcm:v1:k2:"));
}
