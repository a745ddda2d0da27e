//! One configurable in-process KMS, v1 and v2: Kubernetes' base64 mock
//! plugin (a DEK or seed is "wrapped" by base64-encoding it; KMS v2 answers
//! with the annotation `local-kek.kms.kubernetes.io: encrypted-local-kek`),
//! which a test can steer: the key ID, healthz and version it reports, a
//! "down" switch, forced `Encrypt` and `Decrypt` answers, and counters of
//! what it was asked. Every answer is ready on the first poll, so a provider
//! over it needs no runtime.

use std::collections::BTreeMap;
use std::future::ready;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use k8s_envelope::kms::{
    EncryptResponse, KmsError, KmsErrorKind, KmsFuture, KmsServiceV1, KmsServiceV2, StatusCode,
    StatusResponse, VersionResponse,
};
use k8s_envelope::Error;
use zeroize::Zeroizing;

/// The annotation key of every KMS v2 `Encrypt` answer (unless overridden).
pub const ANNOTATION_KEY: &str = "local-kek.kms.kubernetes.io";
/// The annotation value of every KMS v2 `Encrypt` answer.
pub const ANNOTATION_VALUE: &[u8] = b"encrypted-local-kek";
/// The reason of the `Unavailable` error every call gets while it is down.
pub const DOWN_REASON: &str = "fake KMS is down";

/// Parts of the `Encrypt` answer to replace.
#[derive(Clone, Debug, Default)]
pub struct EncryptOverride {
    /// The key ID to answer instead of the current one (KMS v2).
    pub key_id: Option<String>,
    /// The ciphertext to answer, whatever the plaintext (v1 and v2).
    pub ciphertext: Option<Vec<u8>>,
    /// The annotations to answer (KMS v2).
    pub annotations: Option<BTreeMap<String, Vec<u8>>>,
}

/// One `Decrypt` request as the fake saw it (KMS v2).
#[derive(Clone, Debug)]
pub struct DecryptRequest {
    pub key_id: String,
    pub ciphertext: Vec<u8>,
    pub annotations: BTreeMap<String, Vec<u8>>,
}

#[derive(Debug)]
struct Settings {
    key_id: String,
    healthz: String,
    version: String,
    down: bool,
    encrypt_override: EncryptOverride,
    decrypt_returns: Option<Vec<u8>>,
}

/// The fake KMS (see the module's documentation).
#[derive(Debug)]
pub struct FakeKms {
    settings: Mutex<Settings>,
    statuses: AtomicUsize,
    encrypts: AtomicUsize,
    decrypts: AtomicUsize,
    /// Every plaintext DEK or seed it saw (`Encrypt` inputs, `Decrypt`
    /// outputs), so tests can look for them where they must not be.
    secrets: Mutex<Vec<Vec<u8>>>,
    decrypt_requests: Mutex<Vec<DecryptRequest>>,
}

/// The `Unavailable` error of a fake that is down, as the gRPC client
/// reports a plugin it cannot reach.
pub fn down_error() -> Error {
    Error::Kms(KmsError::new(KmsErrorKind::Unavailable(
        DOWN_REASON.to_owned(),
    )))
}

/// Whether `result` is the error of a fake that is down, passed through
/// unchanged.
pub fn is_down<T>(result: &Result<T, Error>) -> bool {
    matches!(result, Err(Error::Kms(e))
        if matches!(e.kind(), KmsErrorKind::Unavailable(d) if d == DOWN_REASON))
}

fn refused(message: &str) -> Error {
    Error::Kms(KmsError::new(KmsErrorKind::Status {
        code: StatusCode::InvalidArgument,
        message: message.to_owned(),
    }))
}

impl FakeKms {
    /// Healthy, key ID `"1"`, version `v2`, base64 both ways.
    pub fn new() -> Arc<Self> {
        Self::with_key_id("1")
    }

    /// As [`FakeKms::new`], with the key ID `key_id`.
    pub fn with_key_id(key_id: &str) -> Arc<Self> {
        Arc::new(Self {
            settings: Mutex::new(Settings {
                key_id: key_id.to_owned(),
                healthz: "ok".to_owned(),
                version: "v2".to_owned(),
                down: false,
                encrypt_override: EncryptOverride::default(),
                decrypt_returns: None,
            }),
            statuses: AtomicUsize::new(0),
            encrypts: AtomicUsize::new(0),
            decrypts: AtomicUsize::new(0),
            secrets: Mutex::new(Vec::new()),
            decrypt_requests: Mutex::new(Vec::new()),
        })
    }

    fn settings(&self) -> MutexGuard<'_, Settings> {
        self.settings.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The key ID of `Status` and `Encrypt` from now on (KMS v2).
    pub fn set_key_id(&self, key_id: &str) {
        self.settings().key_id = key_id.to_owned();
    }

    /// The healthz `Status` answers (KMS v2).
    pub fn set_healthz(&self, healthz: &str) {
        self.settings().healthz = healthz.to_owned();
    }

    /// The version `Status` answers (KMS v2).
    pub fn set_version(&self, version: &str) {
        self.settings().version = version.to_owned();
    }

