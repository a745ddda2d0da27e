//! [`Keyring`]: the retired KEKs of a [`LocalKek`](super::LocalKek), kept
//! on disk so that a restart still reads what they wrapped, and the key ID
//! that wrapped last, so that a plugin whose KEK was replaced by hand
//! refuses to start instead of serving values it cannot read.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use super::secret_file::check_private_directory;
use super::KekError;
use k8s_envelope::{private_file, SecretKey};

/// Permissions of the keyring directory: its owner only.
const DIRECTORY_MODE: u32 = 0o700;

/// The file naming the key ID that wrapped last.
const LAST_WRITER: &str = "last-writer";

/// The file rotations lock, one at a time (empty).
const LOCK: &str = ".lock";

/// Permissions of the lock file: its owner only, as the rest.
const LOCK_MODE: u32 = 0o600;

/// The extension of a retired KEK file in the keyring.
const RETIRED_EXTENSION: &str = "kek";

/// A directory of retired KEKs (`<key ID>.kek`, mode 0600, base64 as the
/// KEK file holds it) and `last-writer` (the key ID that wrapped last).
///
/// By default it sits beside the KEK file: `/etc/kms/kek.b64` has its
/// keyring in `/etc/kms/kek.b64.keyring/` ([`beside`](Self::beside)).
/// [`rotate`](Self::rotate) moves the current KEK in and writes a new one;
/// a plugin with the keyring reads every value any of them wrapped. To
/// retire a KEK for good, delete its file from the keyring once a scan
/// shows no value is written by it any more (`k8s-envelope scan`: the KMS
/// v2 key ID is in each value's header); values it wrapped are unreadable
/// from then on.
#[derive(Clone, Debug)]
pub struct Keyring {
    dir: PathBuf,
}

impl Keyring {
    /// The keyring of `kek_file`: `<kek_file>.keyring/`.
    pub fn beside(kek_file: &Path) -> Self {
        let mut dir = kek_file.as_os_str().to_owned();
        dir.push(".keyring");
        Self { dir: dir.into() }
    }

    /// A keyring in `dir`.
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The keyring's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Moves the KEK in `kek_file` into the keyring and writes a new random
    /// one to `kek_file` (each through the private atomic writer, the old
    /// KEK first, so that a crash between the two loses nothing). Returns
    /// the old and the new key ID. Rotations of one keyring run one at a
    /// time, under a lock on `<keyring>/.lock` (`flock`): two at once would
    /// both retire the same KEK, and the first one's new KEK, which a
    /// running plugin may already have wrapped with, could be replaced
    /// before anything kept it.
    ///
    /// # Errors
    ///
    /// The KEK file cannot be read (or is not private, see
    /// [`LocalKek::open`](super::LocalKek::open)), or the keyring or the
    /// KEK file cannot be written.
    pub fn rotate(&self, kek_file: &Path) -> Result<(String, String), KekError> {
        let _lock = self.lock()?;
        let old = super::local::read_key_file(kek_file)?;
        let old_id = self.retire(&old)?;
        let new = SecretKey::generate(32).map_err(|_| {
            KekError::internal("the operating system's random number generator failed")
        })?;
        let mut text = new.to_base64();
        text.push('\n');
        private_file::write(kek_file, text.as_bytes()).map_err(|e| {
            KekError::failed_precondition(format!("cannot write {}: {e}", kek_file.display()))
        })?;
        Ok((old_id, super::LocalKek::key_id_of(&new)))
    }

    /// Keeps `kek` in the keyring (as `<key ID>.kek`); returns its key ID.
    ///
    /// # Errors
    ///
    /// The keyring cannot be created or written.
    pub fn retire(&self, kek: &SecretKey) -> Result<String, KekError> {
        let key_id = super::LocalKek::key_id_of(kek);
        self.create()?;
        let mut text = kek.to_base64();
        text.push('\n');
        self.write_private(&self.retired_path(&key_id), text.as_bytes())?;
        Ok(key_id)
    }

