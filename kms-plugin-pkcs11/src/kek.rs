//! [`HsmKek`]: the plugin kit's [`Kek`] on a PKCS#11 token. DEKs and seeds
//! are wrapped with CKM_AES_GCM inside the token; no key bytes are ever in
//! this process.

use std::collections::BTreeMap;
use std::sync::Arc;

use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use k8s_envelope_kms_plugin::{Kek, KekError, KekFuture, Wrapped};
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use crate::key::cka_id_of;
use crate::token::{Token, Which};

/// The GCM IV: 96 bits, fresh from the operating system for every wrap.
const IV_LEN: usize = 12;

/// The GCM tag: 128 bits.
const TAG_LEN: usize = 16;

/// The additional authenticated data starts with this; the key ID follows,
/// so a ciphertext cannot be passed off as another key's. The request's UID
/// is not bound: it only correlates logs, and a Decrypt carries another.
const AAD_DOMAIN: &[u8] = b"k8s-envelope kms-plugin-pkcs11 wrap v1\0";

/// The largest DEK, seed or other plaintext wrapped (the apiserver sends
/// 32 bytes; kms-check tries 1 MiB).
const MAX_PLAINTEXT: usize = 4 * 1024 * 1024;

/// A KEK in a PKCS#11 token.
///
/// - Wrap: CKM_AES_GCM with the key labelled `--key-label`, a fresh 96-bit
///   IV from the OS, a 128-bit tag, and the key ID as additional data. The
///   ciphertext is `IV(12) || ciphertext || tag(16)`: 60 bytes for a 32-byte
///   DEK or seed. No annotations.
/// - Unwrap: the key named by the request's key ID (`pkcs11-` and its
///   CKA_ID in hex), which may be any acceptable AES key on the token, so
///   values wrapped before a rotation to a new label stay readable.
/// - PKCS#11 calls block, so they run on Tokio's blocking threads, at most
///   `max_sessions` at once (one token session each).
#[derive(Debug)]
pub struct HsmKek {
    token: Arc<Token>,
    sessions: Arc<Semaphore>,
}

impl HsmKek {
    /// Wraps with `token`, with at most `max_sessions` calls at once.
    pub fn new(token: Token, max_sessions: usize) -> Self {
        Self {
            token: Arc::new(token),
            sessions: Arc::new(Semaphore::new(max_sessions.max(1))),
        }
    }

    /// Runs `call` on a blocking thread, holding one of the session permits.
    ///
    /// The permit moves into the blocking task: a call the client gave up
    /// on (its future dropped) still holds its session until the token
    /// answers, so no more than `max_sessions` calls ever use the token.
    async fn blocking<T: Send + 'static>(
        &self,
        call: impl FnOnce(&Token) -> Result<T, KekError> + Send + 'static,
    ) -> Result<T, KekError> {
        let permit = Arc::clone(&self.sessions)
            .acquire_owned()
            .await
            .map_err(|_| KekError::internal("the plugin is stopping"))?;
        let token = Arc::clone(&self.token);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            call(&token)
        })
        .await
        .map_err(|_| KekError::internal("a PKCS#11 call panicked"))?
    }
}

fn aad(key_id: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(AAD_DOMAIN.len() + key_id.len());
    aad.extend_from_slice(AAD_DOMAIN);
    aad.extend_from_slice(key_id.as_bytes());
    aad
}

fn wrap(token: &Token, plaintext: &[u8]) -> Result<Wrapped, KekError> {
    let mut iv = [0u8; IV_LEN];
    getrandom::fill(&mut iv).map_err(|_| KekError::internal("no random bytes for the IV"))?;
    token.with_key(Which::Write, "wrap", |session, key| {
        let aad = aad(&key.key_id);
        let mut iv_param = iv;
        let params = GcmParams::new(&mut iv_param, &aad, (TAG_LEN as u64 * 8).into())?;
        let sealed = session.encrypt(&Mechanism::AesGcm(params), key.handle, plaintext)?;
        // The IV as the token left it: a token that makes its own IVs (some
        // do, in a FIPS mode) writes it back into the parameters.
        let mut ciphertext = Vec::with_capacity(IV_LEN + sealed.len());
        ciphertext.extend_from_slice(&iv_param);
        ciphertext.extend_from_slice(&sealed);
        Ok(Wrapped {
            ciphertext,
            key_id: key.key_id.clone(),
            annotations: BTreeMap::new(),
        })
    })
}

fn unwrap(token: &Token, key_id: &str, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>, KekError> {
    let cka_id = cka_id_of(key_id).ok_or_else(|| {
        KekError::invalid_argument("unknown key ID: not one of this plugin's (pkcs11-<hex>)")
    })?;
    if ciphertext.len() < IV_LEN + TAG_LEN {
        return Err(KekError::invalid_argument(
            "the ciphertext is shorter than an IV and a tag",
        ));
    }
    let (iv, sealed) = ciphertext.split_at(IV_LEN);
    token.with_key(Which::CkaId(&cka_id), "unwrap", |session, key| {
        let aad = aad(&key.key_id);
        let mut iv = iv.to_vec();
        let params = GcmParams::new(&mut iv, &aad, (TAG_LEN as u64 * 8).into())?;
        session
            .decrypt(&Mechanism::AesGcm(params), key.handle, sealed)
            .map(Zeroizing::new)
    })
}

impl Kek for HsmKek {
    fn key_id(&self) -> KekFuture<'_, String> {
        let key_id = self.token.write_key_id();
        Box::pin(std::future::ready(Ok(key_id)))
    }

    fn healthy(&self) -> KekFuture<'_, ()> {
        Box::pin(self.blocking(Token::check))
    }

    fn wrap<'a>(&'a self, plaintext: &'a [u8]) -> KekFuture<'a, Wrapped> {
        Box::pin(async move {
            if plaintext.len() > MAX_PLAINTEXT {
                return Err(KekError::invalid_argument(
                    "the plaintext is larger than 4 MiB",
                ));
            }
            let plaintext = Zeroizing::new(plaintext.to_vec());
            self.blocking(move |token| wrap(token, &plaintext)).await
        })
    }

    fn unwrap<'a>(
        &'a self,
        key_id: &'a str,
        ciphertext: &'a [u8],
        _annotations: &'a BTreeMap<String, Vec<u8>>,
    ) -> KekFuture<'a, Zeroizing<Vec<u8>>> {
        Box::pin(async move {
            let key_id = key_id.to_owned();
            let ciphertext = ciphertext.to_vec();
            self.blocking(move |token| unwrap(token, &key_id, &ciphertext))
                .await
        })
    }
}
