//! Rotation as pure functions on a configuration, the scan and the
//! re-encryption driver over the in-memory dump store (the etcd tests are in
//! cli/tests/integration/etcd.rs).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use k8s_envelope::config::EncryptionConfiguration;
use k8s_envelope::rotation::{self, Change, Member, ProviderId, RotationError, StepKind};
use k8s_envelope::store::{DumpStore, Entry, Page, Store, StoreFuture, Swap};
use k8s_envelope::walk::{self, Outcome, ReencryptOptions, ScanOptions, ValueOrigin};

const KEY1: &str = "c2VjcmV0IGlzIHNlY3VyZWMyVmpjbVYwSUdseklITT0=";

fn config(yaml: &str) -> EncryptionConfiguration {
    let config = EncryptionConfiguration::from_yaml(yaml.as_bytes()).expect("parses");
    config.validate().expect("valid");
    config
}

fn start() -> EncryptionConfiguration {
    config(&format!(
        "kind: EncryptionConfiguration
apiVersion: apiserver.config.k8s.io/v1
resources:
  - resources: [secrets]
    providers:
      - aesgcm:
          keys:
            - name: key1
              secret: {KEY1}
      - identity: {{}}
  - resources: [configmaps]
    providers:
      - identity: {{}}
"
    ))
}

fn key(name: &str) -> Member {
    Member::Key {
        provider: ProviderId::AesGcm,
        name: name.into(),
    }
}

fn round_trips(config: &EncryptionConfiguration) {
    let reparsed =
        EncryptionConfiguration::from_yaml(config.to_yaml().as_bytes()).expect("rendered parses");
    assert_eq!(&reparsed, config);
    reparsed.validate().expect("rendered validates");
}

#[test]
fn key_rotation_steps_in_order() {
    let c0 = start();
    let new = rotation::generate_key(&ProviderId::AesGcm, "key2").expect("key");
    let c1 = rotation::add_key(&c0, 0, new).expect("add");
    assert_eq!(
        rotation::describe_providers(&c1.resources[0]),
        "aesgcm[key1 (writes), key2], identity"
    );
    assert_eq!(
        rotation::writer(&c1, 0).expect("writer"),
        (ProviderId::AesGcm, Some("key1".into()))
    );
    let c2 = rotation::promote(&c1, 0, &key("key2")).expect("promote");
    assert_eq!(
        rotation::describe_providers(&c2.resources[0]),
        "aesgcm[key2 (writes), key1], identity"
    );
    let c3 = rotation::retire(&c2, 0, &key("key1")).expect("retire");
    assert_eq!(
        rotation::describe_providers(&c3.resources[0]),
        "aesgcm[key2 (writes)], identity"
    );
    // The other rule is untouched, and every result renders and re-parses.
    for c in [&c1, &c2, &c3] {
        assert_eq!(c.resources[1], c0.resources[1]);
        round_trips(c);
    }

    // Values written at each stage stay readable at the next.
    let storage_key = "/registry/secrets/ns/a".into();
    let v0 = c0
        .build()
        .expect("build")
        .for_resource("secrets")
        .encrypt_blocking(b"s", storage_key)
        .expect("encrypt");
    let t1 = c1.build().expect("build");
    assert!(
        !t1.for_resource("secrets")
            .decrypt_blocking(&v0, storage_key)
            .expect("reads")
            .stale
    );
    let t2 = c2.build().expect("build");
    let read = t2
        .for_resource("secrets")
        .decrypt_blocking(&v0, storage_key)
        .expect("reads");
    assert!(read.stale, "promoted: values of key1 are stale");
    let v2 = t2
        .for_resource("secrets")
        .encrypt_blocking(b"s", storage_key)
        .expect("encrypt");
    // A server still on c1 reads what a promoted server wrote (as stale:
    // key2 is not its writing key).
    let read = t1
        .for_resource("secrets")
        .decrypt_blocking(&v2, storage_key)
        .expect("c1 reads key2");
    assert_eq!(read.plaintext, b"s");
    let t3 = c3.build().expect("build");
    assert!(t3
        .for_resource("secrets")
        .decrypt_blocking(&v0, storage_key)
        .is_err());
    assert!(
        !t3.for_resource("secrets")
            .decrypt_blocking(&v2, storage_key)
            .expect("reads")
            .stale
    );
}

