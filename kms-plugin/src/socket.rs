//! The plugin's listening socket: never reachable by another user, created
//! with mode 0600 (in a missing directory, created 0700 as a daemon would),
//! replacing a stale socket file, and removed again on shutdown.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tokio::net::{UnixListener, UnixStream};

use k8s_envelope::kms::KmsEndpoint;

/// Permissions of the socket file: owner read and write only.
const SOCKET_MODE: u32 = 0o600;

/// Permissions of a directory made for the socket: its owner only.
const PRIVATE_DIRECTORY_MODE: u32 = 0o700;

/// The endpoint a plugin's `--socket` argument names: a `unix://`
/// endpoint, `@name` for an abstract socket, or a socket path (a relative
/// one is taken from the current directory, so the socket stays where it
/// was asked for whatever the process does next).
///
/// ```
/// use k8s_envelope_kms_plugin::socket_endpoint;
///
/// let e = socket_endpoint("/run/kms.sock")?;
/// assert_eq!(e.to_string(), "unix:///run/kms.sock");
/// assert_eq!(socket_endpoint("@kms")?.to_string(), "unix:///@kms");
/// assert_eq!(socket_endpoint("unix:///run/kms.sock")?, e);
/// # Ok::<(), k8s_envelope::Error>(())
/// ```
///
/// # Errors
///
/// As [`KmsEndpoint::parse`] for a `unix:` argument; an empty abstract name.
pub fn socket_endpoint(arg: &str) -> Result<KmsEndpoint, k8s_envelope::Error> {
    if arg.starts_with("unix:") {
        KmsEndpoint::parse(arg)
    } else if let Some(name) = arg.strip_prefix('@') {
        KmsEndpoint::abstract_socket(name)
    } else {
        let path = PathBuf::from(arg);
        let path = match std::env::current_dir() {
            Ok(cwd) if path.is_relative() => cwd.join(path),
            _ => path,
        };
        KmsEndpoint::socket_file(path)
    }
}

/// A bound listener and, for a socket file, the file to remove later.
pub(super) struct Bound {
    pub(super) listener: UnixListener,
    pub(super) file: Option<SocketFile>,
}

/// A socket file this process created, identified by device and inode so
/// that a file another process put at the same path is never removed.
#[derive(Debug)]
pub(super) struct SocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl SocketFile {
    /// Removes the file if it is still the one this process created.
    pub(super) fn remove(&self) -> io::Result<()> {
        match fs::symlink_metadata(&self.path) {
            Ok(meta) if meta.dev() == self.dev && meta.ino() == self.ino => {
                fs::remove_file(&self.path)
            }
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// Binds `endpoint`. Must run inside a Tokio runtime.
pub(super) async fn bind(endpoint: &KmsEndpoint) -> io::Result<Bound> {
    match endpoint.socket_path() {
        Some(path) => bind_file(path).await,
        None => {
            // An abstract socket: no file, no permissions; any process in
            // the same network namespace can connect.
            let listener = UnixListener::bind_addr(&endpoint.socket_addr()?.into())?;
            Ok(Bound {
                listener,
                file: None,
            })
        }
    }
}

/// Binds a socket file with mode 0600.
///
/// The socket is bound inside a fresh directory of mode 0700 next to `path`
/// (nobody else can reach a socket in it, whatever the umask made of the
/// socket's own mode), given its mode, and renamed over `path`; so it is
/// never reachable with looser permissions, and a stale socket is replaced
/// atomically. A missing directory of `path` is created 0700. An existing
/// `path` that is not a socket is left alone (error), and so is a socket
/// another process still serves.
async fn bind_file(path: &Path) -> io::Result<Bound> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(PRIVATE_DIRECTORY_MODE)
            .create(dir)?;
    }
    match fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_socket() => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{} exists and is not a socket; refusing to replace it",
                    path.display()
                ),
            ));
        }
        Ok(_) => {
            if UnixStream::connect(path).await.is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("another process is serving on {}", path.display()),
                ));
            }
            // A stale socket: replaced below.
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }

    let staging = dir.join(temporary_name()?);
    fs::DirBuilder::new()
        .mode(PRIVATE_DIRECTORY_MODE)
        .create(&staging)?;
    let temporary = staging.join("s");
    let bound = UnixListener::bind(&temporary);
    let listener = match bound {
        Ok(listener) => {
            let secured = fs::set_permissions(&temporary, fs::Permissions::from_mode(SOCKET_MODE))
                .and_then(|()| fs::rename(&temporary, path));
            if let Err(e) = secured {
                let _ = fs::remove_file(&temporary);
                let _ = fs::remove_dir(&staging);
                return Err(e);
            }
            let _ = fs::remove_dir(&staging);
            listener
        }
        // The staging directory made the path too long for a socket
        // address while `path` itself may fit: bind in place, then restrict
        // (the one case with a window between bind and chmod).
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
            let _ = fs::remove_dir(&staging);
            remove_stale(path)?;
            let listener = UnixListener::bind(path)?;
            fs::set_permissions(path, fs::Permissions::from_mode(SOCKET_MODE))?;
            listener
        }
        Err(e) => {
            let _ = fs::remove_dir(&staging);
            return Err(e);
        }
    };
    let meta = fs::symlink_metadata(path)?;
    Ok(Bound {
        listener,
        file: Some(SocketFile {
            path: path.to_path_buf(),
            dev: meta.dev(),
            ino: meta.ino(),
        }),
    })
}

/// A short random name for the staging directory of the socket.
fn temporary_name() -> io::Result<String> {
    let mut bytes = [0u8; 4];
    getrandom::fill(&mut bytes).map_err(io::Error::other)?;
    Ok(format!(".kms-{:08x}", u32::from_be_bytes(bytes)))
}

/// Removes `path` if it is a socket.
fn remove_stale(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => fs::remove_file(path),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{} exists and is not a socket; refusing to replace it",
                path.display()
            ),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}
