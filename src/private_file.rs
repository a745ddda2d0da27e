//! Files that can hold keys or plaintext: a configuration with its keys, a
//! dump of etcd (identity values are plaintext), a re-encryption checkpoint.
//! Every one of them is written here, and only here, so that
//!
//! - nobody else can read it: the file is created with mode 0600, so there
//!   is no moment at which it has other permissions;
//! - nobody else can choose what gets written: the temporary file has a
//!   random name in the target's directory and is created exclusively
//!   (`O_CREAT | O_EXCL`), which fails on anything already there, a
//!   symbolic link included, instead of following it;
//! - a crash leaves the old file or the new one, never half of one: the
//!   data is written to the temporary file and fsynced, the temporary file
//!   is renamed over the target, and the directory is fsynced so that the
//!   rename itself survives a power loss. A temporary file left behind by a
//!   crash is 0600 and named `.<target>.<random>.tmp`.
//!
//! One writer does the same through directory descriptors instead of
//! paths: `export --dir` in the CLI (`cli/src/bin/k8s-envelope/export_tree.rs`),
//! which writes a tree of plaintext objects that another local user must
//! not be able to redirect by swapping a directory while it runs. This
//! module takes paths, and the standard library has no `openat`.
//!
//! The new file replaces what is at the target's path: a symbolic link
//! there is replaced by the file (the file it pointed to is left alone),
//! and the file belongs to the user that writes it, with mode 0600,
//! whatever the old one's owner, group and mode were.
//!
//! ```
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("enc.yaml");
//! use std::io::Write as _;
//! use k8s_envelope::private_file::{self, PrivateFile};
//!
//! private_file::write(&path, b"kind: EncryptionConfiguration\n")?;
//!
//! // Or as it goes, for large outputs:
//! let mut file = PrivateFile::create(&path)?;
//! file.write_all(b"kind: EncryptionConfiguration\n")?;
//! file.commit()?; // dropped without commit: the target is left as it was
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! The other half, reading a secret from a file only its owner can read or
//! change (a KEK file, an HSM's PIN file), is only ever done by a KMS
//! plugin, and lives in the plugin kit: `k8s_envelope_kms_plugin::read_private_file`
//! (`kms-plugin/src/secret_file.rs`). It checks the file's owner against the
//! process's effective user ID, which the standard library cannot tell
//! without `unsafe` code: the kit has `rustix` for it, which this crate's
//! lean build (79 crates of its limit of 80) has no room for.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use zeroize::Zeroize as _;

/// How many random bytes name a temporary file (hex-encoded).
const RANDOM_NAME_BYTES: usize = 12;

/// Writes `contents` to `target` as a private file (see the module docs).
///
/// # Errors
///
/// The temporary file cannot be created, written or synced, or the rename
/// fails; the target is then left as it was.
pub fn write(target: impl AsRef<Path>, contents: &[u8]) -> io::Result<()> {
    let mut file = PrivateFile::create(target)?;
    // Straight to the file: no copy of the contents in a buffer.
    file.file_mut()?.write_all(contents)?;
    file.commit()
}

/// A private file being written: bytes go to a temporary file next to the
/// target, which [`commit`](Self::commit) renames over it. Dropped without
/// a commit, the temporary file is removed and the target is untouched.
///
/// Writes are buffered (8 KiB); the buffer is zeroed when the file is
/// committed or dropped, so what went through it (keys, plaintext) is not
/// left behind in freed memory.
#[derive(Debug)]
pub struct PrivateFile {
    target: PathBuf,
    temporary: PathBuf,
    file: Option<BufWriter<File>>,
}

impl PrivateFile {
    /// Creates the temporary file for `target`: in the target's directory,
    /// with a random name, exclusively, mode 0600.
    ///
    /// # Errors
    ///
    /// The directory is not writable, or the randomness for the name is not
    /// available.
    pub fn create(target: impl AsRef<Path>) -> io::Result<Self> {
        let target = target.as_ref().to_path_buf();
        let name = target.file_name().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "the target has no file name")
        })?;
        let mut random = [0u8; RANDOM_NAME_BYTES];
        getrandom::fill(&mut random).map_err(|_| {
            io::Error::other("the operating system's random number generator failed")
        })?;
        let mut temporary_name = std::ffi::OsString::from(".");
        temporary_name.push(shortened(name));
        temporary_name.push(".");
        for byte in random {
            temporary_name.push(format!("{byte:02x}"));
        }
        temporary_name.push(".tmp");
        let temporary = target.with_file_name(temporary_name);
        let file = private_options().open(&temporary)?;
        Ok(Self {
            target,
            temporary,
            file: Some(BufWriter::new(file)),
        })
    }

    /// The file this will replace.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Syncs the data, renames the temporary file over the target and syncs
    /// the directory.
    ///
    /// # Errors
    ///
    /// Writing, syncing or renaming failed; the temporary file is removed
    /// and the target is left as it was (unless only the last directory
    /// sync failed, after the rename).
    pub fn commit(mut self) -> io::Result<()> {
        let Some(mut writer) = self.file.take() else {
            return Err(io::Error::other("the private file was already closed"));
        };
        let flushed = writer.flush();
        let file = into_zeroed_parts(writer);
        let result = flushed
            .and_then(|()| file.sync_all())
            .and_then(|()| fs::rename(&self.temporary, &self.target));
        if let Err(e) = result {
            let _ = fs::remove_file(&self.temporary);
            return Err(e);
        }
        sync_directory(&self.target)
    }

    /// The temporary file itself, with everything written so far flushed
    /// to it: for formats that go back over what they wrote (an etcd
    /// snapshot's meta pages come first and its hash covers the whole
    /// file). Writes through [`Write`] go on at the file's position.
    ///
    /// # Errors
    ///
    /// Flushing failed, or the file was already closed.
    pub fn file_mut(&mut self) -> io::Result<&mut File> {
        let writer = self.writer()?;
        writer.flush()?;
        Ok(writer.get_mut())
    }

    fn writer(&mut self) -> io::Result<&mut BufWriter<File>> {
        self.file
            .as_mut()
            .ok_or_else(|| io::Error::other("the private file was already closed"))
    }
}

