//! kms-plugin-local's KEK and server (`LocalKek` on the kit's
//! `PluginServer`) in this process, on a runtime of its own: the baseline
//! the plugins' wrap benchmarks measure beside.

use k8s_envelope::kms::KmsEndpoint;
use k8s_envelope_kms_plugin::{LocalKek, PluginHandle, PluginServer};

/// A local-KEK plugin serving on a socket in a temporary directory, shut
/// down on drop.
pub struct LocalPlugin {
    _dir: tempfile::TempDir,
    endpoint: KmsEndpoint,
    runtime: tokio::runtime::Runtime,
    handle: Option<PluginHandle>,
}

impl LocalPlugin {
    /// A fresh 32-byte KEK in a 0600 file, served on two worker threads.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let kek = dir.path().join("kek.b64");
        let key = k8s_envelope::SecretKey::generate(32).expect("key");
        let mut file = std::fs::OpenOptions::new();
        std::os::unix::fs::OpenOptionsExt::mode(file.write(true).create_new(true), 0o600);
        std::io::Write::write_all(
            &mut file.open(&kek).expect("kek"),
            key.to_base64().as_bytes(),
        )
        .expect("write");
        let endpoint = KmsEndpoint::socket_file(dir.path().join("local.sock")).expect("endpoint");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let handle = runtime.block_on(async {
            PluginServer::new(LocalKek::open(&kek).expect("open"))
                .serve(&endpoint)
                .await
                .expect("serve")
        });
        Self {
            _dir: dir,
            endpoint,
            runtime,
            handle: Some(handle),
        }
    }

    /// Where it serves.
    pub fn endpoint(&self) -> &KmsEndpoint {
        &self.endpoint
    }
}

impl Drop for LocalPlugin {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            let _ = self.runtime.block_on(handle.shutdown());
        }
    }
}
