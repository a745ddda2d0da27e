//! [`LocalKek`]: a key-encryption key kept in a local file.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::{read_private_file, Kek, KekError, KekFuture, Keyring, Wrapped};
use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use k8s_envelope::SecretKey;

/// KEK length in bytes (AES-256).
const KEK_LEN: usize = 32;

/// AES-GCM nonce length in bytes; the nonce leads every ciphertext.
const NONCE_LEN: usize = 12;

/// AES-GCM tag length in bytes; the tag ends every ciphertext.
const TAG_LEN: usize = 16;

/// Largest key file read, in bytes (32 bytes of base64 plus whitespace fit
/// many times over).
const MAX_KEY_FILE: u64 = 4096;

/// Domain separation for key IDs.
const KEY_ID_DOMAIN: &[u8] = b"k8s-envelope local KEK key ID v1\0";

/// Additional authenticated data of every wrapped DEK or seed.
const WRAP_AAD: &[u8] = b"k8s-envelope local KEK wrap v1";

/// A key-encryption key read from a file: 32 bytes, standard base64,
/// surrounding whitespace ignored (what `k8s-envelope keygen` prints).
///
/// - Wrapping is AES-256-GCM with a random 96-bit nonce; the ciphertext is
///   `nonce(12) || ciphertext || tag(16)` (60 bytes for a 32-byte DEK or
///   seed). No annotations.
/// - The key ID is `local-` and 32 hex digits: the first 128 bits of
///   SHA-256 over a domain-separation string and the KEK. It identifies the
///   KEK without revealing it.
/// - Rotation: [`Keyring::rotate`] (`kms-plugin-local rotate-kek`) moves
///   the KEK into the keyring and writes a new one; or write a new key to
///   the file (or point a symlink at a new file). The file is checked on
///   every `Status` and `Encrypt` (one `stat`; it is read again only when
///   its inode, size or modification time changed), and
///   [`reload`](Self::reload) forces a read. Every KEK seen since start
///   stays in memory, keyed by key ID, so older ciphertexts stay readable;
///   with a keyring ([`with_keyring`](Self::with_keyring)) a KEK replaced
///   under the running plugin is also written into the keyring, so a
///   restart still reads them. KEKs retired elsewhere are loaded with
///   [`with_retired_key_file`](Self::with_retired_key_file).
/// - While the file is missing or invalid, `Status` reports the problem as
///   `healthz` and `Encrypt` fails with `FAILED_PRECONDITION`; `Decrypt`
///   keeps working with the KEKs already loaded.
///
/// Random nonces stay safe for about 2^32 wraps per KEK; kube-apiserver
/// wraps one DEK or seed per key rotation and restart, far fewer.
pub struct LocalKek {
    path: PathBuf,
    state: Mutex<State>,
    /// Where retired KEKs are kept and the key ID that wraps is recorded.
    keyring: Option<Keyring>,
}

/// What the KEK file held when last read.
struct State {
    /// Identity of the file when it was last read successfully.
    stamp: Option<Stamp>,
    /// The key ID wraps use, or why the file is unusable.
    current: Result<String, KekError>,
    /// Every KEK seen, current and retired.
    keys: HashMap<String, Arc<Aes256Gcm>>,
    /// The key ID the keyring records as the one that wraps.
    recorded: Option<String>,
    /// The current KEK itself, to keep in the keyring when the file is
    /// replaced under a running plugin.
    current_key: Option<SecretKey>,
}

/// What decides whether the file must be read again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: i64,
    mtime_nsec: i64,
}

