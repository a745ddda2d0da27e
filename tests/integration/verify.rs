//! `walk::verify` over a dump of values from every provider: the local-KEK
//! plugin on real unix sockets for KMS v2 (one of them with a KEK the
//! reading plugin does not have), a key missing from the configuration, a
//! tampered value, a plaintext that is no object, a provider missing from
//! the rule; then the plugin stopped. Each unreadable value comes with its
//! reason in key order, the dependencies with their fingerprints, and a DEK
//! shared by many values goes to the plugin once.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use k8s_envelope::config::GroupResource;
use k8s_envelope::fingerprint::key_fingerprint;
use k8s_envelope::kms::{GrpcKmsFactory, KmsEndpoint};
use k8s_envelope::rotation::ProviderId;
use k8s_envelope::store::DumpStore;
use k8s_envelope::walk::{self, Dependency, UnreadableReason, ValueOrigin, VerifyOptions};
use k8s_envelope::{EncryptionConfiguration, ResourceTransformers, SecretKey};
use k8s_envelope_kms_plugin::{Kek, KekFuture, LocalKek, PluginHandle, PluginServer, Wrapped};
use k8s_envelope_test_support::objects::secret_protobuf;
use k8s_envelope_test_support::rt;
use zeroize::Zeroizing;

const KEY1: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const KEY2: &str = "YGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6e3x9fn8=";
const KEY0: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";
const BOX1: &str = "QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8=";
/// Values sharing one KMS v2 seed.
const KMS_VALUES: usize = 200;

/// The local KEK, counting the unwraps it is asked for, each taking 20 ms
/// so that the verification's concurrent reads of one seed overlap.
struct CountingKek {
    inner: LocalKek,
    unwraps: Arc<AtomicUsize>,
}

impl Kek for CountingKek {
    fn key_id(&self) -> KekFuture<'_, String> {
        self.inner.key_id()
    }

    fn wrap<'a>(&'a self, plaintext: &'a [u8]) -> KekFuture<'a, Wrapped> {
        self.inner.wrap(plaintext)
    }

    fn unwrap<'a>(
        &'a self,
        key_id: &'a str,
        ciphertext: &'a [u8],
        annotations: &'a BTreeMap<String, Vec<u8>>,
    ) -> KekFuture<'a, Zeroizing<Vec<u8>>> {
        Box::pin(async move {
            self.unwraps.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
            self.inner.unwrap(key_id, ciphertext, annotations).await
        })
    }
}

/// A plugin on a socket in `dir` over a fresh KEK; its endpoint and unwrap
/// counter.
async fn plugin(dir: &std::path::Path, name: &str) -> (PluginHandle, String, Arc<AtomicUsize>) {
    let kek = dir.join(format!("{name}.kek"));
    let key = SecretKey::generate(32).expect("key");
    k8s_envelope::private_file::write(&kek, key.to_base64().as_bytes()).expect("write");
    let unwraps = Arc::new(AtomicUsize::new(0));
    let counting = CountingKek {
        inner: LocalKek::open(&kek).expect("kek"),
        unwraps: unwraps.clone(),
    };
    let endpoint = KmsEndpoint::socket_file(dir.join(format!("{name}.sock"))).expect("endpoint");
    let handle = PluginServer::new(counting)
        .serve(&endpoint)
        .await
        .expect("serve");
    let url = format!("unix://{}", dir.join(format!("{name}.sock")).display());
    (handle, url, unwraps)
}

/// A configuration of one rule for secrets (and configmaps in plaintext
/// where a rule says so), built with its KMS plugins connected.
async fn transformers(secrets_providers: &str) -> Arc<ResourceTransformers> {
    let yaml = format!(
        "kind: EncryptionConfiguration
apiVersion: apiserver.config.k8s.io/v1
resources:
  - resources: [secrets]
    providers:
{secrets_providers}"
    );
    let config = EncryptionConfiguration::from_yaml(yaml.as_bytes()).expect("config");
    let kms = GrpcKmsFactory::new();
    let built = config.build_with_kms(&kms).expect("build");
    // A plugin that is down leaves its provider without a write key: its
    // values are then unreadable, which is what one test wants.
    let _ = kms.refresh_all().await;
    Arc::new(built)
}

fn aesgcm(name: &str, secret: &str) -> String {
    format!("      - aesgcm:\n          keys:\n            - name: {name}\n              secret: {secret}\n")
}

fn kms(endpoint: &str) -> String {
    format!("      - kms: {{apiVersion: v2, name: local, endpoint: \"{endpoint}\"}}\n")
}

