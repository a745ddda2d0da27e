//! How to reach etcd: endpoints, timeouts and TLS (a CA, and a client
//! certificate and key for mTLS), and the tonic endpoint they make.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
use zeroize::Zeroizing;

use crate::store::StoreError;

/// Where and how to reach etcd.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct EtcdOptions {
    /// Client URLs: `http://127.0.0.1:2379`, or `https://…` with [`tls`](Self::tls).
    /// Several are the members of one cluster: calls go to the first until
    /// it stops answering, then to the next.
    pub endpoints: Vec<String>,
    /// TLS settings; required for `https://` endpoints.
    pub tls: Option<EtcdTls>,
    /// How long to wait for a connection. Default 5 s.
    pub connect_timeout: Duration,
    /// How long one attempt of a call may take before it is tried on the
    /// next member. Default 10 s.
    pub request_timeout: Duration,
    /// How long a call keeps trying (every member in turn, with a backoff)
    /// while none answers, before it fails. Default 60 s.
    pub outage_limit: Duration,
}

impl Default for EtcdOptions {
    /// etcd's own default client URL, `http://127.0.0.1:2379`, without TLS.
    fn default() -> Self {
        Self::new(["http://127.0.0.1:2379"])
    }
}

impl EtcdOptions {
    /// Options for `endpoints`, without TLS, with the default timeouts.
    pub fn new(endpoints: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            tls: None,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            outage_limit: Duration::from_secs(60),
        }
    }

    /// The same options with TLS.
    pub fn with_tls(mut self, tls: EtcdTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// These options with another `endpoints`: client URLs: `http://127.0.0.1:2379`, or `https://…` with [`tls`](Self::tls).
    pub fn with_endpoints(mut self, endpoints: Vec<String>) -> Self {
        self.endpoints = endpoints;
        self
    }

    /// These options with another `connect_timeout`: how long to wait for a connection.
    pub fn with_connect_timeout(mut self, connect_timeout: Duration) -> Self {
        self.connect_timeout = connect_timeout;
        self
    }

    /// These options with another `request_timeout`: how long one attempt of a call may take.
    pub fn with_request_timeout(mut self, request_timeout: Duration) -> Self {
        self.request_timeout = request_timeout;
        self
    }

    /// These options with another `outage_limit`: how long a call keeps
    /// trying while no member answers.
    pub fn with_outage_limit(mut self, outage_limit: Duration) -> Self {
        self.outage_limit = outage_limit;
        self
    }
}

/// TLS for etcd, as a kube-apiserver's `--etcd-cafile`, `--etcd-certfile`
/// and `--etcd-keyfile` give it: the CA that signed the servers'
/// certificates, and for mutual TLS a client certificate and its key.
///
/// The key is held in a zeroizing buffer; the TLS library's copy is not.
/// `Debug` shows which parts are set, never their contents.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct EtcdTls {
    /// The CA certificate(s), PEM.
    pub ca_pem: Vec<u8>,
    /// The client certificate chain, PEM (mutual TLS).
    pub cert_pem: Option<Vec<u8>>,
    /// The client certificate's private key, PEM (mutual TLS).
    pub key_pem: Option<Zeroizing<Vec<u8>>>,
    /// The name to check the server's certificate against, when it is not
    /// the endpoint's host.
    pub server_name: Option<String>,
}

impl EtcdTls {
    /// Reads the CA and, for mutual TLS, the client certificate and key.
    ///
    /// # Errors
    ///
    /// [`StoreError::Io`] when a file cannot be read, and
    /// [`StoreError::Config`] when a certificate and a key are not given
    /// together or a file holds no PEM block of the expected kind.
    pub fn from_files(
        ca: &Path,
        cert: Option<&Path>,
        key: Option<&Path>,
    ) -> Result<Self, StoreError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|source| StoreError::Io {
                path: path.to_owned(),
                source,
            })
        };
        let tls = Self {
            ca_pem: read(ca)?,
            cert_pem: cert.map(read).transpose()?,
            key_pem: key.map(read).transpose()?.map(Zeroizing::new),
            server_name: None,
        };
        tls.check()?;
        Ok(tls)
    }

    pub(super) fn check(&self) -> Result<(), StoreError> {
        let bad = |reason: &str| StoreError::Config {
            endpoint: "tls".to_owned(),
            reason: reason.to_owned(),
        };
        if !contains(&self.ca_pem, b"-----BEGIN CERTIFICATE-----") {
            return Err(bad("the CA file holds no PEM certificate"));
        }
        match (&self.cert_pem, &self.key_pem) {
            (None, None) => Ok(()),
            (Some(cert), Some(key)) => {
                if !contains(cert, b"-----BEGIN CERTIFICATE-----") {
                    return Err(bad("the client certificate file holds no PEM certificate"));
                }
                if !contains(key, b"PRIVATE KEY-----") {
                    return Err(bad("the client key file holds no PEM private key"));
                }
                Ok(())
            }
            _ => Err(bad(
                "a client certificate and its key must be given together",
            )),
        }
    }

    fn client_config(&self) -> ClientTlsConfig {
        let mut config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&self.ca_pem));
        if let (Some(cert), Some(key)) = (&self.cert_pem, &self.key_pem) {
            config = config.identity(Identity::from_pem(cert, &key[..]));
        }
        if let Some(name) = &self.server_name {
            config = config.domain_name(name.clone());
        }
        config
    }
}