impl LocalKek {
    /// Reads the KEK from `path`.
    ///
    /// # Errors
    ///
    /// [`KekErrorKind::FailedPrecondition`](super::KekErrorKind::FailedPrecondition)
    /// when the file cannot be read, is larger than 4 KiB, is not base64, or
    /// does not hold 32 bytes. The message names the file, never its
    /// contents.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, KekError> {
        let kek = Self {
            path: path.into(),
            state: Mutex::new(State {
                stamp: None,
                current: Err(KekError::failed_precondition("not loaded")),
                keys: HashMap::new(),
                recorded: None,
                current_key: None,
            }),
            keyring: None,
        };
        kek.reload()?;
        Ok(kek)
    }

    /// Also accepts ciphertexts wrapped by the KEK in `path` (an old key kept
    /// for reading after a restart); it is never used to wrap.
    ///
    /// # Errors
    ///
    /// As for [`open`](Self::open).
    pub fn with_retired_key_file(self, path: impl AsRef<Path>) -> Result<Self, KekError> {
        let key = read_key_file(path.as_ref())?;
        let (key_id, cipher) = expand(&key)?;
        self.lock().keys.entry(key_id).or_insert(cipher);
        Ok(self)
    }

    /// Also reads every KEK retired into `keyring` (see [`Keyring`]), and
    /// records there the key ID that wraps, now and whenever the KEK file
    /// changes.
    ///
    /// # Errors
    ///
    /// As for [`open`](Self::open), for the keyring's files too; and
    /// [`KekErrorKind::FailedPrecondition`](super::KekErrorKind::FailedPrecondition)
    /// when the KEK the keyring says wrapped last is neither the file's nor
    /// in the keyring: the KEK file was replaced without
    /// [`Keyring::rotate`], and values that KEK wrapped would be
    /// unreadable.
    pub fn with_keyring(mut self, keyring: Keyring) -> Result<Self, KekError> {
        {
            let mut state = self.lock();
            for key in keyring.retired()? {
                let (key_id, cipher) = expand(&key)?;
                state.keys.entry(key_id).or_insert(cipher);
            }
            if let Some(last) = keyring.last_writer()? {
                if !state.keys.contains_key(&last) {
                    let last = k8s_envelope::store::printable(
                        k8s_envelope::kms::clip_message(&last).as_bytes(),
                    );
                    return Err(KekError::failed_precondition(format!(
                        "the KEK that wrapped last (key ID {last}) is neither in {} nor in the \
                         keyring {}: values it wrapped would be unreadable. Put that KEK back \
                         in the file (or in the keyring as {last}.kek); to change KEKs, run \
                         `kms-plugin-local rotate-kek`, which keeps the old one",
                        self.path.display(),
                        keyring.dir().display()
                    )));
                }
                state.recorded = Some(last);
            }
        }
        self.keyring = Some(keyring);
        self.writer()?;
        Ok(self)
    }

    /// Reads the key file now, whether or not it changed, and returns the
    /// current key ID.
    ///
    /// # Errors
    ///
    /// As for [`open`](Self::open); the KEK then reports unhealthy until the
    /// file is fixed.
    pub fn reload(&self) -> Result<String, KekError> {
        let mut state = self.lock();
        state.stamp = None;
        self.refresh(&mut state);
        state.current.clone()
    }

    /// The key file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The key ID of `kek`, as this type computes it.
    pub fn key_id_of(kek: &SecretKey) -> String {
        let digest = Sha256::new()
            .chain_update(KEY_ID_DOMAIN)
            .chain_update(kek.expose())
            .finalize();
        let mut id = String::with_capacity(6 + 32);
        id.push_str("local-");
        for byte in &digest[..16] {
            id.push_str(&format!("{byte:02x}"));
        }
        id
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent even if a holder panicked: every update
        // is a single assignment or insert.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads the file again if it changed since it was last read.
    fn refresh(&self, state: &mut State) {
        let stamp = match fs::metadata(&self.path) {
            Ok(meta) => Stamp {
                dev: meta.dev(),
                ino: meta.ino(),
                len: meta.len(),
                mtime: meta.mtime(),
                mtime_nsec: meta.mtime_nsec(),
            },
            Err(e) => {
                state.stamp = None;
                state.current = Err(KekError::failed_precondition(format!(
                    "cannot read KEK file {}: {e}",
                    self.path.display()
                )));
                return;
            }
        };
        if state.stamp == Some(stamp) {
            return;
        }
        match read_key_file(&self.path).and_then(|key| expand(&key).map(|e| (key, e))) {
            Ok((key, (key_id, cipher))) => {
                if let Ok(old) = &state.current {
                    if *old != key_id {
                        // Key IDs are hashes of the KEKs, not secrets: the
                        // line an operator looks for after a rotation.
                        tracing::info!(
                            old = %old,
                            new = %key_id,
                            "the KEK file holds a new key: the key ID changed"
                        );
                    }
                }
                self.keep_replaced(state, &key_id);
                state.keys.entry(key_id.clone()).or_insert(cipher);
                state.current = Ok(key_id);
                state.current_key = Some(key);
                state.stamp = Some(stamp);
            }
            Err(e) => {
                state.stamp = None;
                state.current = Err(e);
            }
        }
    }

    /// A KEK file replaced by hand under a running plugin with a keyring:
    /// the KEK it held goes into the keyring, so that a restart still reads
    /// what it wrapped.
    fn keep_replaced(&self, state: &State, new_id: &str) {
        let (Some(keyring), Ok(old_id), Some(old)) =
            (&self.keyring, &state.current, &state.current_key)
        else {
            return;
        };
        if old_id != new_id {
            if let Err(e) = keyring.retire(old) {
                tracing::warn!(error = %e, "cannot keep the replaced KEK in the keyring");
            }
        }
    }

    /// The current key ID and its cipher, after checking the file (and
    /// recording a new key ID in the keyring).
    fn writer(&self) -> Result<(String, Arc<Aes256Gcm>), KekError> {
        let mut state = self.lock();
        self.refresh(&mut state);
        let key_id = state.current.clone()?;
        if let Some(keyring) = &self.keyring {
            if state.recorded.as_deref() != Some(key_id.as_str()) {
                // Wrapping goes on if the record cannot be written; the
                // next start then checks an older record.
                match keyring.record_writer(&key_id) {
                    Ok(()) => state.recorded = Some(key_id.clone()),
                    Err(e) => tracing::warn!(error = %e, "cannot record the key ID that wraps"),
                }
            }
        }
        let cipher = state
            .keys
            .get(&key_id)
            .cloned()
            .ok_or_else(|| KekError::internal("current KEK missing"))?;
        Ok((key_id, cipher))
    }

    /// The cipher for `key_id`, reading the file again once if it is unknown
    /// (the file may have changed since the last check).
    fn reader(&self, key_id: &str) -> Option<Arc<Aes256Gcm>> {
        let mut state = self.lock();
        if let Some(cipher) = state.keys.get(key_id) {
            return Some(Arc::clone(cipher));
        }
        self.refresh(&mut state);
        state.keys.get(key_id).cloned()
    }
}

