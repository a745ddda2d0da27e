//! KMS plugin endpoints: `unix:///path` or `unix:///@abstract-name`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::kms::{KmsError, KmsErrorKind};
use crate::Error;

/// Where a KMS plugin listens: a unix socket file, or a name in Linux's
/// abstract socket namespace.
///
/// Parsed from the `endpoint` of a KMS provider the way kube-apiserver reads
/// it: `unix:///path/to/socket` for a socket file, `unix:///@name` for the
/// abstract socket `name`. Percent-escapes in the path are decoded.
///
/// ```
/// use k8s_envelope::kms::KmsEndpoint;
///
/// let file: KmsEndpoint = "unix:///var/run/kms.sock".parse()?;
/// assert_eq!(file.socket_path(), Some(std::path::Path::new("/var/run/kms.sock")));
///
/// let abstract_socket: KmsEndpoint = "unix:///@kms-plugin".parse()?;
/// assert_eq!(abstract_socket.abstract_name(), Some(&b"kms-plugin"[..]));
/// assert_eq!(abstract_socket.to_string(), "unix:///@kms-plugin");
///
/// assert!("tcp://127.0.0.1:9000".parse::<KmsEndpoint>().is_err());
/// # Ok::<(), k8s_envelope::Error>(())
/// ```
///
/// Deliberate differences from kube-apiserver, which accepts these and then
/// fails to dial: a host (`unix://host/path`, `unix://relative`), a relative
/// or empty path, a query or a fragment are rejected here.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct KmsEndpoint(Addr);

/// The two kinds of unix socket address.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) enum Addr {
    /// A socket file.
    Path(PathBuf),
    /// A name in the abstract namespace (without the leading NUL or `@`).
    Abstract(Vec<u8>),
}

impl KmsEndpoint {
    /// Parses `unix:///path` or `unix:///@name`.
    ///
    /// # Errors
    ///
    /// [`Error::Kms`] with [`KmsErrorKind::InvalidEndpoint`] for an empty
    /// string, a scheme other than `unix`, a host, a relative or empty path,
    /// a query, a fragment, or a bad percent-escape.
    pub fn parse(endpoint: &str) -> Result<Self, Error> {
        parse(endpoint).map_err(|reason| {
            KmsError::new(KmsErrorKind::InvalidEndpoint(reason))
                .at(endpoint)
                .into()
        })
    }

    /// A socket file at `path`, which must be absolute.
    ///
    /// # Errors
    ///
    /// [`KmsErrorKind::InvalidEndpoint`] when `path` is not absolute.
    pub fn socket_file(path: impl Into<PathBuf>) -> Result<Self, Error> {
        let path = path.into();
        if !path.is_absolute() {
            return Err(KmsError::new(KmsErrorKind::InvalidEndpoint(
                "the socket path must be absolute".into(),
            ))
            .at(path.display())
            .into());
        }
        Ok(Self(Addr::Path(path)))
    }

    /// The abstract socket `name` (Linux only; without a leading `@`).
    ///
    /// # Errors
    ///
    /// [`KmsErrorKind::InvalidEndpoint`] for an empty name.
    pub fn abstract_socket(name: impl Into<Vec<u8>>) -> Result<Self, Error> {
        let name = name.into();
        if name.is_empty() {
            return Err(KmsError::new(KmsErrorKind::InvalidEndpoint(
                "the abstract socket name is empty".into(),
            ))
            .into());
        }
        Ok(Self(Addr::Abstract(name)))
    }

    /// The socket file, for a file endpoint.
    pub fn socket_path(&self) -> Option<&Path> {
        match &self.0 {
            Addr::Path(path) => Some(path),
            Addr::Abstract(_) => None,
        }
    }

    /// The abstract name (without `@`), for an abstract endpoint.
    pub fn abstract_name(&self) -> Option<&[u8]> {
        match &self.0 {
            Addr::Path(_) => None,
            Addr::Abstract(name) => Some(name),
        }
    }

    /// The endpoint as a `std` unix socket address, to bind a plugin's
    /// listener to or to dial (a socket file or, on Linux, an abstract name).
    ///
    /// # Errors
    ///
    /// The path is too long for a socket address, or the endpoint is
    /// abstract on a system without abstract sockets.
    #[cfg(all(unix, feature = "grpc"))]
    pub fn socket_addr(&self) -> std::io::Result<std::os::unix::net::SocketAddr> {
        match &self.0 {
            Addr::Path(path) => std::os::unix::net::SocketAddr::from_pathname(path),
            Addr::Abstract(name) => abstract_addr(name),
        }
    }