async fn put(
    dump: &DumpStore,
    t: &ResourceTransformers,
    resource: &str,
    key: &str,
    plaintext: &[u8],
) {
    let value = t
        .for_resource(resource)
        .encrypt(plaintext, key.into())
        .await
        .expect("encrypt");
    dump.put(key.as_bytes(), &value);
}

fn secret(name: &str) -> Vec<u8> {
    secret_protobuf("ns", name, &[("password", b"PLAINTEXT-NEVER-SHOWN")])
}

#[test]
fn every_value_is_read_decoded_and_each_unreadable_one_named_with_its_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    rt().block_on(async {
        let (plugin1, endpoint1, unwraps) = plugin(dir.path(), "one").await;
        let (plugin2, endpoint2, _) = plugin(dir.path(), "two").await;
        let cbc = format!("      - aescbc:\n          keys:\n            - name: key0\n              secret: {KEY0}\n");
        let secretbox = format!("      - secretbox:\n          keys:\n            - name: box1\n              secret: {BOX1}\n");
        let gcm1 = transformers(&aesgcm("key1", KEY1)).await;
        let dump = DumpStore::new("verify");
        for i in 0..10 {
            let key = format!("/registry/secrets/ns/gcm-{i}");
            put(&dump, &gcm1, "secrets", &key, &secret(&key)).await;
        }
        let cbc_writer = transformers(&cbc).await;
        for i in 0..5 {
            let key = format!("/registry/secrets/ns/cbc-{i}");
            put(&dump, &cbc_writer, "secrets", &key, &secret(&key)).await;
        }
        let kms_writer = transformers(&kms(&endpoint1)).await;
        for i in 0..KMS_VALUES {
            let key = format!("/registry/secrets/ns/kms-{i:03}");
            put(&dump, &kms_writer, "secrets", &key, &secret(&key)).await;
        }
        for i in 0..5 {
            dump.put(
                format!("/registry/configmaps/ns/plain-{i}").as_bytes(),
                br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"p","namespace":"ns"}}"#,
            );
        }
        // The unreadable ones, named so that they sort last.
        let gcm2 = transformers(&aesgcm("key2", KEY2)).await;
        put(&dump, &gcm2, "secrets", "/registry/secrets/ns/z1-unknown-key", &secret("a")).await;
        let mut tampered = gcm1
            .for_resource("secrets")
            .encrypt(&secret("b"), "/registry/secrets/ns/z2-tampered".into())
            .await
            .expect("encrypt");
        *tampered.last_mut().expect("bytes") ^= 1;
        dump.put(b"/registry/secrets/ns/z2-tampered", &tampered);
        let box_writer = transformers(&secretbox).await;
        put(&dump, &box_writer, "secrets", "/registry/secrets/ns/z3-secretbox", &secret("c")).await;
        put(&dump, &gcm1, "secrets", "/registry/secrets/ns/z4-not-an-object", b"not an object").await;
        let foreign = transformers(&kms(&endpoint2)).await;
        // Sorted between the KMS values and the z ones, and slow (its plugin
        // call takes 20 ms while the z ones read at once): it is reported
        // in its place only if reports come in key order.
        put(&dump, &foreign, "secrets", "/registry/secrets/ns/m-foreign-kek", &secret("d")).await;
        // A cluster-scoped object no provider of its (default) rule reads.
        put(&dump, &gcm1, "secrets", "/registry/minions/node-z", &secret("e")).await;
        let dump = Arc::new(dump);

        // Read with key1 (writes), key0, the first plugin and identity.
        let reader = transformers(&format!(
            "{}{cbc}{}      - identity: {{}}\n",
            aesgcm("key1", KEY1),
            kms(&endpoint1)
        ))
        .await;
        unwraps.store(0, Ordering::SeqCst);
        let mut unreadable = Vec::new();
        let report = walk::verify(
            dump.clone(),
            reader,
            VerifyOptions::default().with_concurrency(8),
            |value| unreadable.push(value.clone()),
        )
        .await
        .expect("verify");
        // One unwrap for the seed of the KMS_VALUES values read 8 at a
        // time, one for the value of the other KEK (refused).
        assert_eq!(unwraps.load(Ordering::SeqCst), 2);
        let reasons: Vec<(&str, UnreadableReason)> = unreadable
            .iter()
            .map(|v| (v.key.as_str(), v.reason))
            .collect();
        assert_eq!(
            reasons,
            [
                ("/registry/minions/node-z", UnreadableReason::NoProvider),
                ("/registry/secrets/ns/m-foreign-kek", UnreadableReason::KmsRefused),
                ("/registry/secrets/ns/z1-unknown-key", UnreadableReason::UnknownKey),
                ("/registry/secrets/ns/z2-tampered", UnreadableReason::AuthenticationFailed),
                ("/registry/secrets/ns/z3-secretbox", UnreadableReason::NoProvider),
                ("/registry/secrets/ns/z4-not-an-object", UnreadableReason::NotAnObject),
            ]
        );
        assert_eq!(
            unreadable[0].delete_command().as_deref(),
            Some("kubectl delete nodes node-z --ignore-store-read-error-with-cluster-breaking-potential=true")
        );
        assert_eq!(
            unreadable[2].delete_command().as_deref(),
            Some("kubectl delete secrets z1-unknown-key -n ns --ignore-store-read-error-with-cluster-breaking-potential=true")
        );
        assert!(unreadable[2].error.as_ref().is_some_and(|e| e.to_string().contains("\"key2\"")));
        assert!(unreadable[5].error.is_none());
        for value in &unreadable {
            let shown = format!("{value:?} {:?}", value.error.as_ref().map(ToString::to_string));
            assert!(!shown.contains("PLAINTEXT-NEVER-SHOWN") && !shown.contains("not an object"), "{shown}");
        }

        assert_eq!(report.total, 10 + 5 + KMS_VALUES as u64 + 5 + 6);
        assert_eq!(report.readable, 10 + 5 + KMS_VALUES as u64 + 5);
        assert_eq!(report.stale, 5 + KMS_VALUES as u64);
        assert_eq!(report.unreadable_count(), 6);
        assert!(!report.all_readable());
        assert!(report.over_list_limit().is_empty());
        let secrets = GroupResource::new("", "secrets");
        let key1 = Dependency::new(
            secrets.clone(),
            ValueOrigin::Key {
                provider: ProviderId::AesGcm,
                name: "key1".into(),
            },
        );
        let count = report.dependencies[&key1];
        // The tampered value and the one that is no object were written
        // with key1 too.
        assert_eq!((count.values, count.readable), (12, 10));
        let config = EncryptionConfiguration::from_yaml(
            format!("kind: EncryptionConfiguration\napiVersion: apiserver.config.k8s.io/v1\nresources:\n  - resources: [secrets]\n    providers:\n{}", aesgcm("key1", KEY1)).as_bytes(),
        )
        .expect("config");
        assert_eq!(
            key1.fingerprint(&config),
            Some(key_fingerprint(&SecretKey::from_base64(KEY1).expect("key")))
        );
        let kms_dependencies: Vec<_> = report
            .dependencies
            .iter()
            .filter(|(d, _)| matches!(d.origin, ValueOrigin::KmsV2 { .. }))
            .map(|(d, n)| (d.fingerprint(&config), n.values, n.readable))
            .collect();
        assert_eq!(kms_dependencies.len(), 2, "{:?}", report.dependencies);
        assert!(kms_dependencies.iter().all(|(hash, _, _)| hash.as_deref().is_some_and(|h| h.starts_with("sha256:"))));
        let mut counts: Vec<_> = kms_dependencies.iter().map(|(_, v, r)| (*v, *r)).collect();
        counts.sort();
        assert_eq!(counts, [(1, 0), (KMS_VALUES as u64, KMS_VALUES as u64)]);
        let plaintext = Dependency::new(GroupResource::new("", "configmaps"), ValueOrigin::Identity);
        assert_eq!(report.dependencies[&plaintext].readable, 5);

        // The plugin stopped: its values are no verdict, and with more than
        // a LIST names, the resource is called out.
        plugin1.shutdown().await.expect("shutdown");
        plugin2.shutdown().await.expect("shutdown");
        let reader = transformers(&format!("{}{}", aesgcm("key1", KEY1), kms(&endpoint1))).await;
        let mut unavailable = 0;
        let report = walk::verify(dump, reader, VerifyOptions::default(), |value| {
            if value.reason == UnreadableReason::KmsUnavailable {
                assert!(!value.reason.is_verdict());
                assert_eq!(value.delete_command(), None, "no verdict, no delete");
                unavailable += 1;
            }
        })
        .await
        .expect("verify");
        assert_eq!(unavailable, KMS_VALUES + 1);
        assert_eq!(
            report.unreadable[&(secrets.clone(), UnreadableReason::KmsUnavailable)],
            KMS_VALUES as u64 + 1
        );
        let over = report.over_list_limit();
        assert_eq!(over.len(), 1);
        assert_eq!(over[0].0, secrets);
        assert!(over[0].1 > walk::LIST_ERROR_LIMIT);
    });
}