#[test]
fn steps_out_of_order_are_refused() {
    let c0 = start();
    // Promoting a key that is not there as a reader yet.
    assert!(matches!(
        rotation::promote(&c0, 0, &key("key2")),
        Err(RotationError::NotPresent { rule: 0, .. })
    ));
    // Retiring the writing key, or the writing provider.
    assert!(matches!(
        rotation::retire(&c0, 0, &key("key1")),
        Err(RotationError::WouldRetireWriter { .. })
    ));
    assert!(matches!(
        rotation::retire(&c0, 0, &Member::Provider(ProviderId::AesGcm)),
        Err(RotationError::WouldRetireWriter { .. })
    ));
    assert!(matches!(
        rotation::promote(&c0, 0, &key("key1")),
        Err(RotationError::AlreadyWriting { .. })
    ));
    let again = rotation::generate_key(&ProviderId::AesGcm, "key1").expect("key");
    assert!(matches!(
        rotation::add_key(&c0, 0, again),
        Err(RotationError::AlreadyPresent { .. })
    ));
    // identity writes for configmaps: keys go in a new provider.
    let k = rotation::generate_key(&ProviderId::AesGcm, "key1").expect("key");
    assert!(matches!(
        rotation::add_key(&c0, 1, k),
        Err(RotationError::WriterHasNoKeys { rule: 1, .. })
    ));
    assert!(matches!(
        rotation::add_provider(
            &c0,
            0,
            rotation::kms_v2_provider("kms", "unix:///tmp/x.sock")
        )
        .and_then(|c| rotation::promote(
            &c,
            0,
            &Member::Key {
                provider: ProviderId::Kms("kms".into()),
                name: "k".into()
            }
        )),
        Err(RotationError::NotPresent { .. })
    ));
    // The only key of a provider goes with its provider.
    let k = rotation::generate_key(&ProviderId::Secretbox, "sb1").expect("key");
    let with_sb = rotation::add_provider(
        &c0,
        0,
        rotation::static_provider(&ProviderId::Secretbox, k).expect("static"),
    )
    .expect("add");
    let sb1 = Member::Key {
        provider: ProviderId::Secretbox,
        name: "sb1".into(),
    };
    assert!(matches!(
        rotation::retire(&with_sb, 0, &sb1),
        Err(RotationError::LastKey { .. })
    ));
    // A key of a provider that does not write cannot be promoted on its own.
    assert!(matches!(
        rotation::promote(&with_sb, 0, &sb1),
        Err(RotationError::NotInWriter { .. })
    ));
    assert!(matches!(
        rotation::retire(&c0, 7, &sb1),
        Err(RotationError::NoSuchRule { rule: 7 })
    ));
    // A result that does not validate is refused (a 5-byte key).
    let short = k8s_envelope::config::Key {
        name: "short".into(),
        secret: "aGVsbG8=".into(),
    };
    assert!(matches!(
        rotation::add_key(&c0, 0, short),
        Err(RotationError::Invalid(_))
    ));
}