impl Kek for LocalKek {
    fn key_id(&self) -> KekFuture<'_, String> {
        let result = self.writer().map(|(key_id, _)| key_id);
        Box::pin(std::future::ready(result))
    }

    fn wrap<'a>(&'a self, plaintext: &'a [u8]) -> KekFuture<'a, Wrapped> {
        let result = self.writer().and_then(|(key_id, cipher)| {
            let ciphertext = seal(&cipher, plaintext)?;
            Ok(Wrapped {
                ciphertext,
                key_id,
                annotations: BTreeMap::new(),
            })
        });
        Box::pin(std::future::ready(result))
    }

    fn unwrap<'a>(
        &'a self,
        key_id: &'a str,
        ciphertext: &'a [u8],
        _annotations: &'a BTreeMap<String, Vec<u8>>,
    ) -> KekFuture<'a, Zeroizing<Vec<u8>>> {
        let result = match self.reader(key_id) {
            None => Err(KekError::invalid_argument(format!(
                "unknown key ID {:?}",
                k8s_envelope::kms::clip_message(key_id)
            ))),
            Some(cipher) => open(&cipher, ciphertext).ok_or_else(|| {
                KekError::invalid_argument(
                    "the ciphertext does not decrypt with the KEK of its key ID",
                )
            }),
        };
        Box::pin(std::future::ready(result))
    }
}