    /// The address to dial or bind.
    #[cfg(all(unix, feature = "grpc"))]
    pub(crate) fn addr(&self) -> &Addr {
        &self.0
    }
}

impl FromStr for KmsEndpoint {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Self::parse(s)
    }
}

impl fmt::Display for KmsEndpoint {
    /// The endpoint as a `unix://` URL that [`KmsEndpoint::parse`] reads
    /// back: `%`, `?` and `#` are percent-escaped (non-UTF-8 bytes are shown
    /// lossily).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (prefix, text) = match &self.0 {
            Addr::Path(path) => ("unix://", path.to_string_lossy()),
            Addr::Abstract(name) => ("unix:///@", String::from_utf8_lossy(name)),
        };
        f.write_str(prefix)?;
        for c in text.chars() {
            match c {
                '%' => f.write_str("%25")?,
                '?' => f.write_str("%3F")?,
                '#' => f.write_str("%23")?,
                c => write!(f, "{c}")?,
            }
        }
        Ok(())
    }
}

impl fmt::Debug for KmsEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KmsEndpoint({self})")
    }
}

/// The parser behind [`KmsEndpoint::parse`]; the error is the reason.
fn parse(endpoint: &str) -> Result<KmsEndpoint, String> {
    if endpoint.is_empty() {
        return Err("remote KMS provider can't use empty string as endpoint".into());
    }
    let Some((scheme, rest)) = endpoint.split_once(':') else {
        return Err("unsupported scheme \"\" for remote KMS provider".into());
    };
    if !scheme.eq_ignore_ascii_case("unix") {
        return Err(format!(
            "unsupported scheme {:?} for remote KMS provider",
            scheme.to_ascii_lowercase()
        ));
    }
    if rest.contains(['?', '#']) {
        return Err("a query or fragment is not allowed in a unix endpoint".into());
    }
    let path = match rest.strip_prefix("//") {
        Some(after) => {
            let (host, path) = after.split_at(after.find('/').unwrap_or(after.len()));
            if !host.is_empty() {
                return Err(format!(
                    "unexpected host {host:?}: use unix:///absolute/path or unix:///@name"
                ));
            }
            path
        }
        None => rest,
    };
    if path.is_empty() {
        return Err("the socket path is empty".into());
    }
    if !path.starts_with('/') {
        return Err("the socket path must be absolute: use unix:///absolute/path".into());
    }
    let path = percent_decode(path)?;
    if let Some(name) = path.strip_prefix(b"/@") {
        if name.is_empty() {
            return Err("the abstract socket name is empty".into());
        }
        return Ok(KmsEndpoint(Addr::Abstract(name.to_vec())));
    }
    if path.contains(&0) {
        return Err("the socket path contains a NUL byte".into());
    }
    Ok(KmsEndpoint(Addr::Path(bytes_to_path(path))))
}

/// Decodes `%XX` escapes, as Go's `url.Parse` does for the path.
fn percent_decode(s: &str) -> Result<Vec<u8>, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match hex {
                Some(b) => out.push(b),
                None => return Err("invalid percent-escape in the socket path".into()),
            }
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

#[cfg(unix)]
fn bytes_to_path(bytes: Vec<u8>) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    PathBuf::from(std::ffi::OsString::from_vec(bytes))
}

#[cfg(not(unix))]
fn bytes_to_path(bytes: Vec<u8>) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(&bytes).into_owned())
}

/// The `std` address of the abstract socket `name`.
#[cfg(all(feature = "grpc", any(target_os = "linux", target_os = "android")))]
pub(crate) fn abstract_addr(name: &[u8]) -> std::io::Result<std::os::unix::net::SocketAddr> {
    #[cfg(target_os = "android")]
    use std::os::android::net::SocketAddrExt;
    #[cfg(target_os = "linux")]
    use std::os::linux::net::SocketAddrExt;
    std::os::unix::net::SocketAddr::from_abstract_name(name)
}