#[test]
fn provider_migration_plan_identity_to_kms_and_aesgcm() {
    let c0 = start();
    // configmaps: identity -> aesgcm, a new provider.
    let k = rotation::generate_key(&ProviderId::AesGcm, "key1").expect("key");
    let plan = rotation::plan(
        &c0,
        1,
        Change::Provider(rotation::static_provider(&ProviderId::AesGcm, k).expect("static")),
    )
    .expect("plan");
    assert_eq!(plan.old, Member::Provider(ProviderId::Identity));
    assert_eq!(plan.new, Member::Provider(ProviderId::AesGcm));
    let kinds: Vec<StepKind> = plan.steps.iter().map(|s| s.kind).collect();
    assert_eq!(
        kinds,
        [
            StepKind::Add,
            StepKind::Promote,
            StepKind::Reencrypt,
            StepKind::Retire
        ]
    );
    let last = plan.steps[3].config.as_ref().expect("config");
    assert_eq!(
        rotation::describe_providers(&last.resources[1]),
        "aesgcm[key1 (writes)]"
    );
    assert!(plan.steps[2].config.is_none());
    let text = plan.to_string();
    assert!(
        text.contains("1. add:") && text.contains("4. retire:"),
        "{text}"
    );
    assert!(!text.contains(KEY1));

    // secrets: aesgcm -> KMS v2.
    let plan = rotation::plan(
        &c0,
        0,
        Change::Provider(rotation::kms_v2_provider("vault", "unix:///run/kms.sock")),
    )
    .expect("plan");
    let last = plan.steps[3].config.as_ref().expect("config");
    assert_eq!(
        rotation::describe_providers(&last.resources[0]),
        "kms:vault (writes), identity"
    );
    for step in &plan.steps {
        if let Some(c) = &step.config {
            round_trips(c);
        }
    }
}

#[test]
fn rules_by_resource_like_the_apiserver() {
    let c = config(
        "kind: EncryptionConfiguration
apiVersion: apiserver.config.k8s.io/v1
resources:
  - resources: [secrets]
    providers: [{identity: {}}]
  - resources: ['*.apps']
    providers: [{identity: {}}]
  - resources: ['*.']
    providers: [{identity: {}}]
  - resources: ['*.*']
    providers: [{identity: {}}]
",
    );
    assert_eq!(rotation::rule_for_resource(&c, "secrets"), Some(0));
    assert_eq!(rotation::rule_for_resource(&c, "deployments.apps"), Some(1));
    assert_eq!(rotation::rule_for_resource(&c, "configmaps"), Some(2));
    assert_eq!(rotation::rule_for_resource(&c, "foos.example.com"), Some(3));
    assert_eq!(rotation::rule_for_resource(&start(), "pods"), None);
    assert_eq!(rotation::next_key_name(&[]), "key1");
}

// --- re-encryption over a dump ---------------------------------------------

struct Fixture {
    dump: Arc<DumpStore>,
    old: EncryptionConfiguration,
    new: EncryptionConfiguration,
}

/// 40 secrets under key1, 5 configmaps in plaintext, keys outside the
/// prefix, and one secret no provider can read.
fn fixture() -> Fixture {
    let old = start();
    let k2 = rotation::generate_key(&ProviderId::AesGcm, "key2").expect("key");
    let plan = rotation::plan(&old, 0, Change::Key(k2)).expect("plan");
    let new = plan.steps[1].config.clone().expect("promoted");
    let t = old.build().expect("build");
    let dump = Arc::new(DumpStore::new("test"));
    for i in 0..40 {
        let k = format!("/registry/secrets/ns/s{i:02}");
        let v = t
            .for_resource("secrets")
            .encrypt_blocking(format!("secret {i}").as_bytes(), k.as_str().into())
            .expect("encrypt");
        dump.put(k.as_bytes(), &v);
    }
    for i in 0..5 {
        dump.put(
            format!("/registry/configmaps/ns/c{i}").as_bytes(),
            b"{\"plain\":true}",
        );
    }
    dump.put(
        b"/registry/secretsX/ns/outside",
        &t.for_resource("secrets")
            .encrypt_blocking(b"x", "/registry/secretsX/ns/outside".into())
            .expect("encrypt"),
    );
    dump.put(
        b"/registry/secrets/ns/zz-unreadable",
        b"k8s:enc:aesgcm:v1:lost:0123456789012345678901234567890123456789",
    );
    Fixture { dump, old, new }
}

use k8s_envelope_test_support::rt;