impl fmt::Debug for LocalKek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("LocalKek")
            .field("path", &self.path)
            .field("current", &state.current)
            .field("key_ids", &state.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Reads and decodes a key file, refusing one that other users could read
/// or change (see [`read_private_file`]).
pub(super) fn read_key_file(path: &Path) -> Result<SecretKey, KekError> {
    let contents = read_private_file(path, "KEK file", MAX_KEY_FILE)?;
    let fail =
        |what: &str| KekError::failed_precondition(format!("KEK file {}: {what}", path.display()));
    let text = std::str::from_utf8(contents.trim_ascii())
        .map_err(|_| fail("not base64; expected 32 bytes in base64"))?;
    let key = SecretKey::from_base64(text)
        .map_err(|_| fail("not base64; expected 32 bytes in base64"))?;
    if key.len() != KEK_LEN {
        return Err(fail(&format!(
            "holds {} bytes; expected 32 bytes in base64",
            key.len()
        )));
    }
    Ok(key)
}

/// The key ID and cipher of a KEK.
fn expand(key: &SecretKey) -> Result<(String, Arc<Aes256Gcm>), KekError> {
    let cipher = Aes256Gcm::new_from_slice(key.expose())
        .map_err(|_| KekError::failed_precondition("the KEK must be 32 bytes"))?;
    Ok((LocalKek::key_id_of(key), Arc::new(cipher)))
}

/// `nonce(12) || ciphertext || tag(16)` of `plaintext`, under a random nonce.
fn seal(cipher: &Aes256Gcm, plaintext: &[u8]) -> Result<Vec<u8>, KekError> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce)
        .map_err(|_| KekError::internal("the random number generator failed"))?;
    seal_with_nonce(cipher, nonce, plaintext)
}

/// [`seal`] under a given nonce.
fn seal_with_nonce(
    cipher: &Aes256Gcm,
    nonce: [u8; NONCE_LEN],
    plaintext: &[u8],
) -> Result<Vec<u8>, KekError> {
    // Zeroizing: until it is encrypted in place the buffer holds the DEK,
    // and a failure would free it as it is.
    let mut out = Zeroizing::new(Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN));
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    let tag = cipher
        .encrypt_inout_detached(
            &Nonce::from(nonce),
            WRAP_AAD,
            (&mut out[NONCE_LEN..]).into(),
        )
        .map_err(|_| KekError::internal("the DEK is too long to wrap"))?;
    out.extend_from_slice(&tag);
    Ok(std::mem::take(&mut *out))
}

/// The plaintext of what [`seal`] returned, or `None` when it does not
/// authenticate (or is too short to hold a nonce and a tag).
fn open(cipher: &Aes256Gcm, sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let nonce: [u8; NONCE_LEN] = sealed.get(..NONCE_LEN)?.try_into().ok()?;
    let body = &sealed[NONCE_LEN..];
    let split = body.len().checked_sub(TAG_LEN)?;
    let tag: [u8; TAG_LEN] = body[split..].try_into().ok()?;
    let mut plaintext = Zeroizing::new(body[..split].to_vec());
    cipher
        .decrypt_inout_detached(
            &Nonce::from(nonce),
            WRAP_AAD,
            plaintext.as_mut_slice().into(),
            &Tag::from(tag),
        )
        .ok()?;
    Some(plaintext)
}

#[cfg(test)]
mod tests {
    use std::future::Future;

    use std::os::unix::fs::PermissionsExt as _;

    use super::*;
    use crate::KekErrorKind;
    use k8s_envelope::private_file;