/// Abstract sockets exist on Linux only.
#[cfg(all(
    feature = "grpc",
    unix,
    not(any(target_os = "linux", target_os = "android"))
))]
pub(crate) fn abstract_addr(_name: &[u8]) -> std::io::Result<std::os::unix::net::SocketAddr> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "abstract unix sockets exist only on Linux",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The address to bind or dial: a file's path, or the abstract name; a
    /// path too long for a socket address is an error, not a cut path.
    #[cfg(all(feature = "grpc", target_os = "linux"))]
    #[test]
    fn socket_addresses() {
        let file = KmsEndpoint::socket_file("/run/kms.sock").expect("endpoint");
        let addr = file.socket_addr().expect("a short path fits");
        assert_eq!(addr.as_pathname(), Some(Path::new("/run/kms.sock")));
        let named = KmsEndpoint::abstract_socket("kms").expect("endpoint");
        use std::os::linux::net::SocketAddrExt as _;
        let addr = named.socket_addr().expect("an abstract name");
        assert_eq!(addr.as_abstract_name(), Some(&b"kms"[..]));
        let long = KmsEndpoint::socket_file(format!("/{}", "d".repeat(200))).expect("endpoint");
        assert!(long.socket_addr().is_err());
    }

    fn reason(endpoint: &str) -> String {
        match KmsEndpoint::parse(endpoint) {
            Err(Error::Kms(e)) => match e.kind() {
                KmsErrorKind::InvalidEndpoint(reason) => reason.clone(),
                other => panic!("{endpoint}: unexpected kind {other:?}"),
            },
            other => panic!("{endpoint}: expected an error, got {other:?}"),
        }
    }

    #[test]
    fn socket_files() {
        for (endpoint, path) in [
            ("unix:///tmp/kms.sock", "/tmp/kms.sock"),
            ("unix:/tmp/kms.sock", "/tmp/kms.sock"),
            ("UNIX:///tmp/kms.sock", "/tmp/kms.sock"),
            ("unix:///tmp/a%20b.sock", "/tmp/a b.sock"),
            ("unix:///", "/"),
        ] {
            let parsed = KmsEndpoint::parse(endpoint).expect(endpoint);
            assert_eq!(parsed.socket_path(), Some(Path::new(path)), "{endpoint}");
            assert_eq!(parsed.abstract_name(), None);
        }
    }

    #[test]
    fn abstract_sockets() {
        let parsed = KmsEndpoint::parse("unix:///@kms").expect("parse");
        assert_eq!(parsed.abstract_name(), Some(&b"kms"[..]));
        assert_eq!(parsed.socket_path(), None);
        assert_eq!(parsed.to_string(), "unix:///@kms");
        assert_eq!(
            KmsEndpoint::parse("unix:///@a/b")
                .expect("parse")
                .abstract_name(),
            Some(&b"a/b"[..])
        );
    }

    #[test]
    fn rejected() {
        assert_eq!(
            reason(""),
            "remote KMS provider can't use empty string as endpoint"
        );
        assert_eq!(
            reason("tcp://127.0.0.1:80"),
            "unsupported scheme \"tcp\" for remote KMS provider"
        );
        assert_eq!(
            reason("http:///path"),
            "unsupported scheme \"http\" for remote KMS provider"
        );
        assert!(reason("/tmp/kms.sock").contains("unsupported scheme"));
        assert!(reason("unix://").contains("empty"));
        assert!(reason("unix:").contains("empty"));
        assert!(reason("unix://relative").contains("unexpected host"));
        assert!(reason("unix://host/tmp/kms.sock").contains("unexpected host"));
        assert!(reason("unix:relative").contains("absolute"));
        assert!(reason("unix:///@").contains("abstract socket name is empty"));
        assert!(reason("unix:///tmp/kms.sock?x=1").contains("query"));
        assert!(reason("unix:///tmp/kms.sock#x").contains("fragment"));
        assert!(reason("unix:///tmp/%zz").contains("percent"));
        assert!(reason("unix:///tmp/%00").contains("NUL"));
    }

    #[test]
    fn display_round_trips() {
        for endpoint in [
            "unix:///tmp/kms.sock",
            "unix:///@kms",
            "unix:///tmp/100%25%3F%23.sock",
        ] {
            let parsed = KmsEndpoint::parse(endpoint).expect(endpoint);
            assert_eq!(parsed.to_string(), endpoint);
            assert_eq!(
                KmsEndpoint::parse(&parsed.to_string()).expect("again"),
                parsed
            );
        }
    }

    #[test]
    fn constructors() {
        assert!(KmsEndpoint::socket_file("relative.sock").is_err());
        assert!(KmsEndpoint::abstract_socket("").is_err());
        assert_eq!(
            KmsEndpoint::socket_file("/run/kms.sock")
                .expect("absolute")
                .to_string(),
            "unix:///run/kms.sock"
        );
    }
}