#[test]
fn scan_counts_by_resource_origin_and_state() {
    let f = fixture();
    let report = rt()
        .block_on(walk::scan(
            f.dump.clone(),
            Arc::new(f.new.build().expect("build")),
            ScanOptions::new("/registry/"),
        ))
        .expect("scan");
    assert_eq!(report.total, 47);
    assert_eq!(report.count(Outcome::Stale), 40, "{report}");
    // The key outside /registry/secrets/ is under /registry/, but "secretsX"
    // is no resource this crate knows.
    assert_eq!(report.count(Outcome::Unmapped), 1);
    assert_eq!(report.count(Outcome::Unreadable), 1);
    assert_eq!(report.count(Outcome::Current), 5);
    let key1 = key("key1");
    assert_eq!(report.written_by(&f.new, 0, &key1), 40);
    assert_eq!(report.count_where(|r| r.origin == ValueOrigin::Identity), 5);
    assert_eq!(report.failures.len(), 2);
    assert_eq!(report.failures[0].key, "/registry/secrets/ns/zz-unreadable");
    let text = report.to_string();
    assert!(
        text.contains("secrets     aesgcm:key1  stale          40"),
        "{text}"
    );
    assert!(
        text.contains(
            "total: 47 values: 5 current, 40 stale, 1 unreadable, 1 of an unknown resource"
        ),
        "{text}"
    );
}

#[test]
fn reencrypt_rewrites_stale_values_only_inside_the_prefix() {
    let f = fixture();
    let before = f.dump.entries();
    let transformers = Arc::new(f.new.build().expect("build"));

    // A dry run changes nothing.
    let mut options = ReencryptOptions::new("/registry/secrets/");
    options.dry_run = true;
    let dry = rt()
        .block_on(walk::reencrypt(
            f.dump.clone(),
            transformers.clone(),
            options,
            &mut (),
        ))
        .expect("dry run");
    assert_eq!(
        (
            dry.totals.read,
            dry.totals.stale,
            dry.totals.rewritten,
            dry.totals.failed
        ),
        (41, 40, 0, 1)
    );
    assert_eq!(f.dump.entries(), before);

    let mut options = ReencryptOptions::new("/registry/secrets/");
    options.concurrency = 8;
    options.page_size = 7;
    let report = rt()
        .block_on(walk::reencrypt(
            f.dump.clone(),
            transformers.clone(),
            options,
            &mut (),
        ))
        .expect("run");
    assert_eq!(report.totals.read, 41);
    assert_eq!(report.totals.rewritten, 40);
    assert_eq!(report.totals.failed, 1);
    assert_eq!(report.failures[0].key, "/registry/secrets/ns/zz-unreadable");
    assert_eq!(
        report.last_key.as_deref(),
        Some(&b"/registry/secrets/ns/zz-unreadable"[..])
    );

    let t = f.new.build().expect("build");
    for (old, now) in before.iter().zip(f.dump.entries()) {
        assert_eq!(old.key, now.key);
        let k = String::from_utf8(now.key.clone()).expect("utf-8");
        if k.starts_with("/registry/secrets/ns/s") {
            assert!(now.value.starts_with(b"k8s:enc:aesgcm:v1:key2:"), "{k}");
            let read = t
                .for_resource("secrets")
                .decrypt_blocking(&now.value, k.as_str().into())
                .expect("reads");
            assert!(!read.stale);
            assert_eq!(
                read.plaintext,
                format!(
                    "secret {}",
                    k[k.len() - 2..]
                        .trim_start_matches('0')
                        .parse::<u32>()
                        .unwrap_or(0)
                )
                .into_bytes()
            );
        } else {
            // Outside the prefix, or unreadable: byte for byte as before.
            assert_eq!(old, &now, "{k}");
        }
    }

    // A second run finds everything current.
    let again = rt()
        .block_on(walk::reencrypt(
            f.dump.clone(),
            transformers,
            ReencryptOptions::new("/registry/secrets/"),
            &mut (),
        ))
        .expect("run");
    assert_eq!(
        (
            again.totals.already_current,
            again.totals.rewritten,
            again.totals.failed
        ),
        (40, 0, 1)
    );
}