impl fmt::Debug for EtcdTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdTls")
            .field("ca", &true)
            .field("client_cert", &self.cert_pem.is_some())
            .field("client_key", &self.key_pem.is_some())
            .field("server_name", &self.server_name)
            .finish()
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The tonic endpoint of one URL of `options`.
pub(super) fn endpoint(url: &str, options: &EtcdOptions) -> Result<Endpoint, StoreError> {
    let bad = |reason: String| StoreError::Config {
        endpoint: without_user_info(url),
        reason,
    };
    if user_info(url).is_some() {
        return Err(bad(
            "user info (user:password@) in an etcd URL is refused: it would be printed in \
             messages and saved in checkpoints; authenticate with a client certificate \
             (--cert and --key)"
                .to_owned(),
        ));
    }
    let https = if url.starts_with("https://") {
        true
    } else if url.starts_with("http://") {
        false
    } else {
        return Err(bad(
            "expected an http:// or https:// URL such as http://127.0.0.1:2379".to_owned(),
        ));
    };
    let mut endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(|e| bad(format!("invalid URL: {e}")))?
        .connect_timeout(options.connect_timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true);
    match (&options.tls, https) {
        (Some(tls), true) => {
            endpoint = endpoint
                .tls_config(tls.client_config())
                .map_err(|e| bad(format!("TLS: {e}")))?;
        }
        (None, true) => {
            return Err(bad(
                "an https:// endpoint needs TLS settings (a CA certificate at least)".to_owned(),
            ))
        }
        (Some(_), false) => {
            return Err(bad(
                "TLS settings were given for an http:// endpoint; use https://".to_owned(),
            ))
        }
        (None, false) => {}
    }
    Ok(endpoint)
}

/// Where the user info (`user:password@`) of a URL is: from the end of the
/// scheme to its last `@`. Any `@` counts: etcd URLs have no path, and a
/// password may hold `/`, `?` or `#` unencoded, which would otherwise hide
/// it from a check that stops at the authority's end.
fn user_info(url: &str) -> Option<std::ops::Range<usize>> {
    let at = url.rfind('@')?;
    let start = url.find("://").map_or(0, |i| i + 3).min(at);
    Some(start..at + 1)
}

/// `url` with its user info cut out, for messages: nothing of a password
/// ever reaches one.
pub(super) fn without_user_info(url: &str) -> String {
    match user_info(url) {
        Some(range) => format!("{}{}", &url[..range.start], &url[range.end..]),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_with_user_info_are_refused_without_repeating_it() {
        for url in [
            "http://admin:hunter2@127.0.0.1:2379",
            "https://admin:hunter2@etcd.example:2379/",
            "http://hunter2@127.0.0.1:2379",
            "hunter2@127.0.0.1:2379",
        ] {
            let options = EtcdOptions::new([url]);
            let e = endpoint(url, &options).expect_err(url).to_string();
            assert!(!e.contains("hunter2"), "{e}");
            assert!(!e.contains("admin"), "{e}");
            assert!(e.contains("user info"), "{e}");
        }
        // A password with `/`, `?` or `#` in it, unencoded, is caught too.
        for url in [
            "http://root:p/ss@10.0.0.1:2379",
            "http://root:1234/5678@10.0.0.1:2379",
            "http://root:a?b#c@10.0.0.1:2379",
            "http://root:x://y@10.0.0.1:2379",
        ] {
            let e = endpoint(url, &EtcdOptions::new([url]))
                .expect_err(url)
                .to_string();
            assert!(e.contains("user info"), "{e}");
            for part in ["root", "p/ss", "5678", "a?b", "x://y"] {
                assert!(!e.contains(part), "{url}: {e}");
            }
        }
        assert_eq!(
            without_user_info("http://a:b@127.0.0.1:2379"),
            "http://127.0.0.1:2379"
        );
        assert_eq!(
            without_user_info("http://127.0.0.1:2379"),
            "http://127.0.0.1:2379"
        );
        assert!(endpoint("http://127.0.0.1:2379", &EtcdOptions::default()).is_ok());
    }
}
