//! A walk of a prefix on a real etcd: what it costs etcd (by etcd's own
//! count of the keys each range visited) and what it sees, at one revision
//! and across a compaction. Nothing here is timed.

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::Arc;

use futures_util::stream::{self, StreamExt as _};
use k8s_envelope::store::{EtcdOptions, EtcdStore, Listing, Store};
use k8s_envelope::walk::{self, ScanOptions};
use k8s_envelope::{EncryptionConfiguration, ResourceTransformers};

use k8s_envelope_test_support::etcd::{etcdctl, EtcdServer};
use k8s_envelope_test_support::rt;

const PREFIX: &str = "/registry/secrets/";

async fn connect(url: &str) -> Arc<EtcdStore> {
    Arc::new(
        EtcdStore::connect(EtcdOptions::new([url]))
            .await
            .expect("connect to etcd"),
    )
}

/// Writes `n` small values under [`PREFIX`], 64 at a time; returns the keys.
async fn fill(store: &EtcdStore, n: usize) -> BTreeSet<Vec<u8>> {
    let keys: Vec<Vec<u8>> = (0..n)
        .map(|i| format!("{PREFIX}ns{}/s-{i:06}", i % 7).into_bytes())
        .collect();
    stream::iter(&keys)
        .for_each_concurrent(64, |key| async move {
            store.put(key, b"v").await.expect("put");
        })
        .await;
    keys.into_iter().collect()
}

/// Every key the listing returns, in order, checking that no key comes
/// twice or out of order.
async fn drain(listing: &mut dyn Listing) -> Vec<Vec<u8>> {
    let mut keys: Vec<Vec<u8>> = Vec::new();
    while let Some(page) = listing.next_page().await.expect("page") {
        for entry in page.entries {
            if let Some(last) = keys.last() {
                assert!(entry.key > *last, "keys out of order or repeated");
            }
            keys.push(entry.key);
        }
    }
    keys
}

/// 50,000 keys: the walk returns each once, reads one revision, and etcd
/// visits every key twice in all (a keys-only listing, then each page
/// bounded by the next page's first key). Pages of limited ranges would
/// have it visit about N²/(2·page) = 12.5 million.
#[test]
#[ignore = "needs etcd (apt-get install etcd-server etcd-client)"]
fn a_walk_of_50000_keys_visits_each_key_twice_at_one_revision() {
    let etcd = EtcdServer::start();
    const N: usize = 50_000;
    const PAGE: usize = 100;
    rt().block_on(async {
        let store = connect(&etcd.url).await;
        let written = fill(&store, N).await;
        let mut listing = store.listing(PREFIX.as_bytes(), None, PAGE);
        let keys = drain(listing.as_mut()).await;
        let report = listing.report();
        assert_eq!(keys.len(), N);
        assert_eq!(keys.into_iter().collect::<BTreeSet<_>>(), written);
        assert_eq!(report.keys_visited, 2 * N as u64, "{report:?}");
        assert_eq!(report.requests, 1 + (N / PAGE) as u64, "{report:?}");
        assert_eq!(report.revision_moves, 0);
        assert!(report.first_revision.is_some());
        assert_eq!(report.first_revision, report.last_revision);

        // The same through a scan, which reports what the listing cost.
        let config = EncryptionConfiguration::from_yaml(
            b"kind: EncryptionConfiguration\napiVersion: apiserver.config.k8s.io/v1\n\
              resources:\n  - resources: [secrets]\n    providers:\n      - identity: {}\n",
        )
        .expect("config");
        let transformers: Arc<ResourceTransformers> = Arc::new(config.build().expect("build"));
        let options = ScanOptions::new(PREFIX).with_page_size(PAGE);
        let scan = walk::scan(store.clone(), transformers, options)
            .await
            .expect("scan");
        assert_eq!(scan.total, N as u64);
        assert_eq!(scan.listing.keys_visited, 2 * N as u64);
    });
}

/// A resumed walk starts after the key it is given and lists only the rest.
#[test]
#[ignore = "needs etcd (apt-get install etcd-server etcd-client)"]
fn a_walk_resumes_after_a_key() {
    let etcd = EtcdServer::start();
    rt().block_on(async {
        let store = connect(&etcd.url).await;
        let written: Vec<Vec<u8>> = fill(&store, 250).await.into_iter().collect();
        let after = written[99].clone();
        let mut listing = store.listing(PREFIX.as_bytes(), Some(&after), 30);
        let keys = drain(listing.as_mut()).await;
        assert_eq!(keys, written[100..]);
        assert_eq!(listing.report().keys_visited, 2 * 150);
    });
}

/// etcd compacts the revision the walk reads while it is under way: the
/// walk lists the rest at the new revision and goes on, every key once, and
/// says that it moved.
#[test]
#[ignore = "needs etcd (apt-get install etcd-server etcd-client)"]
fn a_walk_moves_on_when_its_revision_is_compacted() {
    let etcd = EtcdServer::start();
    rt().block_on(async {
        let store = connect(&etcd.url).await;
        let written = fill(&store, 300).await;
        let mut listing = store.listing(PREFIX.as_bytes(), None, 10);
        let mut keys = Vec::new();
        let first = listing.next_page().await.expect("page").expect("a page");
        keys.extend(first.entries.into_iter().map(|e| e.key));

        // A write outside the prefix moves the revision on; compact to it.
        let revision = store.put(b"/elsewhere/x", b"y").await.expect("put");
        let compacted = Command::new(etcdctl())
            .args(["--endpoints", &etcd.url, "compact", &revision.to_string()])
            .output()
            .expect("run etcdctl");
        assert!(compacted.status.success(), "{compacted:?}");

        keys.extend(drain(listing.as_mut()).await);
        let report = listing.report();
        assert_eq!(keys.len(), 300, "every key once");
        assert_eq!(keys.into_iter().collect::<BTreeSet<_>>(), written);
        assert_eq!(report.revision_moves, 1, "{report:?}");
        assert!(report.last_revision >= Some(revision), "{report:?}");
        assert!(report.first_revision < report.last_revision, "{report:?}");
    });
}