#[test]
fn reencrypt_resumes_after_a_checkpoint() {
    let f = fixture();
    let transformers = Arc::new(f.new.build().expect("build"));
    let mut options = ReencryptOptions::new("/registry/secrets/");
    options.start_after = Some(b"/registry/secrets/ns/s19".to_vec());
    let report = rt()
        .block_on(walk::reencrypt(
            f.dump.clone(),
            transformers,
            options,
            &mut (),
        ))
        .expect("run");
    assert_eq!(report.totals.rewritten, 20);
    let entries = f.dump.entries();
    let untouched = entries
        .iter()
        .filter(|e| e.value.starts_with(b"k8s:enc:aesgcm:v1:key1:"))
        .count();
    // s00..s19 and the key outside the prefix still have key1.
    assert_eq!(untouched, 21);
}

/// A store that, on the first compare-and-swap of some keys, lets a
/// "kube-apiserver" write a new value first.
struct Racy {
    inner: Arc<DumpStore>,
    writer: EncryptionConfiguration,
    raced: AtomicUsize,
    done: std::sync::Mutex<Vec<Vec<u8>>>,
}

impl Store for Racy {
    fn list<'a>(
        &'a self,
        prefix: &'a [u8],
        after: Option<&'a [u8]>,
        limit: usize,
    ) -> StoreFuture<'a, Page> {
        self.inner.list(prefix, after, limit)
    }
    fn get<'a>(&'a self, key: &'a [u8]) -> StoreFuture<'a, Option<Entry>> {
        self.inner.get(key)
    }
    fn compare_and_swap<'a>(
        &'a self,
        key: &'a [u8],
        expected: i64,
        value: &'a [u8],
    ) -> StoreFuture<'a, Swap> {
        let current = self
            .inner
            .entries()
            .into_iter()
            .find(|e| e.key == key)
            .map(|e| e.revision);
        let first = {
            let mut done = self.done.lock().expect("lock");
            let first = !done.iter().any(|k| k == key);
            done.push(key.to_vec());
            first
        };
        if first && current == Some(expected) && key.ends_with(b"5") {
            self.raced.fetch_add(1, Ordering::SeqCst);
            let t = self.writer.build().expect("build");
            let k = std::str::from_utf8(key).expect("utf-8");
            let v = t
                .for_resource("secrets")
                .encrypt_blocking(b"written by the apiserver", k.into())
                .expect("encrypt");
            self.inner.put(key, &v);
        }
        self.inner.compare_and_swap(key, expected, value)
    }
    fn describe(&self) -> String {
        "racy".into()
    }
}

#[test]
fn a_concurrent_write_is_never_overwritten() {
    for writer_is_old in [false, true] {
        let f = fixture();
        // A server that has the new configuration writes current values; one
        // still on the old writes stale ones, which are then rewritten.
        let writer = if writer_is_old {
            f.old.clone()
        } else {
            f.new.clone()
        };
        let store = Arc::new(Racy {
            inner: f.dump.clone(),
            writer,
            raced: AtomicUsize::new(0),
            done: Default::default(),
        });
        let transformers = Arc::new(f.new.build().expect("build"));
        let report = rt()
            .block_on(walk::reencrypt(
                store.clone(),
                transformers,
                ReencryptOptions::new("/registry/secrets/"),
                &mut (),
            ))
            .expect("run");
        let raced = store.raced.load(Ordering::SeqCst);
        assert_eq!(raced, 4, "s05 s15 s25 s35");
        assert_eq!(report.totals.conflicts_retried, 4);
        if writer_is_old {
            assert_eq!(report.totals.rewritten, 40);
        } else {
            assert_eq!(
                (report.totals.rewritten, report.totals.already_current),
                (36, 4)
            );
        }
        let t = f.new.build().expect("build");
        for e in f.dump.entries() {
            let k = String::from_utf8(e.key.clone()).expect("utf-8");
            if k.starts_with("/registry/secrets/ns/s") && k.ends_with('5') {
                let read = t
                    .for_resource("secrets")
                    .decrypt_blocking(&e.value, k.as_str().into())
                    .expect("reads");
                assert_eq!(read.plaintext, b"written by the apiserver", "{k}");
                assert!(!read.stale);
            }
        }
    }
}

