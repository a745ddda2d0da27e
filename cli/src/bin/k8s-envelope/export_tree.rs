//! The directory tree `export --dir` writes plaintext objects into, which
//! another local user must not be able to redirect.
//!
//! Every directory is opened once, relative to its parent's descriptor,
//! with `O_NOFOLLOW | O_DIRECTORY`, and checked on that descriptor: it must
//! belong to the user this runs as and be writable by nobody else (so no
//! one else can rename or swap anything inside it). Files are created and
//! renamed into place relative to the same descriptors (`openat` with
//! `O_CREAT | O_EXCL | O_NOFOLLOW`, mode 0600, fsync, `renameat`, fsync of
//! the directory), so a path swapped while the export runs cannot move a
//! write, or a temporary file, outside the tree. It is the library's
//! private atomic writer (`k8s_envelope::private_file`) done through
//! directory descriptors, which the standard library (and so the library's
//! lean build) has no call for; `rustix` gives them without unsafe code.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write as _;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, Mode, OFlags, CWD};
use rustix::io::Errno;

/// Permissions of the directories it makes: its owner only.
const DIRECTORY_MODE: u32 = 0o700;
/// Permissions of the files it writes: its owner only.
const FILE_MODE: u32 = 0o600;

/// An export directory, open, and the directories under it opened so far.
pub struct ExportTree {
    root: PathBuf,
    root_fd: OwnedFd,
    dirs: HashMap<Vec<String>, OwnedFd>,
    user: u32,
}

impl ExportTree {
    /// Opens (creating it 0700 if missing) the export directory `root`,
    /// refusing a symbolic link, something else than a directory, or a
    /// directory another user owns or can write to.
    ///
    /// # Errors
    ///
    /// What is wrong with `root`, and what to do.
    pub fn open(root: &Path) -> Result<Self, String> {
        let user = rustix::process::geteuid().as_raw();
        let fd = open_dir(CWD, root)
            .or_else(|e| match e {
                Errno::NOENT => rustix::fs::mkdirat(CWD, root, Mode::from_raw_mode(DIRECTORY_MODE))
                    .or_else(|e| if e == Errno::EXIST { Ok(()) } else { Err(e) })
                    .and_then(|()| open_dir(CWD, root)),
                e => Err(e),
            })
            .map_err(|e| format!("--dir {}: {}", root.display(), why(e)))?;
        check_private(&fd, user).map_err(|why| format!("--dir {}: {why}", root.display()))?;
        Ok(Self {
            root: root.to_path_buf(),
            root_fd: fd,
            dirs: HashMap::new(),
            user,
        })
    }

    /// Writes `contents` to the file `relative` (directories, then the
    /// file's name) under the tree: directories made 0700 where missing,
    /// each checked; the file 0600, replaced atomically. Returns the file's
    /// path, for messages.
    ///
    /// # Errors
    ///
    /// A directory on the way that is not a private one of this user, or
    /// the file cannot be written (nothing is then left behind).
    pub fn write(&mut self, relative: &[String], contents: &[u8]) -> Result<PathBuf, String> {
        let (name, dirs) = relative.split_last().ok_or("an empty path")?;
        let path = relative.iter().fold(self.root.clone(), |p, s| p.join(s));
        self.open_dirs(dirs)?;
        let dir = match dirs {
            [] => &self.root_fd,
            _ => &self.dirs[dirs],
        };
        write_file(dir, name, contents).map_err(|e| format!("writing {}: {e}", path.display()))?;
        Ok(path)
    }

    /// Opens (making where missing) each directory of `dirs` in turn,
    /// remembering them.
    fn open_dirs(&mut self, dirs: &[String]) -> Result<(), String> {
        for depth in 1..=dirs.len() {
            let here = &dirs[..depth];
            if self.dirs.contains_key(here) {
                continue;
            }
            let parent = match depth {
                1 => &self.root_fd,
                _ => &self.dirs[&dirs[..depth - 1]],
            };
            let shown = here.iter().fold(self.root.clone(), |p, s| p.join(s));
            let fd = open_or_make_dir(parent, &here[depth - 1])
                .map_err(|e| format!("{}: {}", shown.display(), why(e)))?;
            check_private(&fd, self.user).map_err(|why| format!("{}: {why}", shown.display()))?;
            self.dirs.insert(here.to_vec(), fd);
        }
        Ok(())
    }
}

/// A directory, opened without following a symbolic link.
fn open_dir<Fd: std::os::fd::AsFd>(
    parent: Fd,
    name: impl rustix::path::Arg,
) -> Result<OwnedFd, Errno> {
    rustix::fs::openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

fn open_or_make_dir(parent: &OwnedFd, name: &str) -> Result<OwnedFd, Errno> {
    match open_dir(parent, name) {
        Err(Errno::NOENT) => {
            match rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(DIRECTORY_MODE)) {
                Ok(()) | Err(Errno::EXIST) => open_dir(parent, name),
                Err(e) => Err(e),
            }
        }
        other => other,
    }
}

/// Refuses a directory another user owns or can write to.
fn check_private(fd: &OwnedFd, user: u32) -> Result<(), String> {
    let stat = rustix::fs::fstat(fd).map_err(|e| e.to_string())?;
    if stat.st_uid != user {
        return Err(format!(
            "owned by user {}, not by the user this runs as ({user}): its owner could swap \
             what is in it while the export runs; export into a directory of your own",
            stat.st_uid
        ));
    }
    let mode = stat.st_mode & 0o7777;
    if mode & 0o022 != 0 {
        return Err(format!(
            "others can write to it (mode {mode:04o}): they could swap what is in it while \
             the export runs; use a directory of your own, or chmod go-w it"
        ));
    }
    Ok(())
}

/// What an error opening a directory means here.
fn why(e: Errno) -> String {
    match e {
        Errno::LOOP | Errno::NOTDIR => {
            "a symbolic link or a file where a directory belongs; not followed".to_owned()
        }
        e => std::io::Error::from(e).to_string(),
    }
}

/// Writes `name` in `dir` as a private file: a temporary file beside it,
/// created exclusively (0600, never through a link), written and synced,
/// renamed over `name`, and the directory synced.
fn write_file(dir: &OwnedFd, name: &str, contents: &[u8]) -> std::io::Result<()> {
    let temp = temp_name(name)?;
    let fd = rustix::fs::openat(
        dir,
        temp.as_str(),
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(FILE_MODE),
    )?;
    let written = (|| {
        let mut file = File::from(fd);
        file.write_all(contents)?;
        file.sync_all()?;
        rustix::fs::renameat(dir, temp.as_str(), dir, name)?;
        rustix::fs::fsync(dir)?;
        Ok(())
    })();
    if written.is_err() {
        let _ = rustix::fs::unlinkat(dir, temp.as_str(), AtFlags::empty());
    }
    written
}

/// `.NAME.RANDOM.tmp`: hidden, and no name another writer could guess.
fn temp_name(name: &str) -> std::io::Result<String> {
    let mut random = [0u8; 12];
    getrandom::fill(&mut random).map_err(|e| std::io::Error::other(e.to_string()))?;
    let random: String = random.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!(".{name}.{random}.tmp"))
}