    /// The retired KEKs (none when the directory does not exist).
    pub(super) fn retired(&self) -> Result<Vec<SecretKey>, KekError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.error("cannot read", &e)),
        };
        let mut keys = Vec::new();
        for entry in entries {
            let path = entry.map_err(|e| self.error("cannot read", &e))?.path();
            if path.extension().is_some_and(|e| e == RETIRED_EXTENSION) {
                keys.push(super::local::read_key_file(&path)?);
            }
        }
        Ok(keys)
    }

    /// The key ID that wrapped last, if one was recorded.
    pub(super) fn last_writer(&self) -> Result<Option<String>, KekError> {
        match fs::read_to_string(self.dir.join(LAST_WRITER)) {
            Ok(id) => Ok(Some(id.trim().to_owned())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.error("cannot read", &e)),
        }
    }

    /// Records the key ID that wraps from now on.
    pub(super) fn record_writer(&self, key_id: &str) -> Result<(), KekError> {
        self.create()?;
        self.write_private(
            &self.dir.join(LAST_WRITER),
            format!("{key_id}\n").as_bytes(),
        )
    }

    fn retired_path(&self, key_id: &str) -> PathBuf {
        self.dir.join(format!("{key_id}.{RETIRED_EXTENSION}"))
    }

    /// Creates the keyring's directory (0700), or checks the one there is
    /// private to the plugin's user before anything is kept in it.
    fn create(&self) -> Result<(), KekError> {
        match fs::DirBuilder::new().mode(DIRECTORY_MODE).create(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                check_private_directory(&self.dir, "keyring")
            }
            Err(e) => Err(self.error("cannot create", &e)),
        }
    }

    /// An exclusive lock on the keyring, held until the file is dropped
    /// (waiting for another process's rotation to end).
    fn lock(&self) -> Result<fs::File, KekError> {
        self.create()?;
        let path = self.dir.join(LOCK);
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(LOCK_MODE)
            .open(&path)
            .map_err(|e| self.error("cannot open the lock", &e))?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| self.error("cannot lock", &e.into()))?;
        Ok(file)
    }

    fn write_private(&self, path: &Path, contents: &[u8]) -> Result<(), KekError> {
        private_file::write(path, contents).map_err(|e| {
            KekError::failed_precondition(format!("cannot write {}: {e}", path.display()))
        })
    }

    fn error(&self, what: &str, e: &io::Error) -> KekError {
        KekError::failed_precondition(format!("keyring {}: {what}: {e}", self.dir.display()))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::{Arc, Barrier};

    use super::*;
    use crate::LocalKek;

    /// A keyring directory that others can write, or a symbolic link, is
    /// refused before a KEK is kept in it; the KEK file is left as it was.
    #[test]
    fn a_keyring_others_can_write_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let kek_file = dir.path().join("kek");
        let first = SecretKey::generate(32).expect("key");
        private_file::write(&kek_file, first.to_base64().as_bytes()).expect("kek");
        let shared = dir.path().join("shared");
        fs::create_dir(&shared).expect("mkdir");
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o777)).expect("chmod");
        let linked = dir.path().join("linked");
        std::os::unix::fs::symlink(dir.path(), &linked).expect("symlink");
        for (keyring, why) in [
            (&shared, "writable by group or others (mode 0777)"),
            (&linked, "not a directory"),
        ] {
            let e = Keyring::at(keyring).rotate(&kek_file).expect_err("refused");
            assert!(e.to_string().contains(why), "{e}");
            assert_eq!(
                fs::read(&kek_file).expect("kek"),
                first.to_base64().as_bytes(),
                "the KEK file changed"
            );
        }
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o755)).expect("chmod");
        // Owned by someone else: only root can set that up.
        if rustix::process::geteuid().is_root() {
            std::os::unix::fs::chown(&shared, Some(65534), None).expect("chown");
            let e = Keyring::at(&shared)
                .rotate(&kek_file)
                .expect_err("not ours");
            assert!(e.to_string().contains("owned by user 65534"), "{e}");
            std::os::unix::fs::chown(&shared, Some(0), None).expect("chown back");
        }
        Keyring::at(&shared)
            .rotate(&kek_file)
            .expect("a keyring others can only read");
    }

    /// Rotations at once (eight threads, as eight `rotate-kek` processes:
    /// each opens the lock file itself) lose no KEK: every KEK that was
    /// current at some moment is in the KEK file or in the keyring.
    /// Without the lock, two rotations retire the same KEK and the first
    /// one's new KEK is overwritten, kept nowhere.
    #[test]
    fn rotations_at_once_lose_no_kek() {
        const AT_ONCE: usize = 8;
        for _round in 0..10 {
            let dir = tempfile::tempdir().expect("tempdir");
            let kek_file = dir.path().join("kek");
            let first = SecretKey::generate(32).expect("key");
            private_file::write(
                &kek_file,
                format!("{}\n", first.to_base64().as_str()).as_bytes(),
            )
            .expect("write");
            let keyring = Keyring::beside(&kek_file);
            let barrier = Arc::new(Barrier::new(AT_ONCE));
            let rotations: Vec<_> = (0..AT_ONCE)
                .map(|_| {
                    let (keyring, kek_file, barrier) =
                        (keyring.clone(), kek_file.clone(), Arc::clone(&barrier));
                    std::thread::spawn(move || {
                        barrier.wait();
                        keyring.rotate(&kek_file).expect("rotate")
                    })
                })
                .collect();
            let written: Vec<String> = rotations
                .into_iter()
                .map(|r| r.join().expect("a rotation").1)
                .collect();
            let current =
                LocalKek::key_id_of(&super::super::local::read_key_file(&kek_file).expect("read"));
            let kept: HashSet<String> = keyring
                .retired()
                .expect("retired")
                .iter()
                .map(LocalKek::key_id_of)
                .collect();
            assert_eq!(kept.len(), AT_ONCE, "each rotation retired its own KEK");
            for id in &written {
                assert!(id == &current || kept.contains(id), "{id} was lost");
            }
        }
    }
}