/// A store where a "kube-apiserver" writes some keys again before every
/// compare-and-swap, with the old configuration: they never settle.
struct Restless {
    inner: Arc<DumpStore>,
    writer: EncryptionConfiguration,
    swaps: AtomicUsize,
}

impl Store for Restless {
    fn list<'a>(
        &'a self,
        prefix: &'a [u8],
        after: Option<&'a [u8]>,
        limit: usize,
    ) -> StoreFuture<'a, Page> {
        self.inner.list(prefix, after, limit)
    }
    fn get<'a>(&'a self, key: &'a [u8]) -> StoreFuture<'a, Option<Entry>> {
        self.inner.get(key)
    }
    fn compare_and_swap<'a>(
        &'a self,
        key: &'a [u8],
        expected: i64,
        value: &'a [u8],
    ) -> StoreFuture<'a, Swap> {
        if key.ends_with(b"7") {
            self.swaps.fetch_add(1, Ordering::SeqCst);
            let k = std::str::from_utf8(key).expect("utf-8");
            let v = self
                .writer
                .build()
                .expect("build")
                .for_resource("secrets")
                .encrypt_blocking(b"written again", k.into())
                .expect("encrypt");
            self.inner.put(key, &v);
        }
        self.inner.compare_and_swap(key, expected, value)
    }
    fn describe(&self) -> String {
        "restless".into()
    }
}

/// A value that changes before every compare-and-swap is read again up to
/// `max_attempts` times, then left to its writers and counted as failed,
/// saying why; the others are re-encrypted.
#[test]
fn a_value_that_never_settles_is_left_to_its_writers_after_max_attempts() {
    let f = fixture();
    let store = Arc::new(Restless {
        inner: f.dump.clone(),
        writer: f.old.clone(),
        swaps: AtomicUsize::new(0),
    });
    let report = rt()
        .block_on(walk::reencrypt(
            store.clone(),
            Arc::new(f.new.build().expect("build")),
            ReencryptOptions::new("/registry/secrets/ns/s").with_max_attempts(3),
            &mut (),
        ))
        .expect("run");
    // s07, s17, s27 and s37: three attempts each.
    assert_eq!(store.swaps.load(Ordering::SeqCst), 4 * 3);
    assert_eq!((report.totals.rewritten, report.totals.failed), (36, 4));
    let reasons: Vec<&str> = report.failures.iter().map(|f| f.reason.as_str()).collect();
    assert_eq!(
        reasons, ["changed on each of 3 attempts; left to its writers"; 4],
        "{:?}",
        report.failures
    );
    let mut keys: Vec<&str> = report.failures.iter().map(|f| f.key.as_str()).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "/registry/secrets/ns/s07",
            "/registry/secrets/ns/s17",
            "/registry/secrets/ns/s27",
            "/registry/secrets/ns/s37"
        ]
    );
}

#[test]
fn resources_are_told_from_keys_and_get_their_rules_writer() {
    let f = fixture();
    // configmaps: identity -> aesgcm. Their plaintext values become stale.
    let k = rotation::generate_key(&ProviderId::AesGcm, "cm1").expect("key");
    let added = rotation::add_provider(
        &f.new,
        1,
        rotation::static_provider(&ProviderId::AesGcm, k).expect("static"),
    )
    .expect("add");
    let promoted =
        rotation::promote(&added, 1, &Member::Provider(ProviderId::AesGcm)).expect("promote");
    let report = rt()
        .block_on(walk::reencrypt(
            f.dump.clone(),
            Arc::new(promoted.build().expect("build")),
            ReencryptOptions::new("/registry/"),
            &mut (),
        ))
        .expect("run");
    // 40 secrets + 5 configmaps + the secret outside /registry/secrets/ (it
    // is under /registry/ but its resource "secretsX" is unknown: failed).
    assert_eq!(report.totals.rewritten, 45);
    assert_eq!(report.totals.failed, 2);
    for e in f.dump.entries() {
        if e.key.starts_with(b"/registry/configmaps/") {
            assert!(e.value.starts_with(b"k8s:enc:aesgcm:v1:cm1:"));
        }
        if e.key == b"/registry/secretsX/ns/outside" {
            assert!(e.value.starts_with(b"k8s:enc:aesgcm:v1:key1:"));
        }
    }
}