    /// Down: every call fails with [`down_error`].
    pub fn set_down(&self, down: bool) {
        self.settings().down = down;
    }

    /// Parts of every `Encrypt` answer from now on.
    pub fn set_encrypt_override(&self, o: EncryptOverride) {
        self.settings().encrypt_override = o;
    }

    /// What every `Decrypt` answers from now on, whatever it is asked
    /// (`None`: base64-decode).
    pub fn set_decrypt_returns(&self, plaintext: Option<Vec<u8>>) {
        self.settings().decrypt_returns = plaintext;
    }

    /// `Status` calls so far.
    pub fn statuses(&self) -> usize {
        self.statuses.load(Ordering::SeqCst)
    }

    /// `Encrypt` calls so far.
    pub fn encrypts(&self) -> usize {
        self.encrypts.load(Ordering::SeqCst)
    }

    /// `Decrypt` calls so far.
    pub fn decrypts(&self) -> usize {
        self.decrypts.load(Ordering::SeqCst)
    }

    /// Every plaintext DEK or seed it saw.
    pub fn secrets(&self) -> Vec<Vec<u8>> {
        self.secrets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The last plaintext DEK or seed it saw.
    pub fn last_secret(&self) -> Vec<u8> {
        self.secrets()
            .last()
            .cloned()
            .expect("the fake KMS saw a secret")
    }

    /// Every KMS v2 `Decrypt` request so far.
    pub fn decrypt_requests(&self) -> Vec<DecryptRequest> {
        self.decrypt_requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn remember(&self, secret: &[u8]) {
        self.secrets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(secret.to_vec());
    }

    fn status_now(&self) -> Result<StatusResponse, Error> {
        self.statuses.fetch_add(1, Ordering::SeqCst);
        let s = self.settings();
        if s.down {
            return Err(down_error());
        }
        Ok(StatusResponse {
            version: s.version.clone(),
            healthz: s.healthz.clone(),
            key_id: s.key_id.clone(),
        })
    }

    fn encrypt_now(&self, plaintext: &[u8]) -> Result<EncryptResponse, Error> {
        self.encrypts.fetch_add(1, Ordering::SeqCst);
        let s = self.settings();
        if s.down {
            return Err(down_error());
        }
        self.remember(plaintext);
        let o = s.encrypt_override.clone();
        Ok(EncryptResponse {
            ciphertext: o
                .ciphertext
                .unwrap_or_else(|| B64.encode(plaintext).into_bytes()),
            key_id: o.key_id.unwrap_or_else(|| s.key_id.clone()),
            annotations: o.annotations.unwrap_or_else(|| {
                BTreeMap::from([(ANNOTATION_KEY.to_owned(), ANNOTATION_VALUE.to_vec())])
            }),
        })
    }

    fn decrypt_now(&self, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
        self.decrypts.fetch_add(1, Ordering::SeqCst);
        let s = self.settings();
        if s.down {
            return Err(down_error());
        }
        let plaintext = match &s.decrypt_returns {
            Some(plaintext) => plaintext.clone(),
            None => B64
                .decode(ciphertext)
                .map_err(|_| refused("the ciphertext is not base64"))?,
        };
        self.remember(&plaintext);
        Ok(Zeroizing::new(plaintext))
    }
}

impl KmsServiceV2 for FakeKms {
    fn status(&self) -> KmsFuture<'_, StatusResponse> {
        Box::pin(ready(self.status_now()))
    }

    fn encrypt<'a>(&'a self, _uid: &'a str, plaintext: &'a [u8]) -> KmsFuture<'a, EncryptResponse> {
        Box::pin(ready(self.encrypt_now(plaintext)))
    }

    fn decrypt<'a>(
        &'a self,
        _uid: &'a str,
        key_id: &'a str,
        ciphertext: &'a [u8],
        annotations: &'a BTreeMap<String, Vec<u8>>,
    ) -> KmsFuture<'a, Zeroizing<Vec<u8>>> {
        self.decrypt_requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(DecryptRequest {
                key_id: key_id.to_owned(),
                ciphertext: ciphertext.to_vec(),
                annotations: annotations.clone(),
            });
        Box::pin(ready(self.decrypt_now(ciphertext)))
    }
}

impl KmsServiceV1 for FakeKms {
    fn version(&self) -> KmsFuture<'_, VersionResponse> {
        Box::pin(ready(Ok(VersionResponse {
            version: "v1beta1".to_owned(),
            runtime_name: "fake".to_owned(),
            runtime_version: "0".to_owned(),
        })))
    }

    fn encrypt<'a>(&'a self, plaintext: &'a [u8]) -> KmsFuture<'a, Vec<u8>> {
        Box::pin(ready(
            self.encrypt_now(plaintext).map(|answer| answer.ciphertext),
        ))
    }

    fn decrypt<'a>(&'a self, ciphertext: &'a [u8]) -> KmsFuture<'a, Zeroizing<Vec<u8>>> {
        Box::pin(ready(self.decrypt_now(ciphertext)))
    }
}