impl Write for PrivateFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer()?.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer()?.flush()
    }
}

impl Drop for PrivateFile {
    fn drop(&mut self) {
        // Not committed: what is buffered is never written.
        if let Some(writer) = self.file.take() {
            drop(into_zeroed_parts(writer));
            let _ = fs::remove_file(&self.temporary);
        }
    }
}

/// The file of `writer`, its buffer zeroed (the whole capacity) and freed,
/// without writing what is still buffered.
fn into_zeroed_parts(writer: BufWriter<File>) -> File {
    let (file, buffered) = writer.into_parts();
    if let Ok(mut buffer) = buffered {
        buffer.zeroize();
    }
    file
}

/// The longest part of the target's name a temporary name repeats: with
/// the dot, the random part and `.tmp` it stays under the 255 bytes a file
/// name may have, however long the target's name.
const KEPT_NAME_BYTES: usize = 200;

/// The target's name, cut to [`KEPT_NAME_BYTES`].
fn shortened(name: &std::ffi::OsStr) -> std::ffi::OsString {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt as _;
        let bytes = name.as_bytes();
        std::ffi::OsStr::from_bytes(&bytes[..bytes.len().min(KEPT_NAME_BYTES)]).to_owned()
    }
    #[cfg(not(unix))]
    {
        name.to_owned()
    }
}

/// Exclusive creation (`O_CREAT | O_EXCL`: an existing file or symbolic
/// link at the name fails instead of being opened or followed), mode 0600
/// from the start.
fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options
}

/// Makes a rename in the target's directory durable.
fn sync_directory(target: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        let directory = match target.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        File::open(directory)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = target;
        Ok(())
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::{symlink, PermissionsExt};

    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).expect("metadata").permissions().mode() & 0o777
    }

    #[test]
    fn writes_a_0600_file_over_the_old_one_and_leaves_nothing_else() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("out.yaml");
        fs::write(&target, "old").expect("old");
        fs::set_permissions(&target, fs::Permissions::from_mode(0o644)).expect("chmod");
        write(&target, b"new").expect("write");
        assert_eq!(fs::read(&target).expect("read"), b"new");
        assert_eq!(mode(&target), 0o600);
        let names: Vec<_> = fs::read_dir(dir.path()).expect("dir").collect();
        assert_eq!(names.len(), 1, "a temporary file was left behind");
    }

    #[test]
    fn an_uncommitted_file_leaves_the_target_as_it_was() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("out.yaml");
        fs::write(&target, "old").expect("old");
        {
            let mut file = PrivateFile::create(&target).expect("create");
            file.write_all(b"half of the new").expect("write");
            assert_eq!(mode(&file.temporary), 0o600);
        }
        assert_eq!(fs::read(&target).expect("read"), b"old");
        assert_eq!(fs::read_dir(dir.path()).expect("dir").count(), 1);
    }

    #[test]
    fn a_target_with_a_name_of_250_bytes_is_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("n".repeat(250));
        write(&path, b"long").expect("write");
        assert_eq!(fs::read(&path).expect("read"), b"long");
    }

    #[test]
    fn a_symbolic_link_at_the_temporary_name_is_not_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let victim = dir.path().join("victim");
        fs::write(&victim, "untouched").expect("victim");
        let target = dir.path().join("out.yaml");
        // Creation is exclusive: a link planted at the name is refused, and
        // what it points to is never opened.
        let mut file = PrivateFile::create(&target).expect("create");
        let planted = file.temporary.clone();
        drop(file.file.take());
        fs::remove_file(&planted).expect("remove");
        symlink(&victim, &planted).expect("symlink");
        assert_eq!(
            private_options()
                .open(&planted)
                .expect_err("exclusive")
                .kind(),
            io::ErrorKind::AlreadyExists
        );
        assert_eq!(fs::read(&victim).expect("read"), b"untouched");
        // Names are random, so a second file does not meet the planted one.
        let other = PrivateFile::create(&target).expect("create");
        assert_ne!(other.temporary, planted);
    }
}