    /// The wrap format, byte for byte, against an independent AES-256-GCM
    /// (Python's `cryptography`, OpenSSL): a fixed KEK (bytes 0 to 31), nonce
    /// (bytes 100 to 111) and DEK give exactly these bytes, and they unwrap.
    #[test]
    fn the_wrap_format_is_nonce_ciphertext_tag_with_its_aad() {
        let kek: Vec<u8> = (0..32).collect();
        let cipher = Aes256Gcm::new_from_slice(&kek).expect("32 bytes");
        let nonce: [u8; NONCE_LEN] = std::array::from_fn(|i| 100 + i as u8);
        let dek = b"a 32-byte DEK for the KAT test!!";
        let sealed = seal_with_nonce(&cipher, nonce, dek).expect("seal");
        let expected = "6465666768696a6b6c6d6e6f293bed54548b2fea5b421bad91450c9230e27262ee4cb8\
                        33f3f1d82d88d78469f947cd9e396370b3143812179dcd2c57";
        let hex: String = sealed.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, expected);
        assert_eq!(open(&cipher, &sealed).expect("open").as_slice(), dek);
        // Too short for a nonce and a tag, or one byte changed: refused.
        assert!(open(&cipher, &sealed[..NONCE_LEN + TAG_LEN - 1]).is_none());
        let mut tampered = sealed.clone();
        tampered[NONCE_LEN] ^= 1;
        assert!(open(&cipher, &tampered).is_none());
    }

    fn block_on<T>(f: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    fn write_key(path: &Path, byte: u8) -> SecretKey {
        let key = SecretKey::new(vec![byte; 32]);
        private_file::write(path, format!("  {}\n", key.to_base64().as_str()).as_bytes())
            .expect("write key");
        key
    }

    #[test]
    fn wrap_unwrap_and_rotation() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kek");
        let first = write_key(&path, 1);
        let kek = LocalKek::open(&path).expect("open");
        let id1 = block_on(kek.key_id()).expect("key id");
        assert_eq!(id1, LocalKek::key_id_of(&first));
        assert!(id1.starts_with("local-") && id1.len() == 38, "{id1}");

        let dek = [9u8; 32];
        let w1 = block_on(kek.wrap(&dek)).expect("wrap");
        assert_eq!(w1.key_id, id1);
        assert_eq!(w1.ciphertext.len(), 12 + 32 + 16);
        assert!(w1.annotations.is_empty());
        let w1b = block_on(kek.wrap(&dek)).expect("wrap");
        assert_ne!(w1.ciphertext, w1b.ciphertext, "random nonces");

        // Rotate: a new file moved over the old one.
        let next = dir.path().join("kek.new");
        write_key(&next, 2);
        fs::rename(&next, &path).expect("rename");
        let id2 = block_on(kek.key_id()).expect("key id");
        assert_ne!(id1, id2);
        let w2 = block_on(kek.wrap(&dek)).expect("wrap");
        assert_eq!(w2.key_id, id2);

        let empty = BTreeMap::new();
        for w in [&w1, &w2] {
            let plain = block_on(kek.unwrap(&w.key_id, &w.ciphertext, &empty)).expect("unwrap");
            assert_eq!(&plain[..], &dek);
        }
        // The wrong key ID, a flipped byte, an unknown key ID: refused.
        let err = block_on(kek.unwrap(&id2, &w1.ciphertext, &empty)).expect_err("wrong key");
        assert_eq!(err.kind(), KekErrorKind::InvalidArgument);
        let mut flipped = w2.ciphertext.clone();
        flipped[20] ^= 1;
        assert!(block_on(kek.unwrap(&id2, &flipped, &empty)).is_err());
        let err = block_on(kek.unwrap("local-nope", &w2.ciphertext, &empty)).expect_err("unknown");
        assert!(err.message().contains("unknown key ID"), "{err}");
    }

    /// With a keyring, a KEK file replaced by hand under the running plugin
    /// loses nothing: the replaced KEK goes into the keyring, and a restart
    /// reads what it wrapped.
    #[test]
    fn a_kek_replaced_while_running_is_kept_in_the_keyring() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kek");
        write_key(&path, 5);
        let keyring = Keyring::beside(&path);
        let kek = LocalKek::open(&path)
            .expect("open")
            .with_keyring(keyring.clone())
            .expect("keyring");
        let before = block_on(kek.wrap(b"seed-1")).expect("wrap");
        let next = dir.path().join("kek.new");
        write_key(&next, 6);
        fs::rename(&next, &path).expect("rename");
        let after = block_on(kek.wrap(b"seed-2")).expect("wrap");
        assert_ne!(before.key_id, after.key_id);
        drop(kek);

        let restarted = LocalKek::open(&path)
            .expect("open")
            .with_keyring(keyring)
            .expect("the last writer is the file's KEK");
        let empty = BTreeMap::new();
        for (wrapped, seed) in [(&before, &b"seed-1"[..]), (&after, b"seed-2")] {
            let plain = block_on(restarted.unwrap(&wrapped.key_id, &wrapped.ciphertext, &empty))
                .expect("unwrap after the restart");
            assert_eq!(&plain[..], seed);
        }
    }

    #[test]
    fn retired_keys_after_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let old = dir.path().join("old");
        let new = dir.path().join("new");
        write_key(&old, 3);
        write_key(&new, 4);
        let wrapped = block_on(LocalKek::open(&old).expect("open").wrap(b"seed")).expect("wrap");
        let kek = LocalKek::open(&new).expect("open");
        let empty = BTreeMap::new();
        assert!(block_on(kek.unwrap(&wrapped.key_id, &wrapped.ciphertext, &empty)).is_err());
        let kek = kek.with_retired_key_file(&old).expect("retired");
        let plain =
            block_on(kek.unwrap(&wrapped.key_id, &wrapped.ciphertext, &empty)).expect("unwrap");
        assert_eq!(&plain[..], b"seed");
        assert_ne!(block_on(kek.key_id()).expect("id"), wrapped.key_id);
    }

    #[test]
    fn broken_file_makes_it_unhealthy_but_readable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kek");
        write_key(&path, 5);
        let kek = LocalKek::open(&path).expect("open");
        let wrapped = block_on(kek.wrap(b"dek")).expect("wrap");
        private_file::write(&path, b"not base64!").expect("write");
        let err = block_on(kek.healthy()).expect_err("unhealthy");
        assert_eq!(err.kind(), KekErrorKind::FailedPrecondition);
        assert!(err.message().contains("not base64"), "{err}");
        assert!(block_on(kek.wrap(b"dek")).is_err());
        let plain = block_on(kek.unwrap(&wrapped.key_id, &wrapped.ciphertext, &BTreeMap::new()))
            .expect("still readable");
        assert_eq!(&plain[..], b"dek");
        fs::remove_file(&path).expect("remove");
        assert!(block_on(kek.key_id())
            .expect_err("missing")
            .message()
            .contains("cannot read"));
    }

    #[test]
    fn bad_key_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kek");
        for (contents, expected) in [
            ("c2hvcnQ=", "holds 5 bytes"),
            ("%%%", "not base64"),
            ("", "holds 0 bytes"),
        ] {
            private_file::write(&path, contents.as_bytes()).expect("write");
            let err = LocalKek::open(&path).expect_err(contents);
            assert!(err.message().contains(expected), "{contents}: {err}");
        }
        private_file::write(&path, &[b'A'; 5000]).expect("write");
        assert!(LocalKek::open(&path)
            .expect_err("large")
            .message()
            .contains("larger than 4 KiB"));
        assert!(LocalKek::open(dir.path().join("missing")).is_err());
    }

    /// Like ssh with a private key: a KEK file others can read or write,
    /// or one another user owns, is refused, saying how to fix it.
    #[test]
    fn key_files_others_can_read_or_own_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kek");
        write_key(&path, 6);
        LocalKek::open(&path).expect("0600 and ours");
        for mode in [0o644, 0o640, 0o604, 0o620, 0o602, 0o660] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
            let err = LocalKek::open(&path).expect_err("too open");
            assert_eq!(err.kind(), KekErrorKind::FailedPrecondition);
            assert!(err.message().contains(&format!("mode {mode:04o}")), "{err}");
            assert!(err.message().contains("chmod 600"), "{err}");
            assert!(!err
                .message()
                .contains(&SecretKey::new(vec![6; 32]).to_base64().as_str()[..8]));
        }
        fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).expect("chmod");
        LocalKek::open(&path).expect("read-only for its owner is fine");
        // Owned by someone else: only root can set that up.
        if rustix::process::geteuid().is_root() {
            std::os::unix::fs::chown(&path, Some(65534), None).expect("chown");
            let err = LocalKek::open(&path).expect_err("not ours");
            assert!(err.message().contains("owned by user 65534"), "{err}");
        }
    }

    /// A FIFO at the KEK path is refused at once: opening it would wait for
    /// a writer that never comes.
    #[test]
    fn a_fifo_at_the_key_path_is_refused_without_waiting() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kek");
        let made = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .expect("mkfifo");
        assert!(made.success());
        let (done, result) = std::sync::mpsc::channel();
        let opening = path.clone();
        std::thread::spawn(move || {
            let _ = done.send(LocalKek::open(&opening).map(|_| ()));
        });
        let result = result
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("LocalKek::open waited on the FIFO");
        let err = result.expect_err("a FIFO is no key file");
        assert!(err.message().contains("not a regular file"), "{err}");
    }
}