#[test]
fn dump_files_round_trip_through_disk() {
    let f = fixture();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("dump.json");
    f.dump.write(&path).expect("write");
    let loaded = DumpStore::load(&path).expect("load");
    assert_eq!(loaded.entries(), f.dump.entries());
    assert_eq!(loaded.to_json(), f.dump.to_json());
}

/// KMS v2 through the async transformer API: the local-KEK plugin in
/// process; after the KEK rotates, the scan shows the old key-ID hash stale,
/// and the re-encryption moves every value to the new one.
#[cfg(unix)]
#[test]
fn kms_v2_values_move_to_the_new_key_id() {
    use k8s_envelope::kms::{GrpcKmsFactory, KmsEndpoint};
    use k8s_envelope::SecretKey;
    use k8s_envelope_kms_plugin::{LocalKek, PluginServer};

    /// A fresh KEK over the old one (a new inode), private to its owner.
    fn write_kek(path: &std::path::Path) {
        let key = SecretKey::generate(32).expect("key");
        k8s_envelope::private_file::write(path, key.to_base64().as_bytes()).expect("write");
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let kek = dir.path().join("kek");
    write_kek(&kek);
    rt().block_on(async {
        let endpoint = KmsEndpoint::socket_file(dir.path().join("kms.sock")).expect("endpoint");
        let plugin = PluginServer::new(LocalKek::open(&kek).expect("kek"))
            .serve(&endpoint)
            .await
            .expect("serve");
        let config = config(&format!(
            "kind: EncryptionConfiguration
apiVersion: apiserver.config.k8s.io/v1
resources:
  - resources: [secrets]
    providers:
      - kms: {{apiVersion: v2, name: local, endpoint: \"{endpoint}\"}}
"
        ));
        let kms = GrpcKmsFactory::new();
        let transformers = Arc::new(config.build_with_kms(&kms).expect("build"));
        kms.refresh_all().await.expect("refresh");
        let provider = kms.v2_providers()[0].clone();
        let old_hash = provider.health().key_id_hash.expect("key id");

        let dump = Arc::new(DumpStore::new("kms"));
        for i in 0..20 {
            let key = format!("/registry/secrets/ns/k{i}");
            let value = transformers
                .for_resource("secrets")
                .encrypt(b"kms value", key.as_str().into())
                .await
                .expect("encrypt");
            dump.put(key.as_bytes(), &value);
        }
        write_kek(&kek);
        provider.refresh().await.expect("refresh");
        let new_hash = provider.health().key_id_hash.expect("key id");
        assert_ne!(old_hash, new_hash);

        let scan = walk::scan(
            dump.clone(),
            transformers.clone(),
            ScanOptions::new("/registry/secrets/"),
        )
        .await
        .expect("scan");
        let stale_origin = ValueOrigin::KmsV2 {
            name: "local".into(),
            key_id_hash: Some(old_hash.clone()),
        };
        assert_eq!(
            scan.count_where(|r| r.origin == stale_origin && r.state == Outcome::Stale),
            20,
            "{scan}"
        );
        assert!(
            scan.to_string()
                .contains(&format!("kms:local (v2, key ID {old_hash})")),
            "{scan}"
        );

        let mut options = ReencryptOptions::new("/registry/secrets/");
        options.concurrency = 8;
        let report = walk::reencrypt(dump.clone(), transformers.clone(), options, &mut ())
            .await
            .expect("reencrypt");
        assert_eq!(report.totals.rewritten, 20);

        let scan = walk::scan(
            dump.clone(),
            transformers,
            ScanOptions::new("/registry/secrets/"),
        )
        .await
        .expect("scan");
        let current = ValueOrigin::KmsV2 {
            name: "local".into(),
            key_id_hash: Some(new_hash),
        };
        assert_eq!(
            scan.count_where(|r| r.origin == current && r.state == Outcome::Current),
            20,
            "{scan}"
        );
        plugin.shutdown().await.expect("shutdown");
    });
}
