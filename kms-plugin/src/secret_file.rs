//! Secrets read from files that only their owner can read or change (a KEK
//! file, an HSM's PIN file), as ssh treats private keys. Files are written
//! the other way round, private from their first byte, by the library's
//! [`k8s_envelope::private_file`], as `keygen --out` and the keyring do.

use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use zeroize::Zeroizing;

use super::KekError;

/// Reads the secret in the file at `path`, at most `max_len` bytes,
/// refusing a file that is not a regular file, that its group or others can
/// read or write, or that a user other than the running one owns.
///
/// `what` names the file in errors (`"KEK file"`, `"PIN file"`); errors name
/// the path and what is wrong, never the contents. The bytes come back in a
/// buffer sized up front (so no reallocation leaves a copy behind) and wiped
/// on drop.
///
/// ```no_run
/// use k8s_envelope_kms_plugin::read_private_file;
///
/// let pin = read_private_file("/etc/kms/pin".as_ref(), "PIN file", 256)?;
/// # Ok::<(), k8s_envelope_kms_plugin::KekError>(())
/// ```
///
/// # Errors
///
/// [`KekErrorKind::FailedPrecondition`](super::KekErrorKind::FailedPrecondition)
/// with the reason (and how to fix a mode or owner).
pub fn read_private_file(
    path: &Path,
    what: &str,
    max_len: u64,
) -> Result<Zeroizing<Vec<u8>>, KekError> {
    let fail =
        |why: &str| KekError::failed_precondition(format!("{what} {}: {why}", path.display()));
    // Not opened unless it is a regular file: opening a FIFO would wait
    // for a writer (checked again on the open file below).
    let kind = fs::metadata(path).map_err(|e| fail(&format!("cannot read: {e}")))?;
    if !kind.is_file() {
        return Err(fail("not a regular file"));
    }
    let file = fs::File::open(path).map_err(|e| fail(&format!("cannot read: {e}")))?;
    // Checked on the open file, so a swap of the path after the check
    // cannot slip another file in.
    let meta = file
        .metadata()
        .map_err(|e| fail(&format!("cannot read: {e}")))?;
    if !meta.is_file() {
        return Err(fail("not a regular file"));
    }
    check_private(&meta).map_err(|why| fail(&why))?;
    let capacity = usize::try_from(max_len)
        .unwrap_or(usize::MAX)
        .saturating_add(1);
    let mut contents = Zeroizing::new(Vec::with_capacity(capacity));
    file.take(max_len.saturating_add(1))
        .read_to_end(&mut contents)
        .map_err(|e| fail(&format!("cannot read: {e}")))?;
    if contents.len() as u64 > max_len {
        return Err(fail(&format!("larger than {}", size(max_len))));
    }
    Ok(contents)
}

/// `4 KiB`, `256 bytes`.
fn size(len: u64) -> String {
    if len >= 1024 && len.is_multiple_of(1024) {
        format!("{} KiB", len / 1024)
    } else {
        format!("{len} bytes")
    }
}

/// Refuses a directory (a keyring) that a user other than the running one
/// owns, or that its group or others can write: they could remove or
/// replace what is kept there (a retired KEK, still needed to read old
/// values). `what` names it in errors.
pub(crate) fn check_private_directory(path: &Path, what: &str) -> Result<(), KekError> {
    let fail =
        |why: &str| KekError::failed_precondition(format!("{what} {}: {why}", path.display()));
    let meta = fs::symlink_metadata(path).map_err(|e| fail(&format!("cannot read: {e}")))?;
    if !meta.is_dir() {
        return Err(fail("not a directory (a symbolic link is not followed)"));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o022 != 0 {
        return Err(fail(&format!(
            "writable by group or others (mode {mode:04o}); it must be private to its owner: \
             chmod 700 it"
        )));
    }
    owned_by_us(&meta).map_err(|why| fail(&why))
}

/// Refuses a file that group or others can read or write, or that another
/// user owns, with how to fix it.
fn check_private(meta: &fs::Metadata) -> Result<(), String> {
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "readable or writable by group or others (mode {mode:04o}); it must be private \
             to its owner: chmod 600 it"
        ));
    }
    owned_by_us(meta)
}

/// Refuses what a user other than the one the plugin runs as owns.
fn owned_by_us(meta: &fs::Metadata) -> Result<(), String> {
    let user = rustix::process::geteuid().as_raw();
    if meta.uid() != user {
        return Err(format!(
            "owned by user {}, not by the user the plugin runs as ({user}): chown it to that \
             user, or run the plugin as its owner",
            meta.uid()
        ));
    }
    Ok(())
}
