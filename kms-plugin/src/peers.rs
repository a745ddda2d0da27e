//! Who may connect to a plugin: every connection's peer credentials
//! (`SO_PEERCRED`), checked against the users and groups allowed.
//!
//! An abstract socket has no file and so no permissions: any process in the
//! network namespace can connect, and this check is its only access control.
//! A socket file has mode 0600 besides; the check is defence in depth there.

use std::fmt;
use std::io;

use futures_util::stream::{self, Stream};
use tokio::net::{UnixListener, UnixStream};

/// The users and groups whose processes may call a plugin.
///
/// By default only the plugin's own (effective) user. A process is
/// admitted when its user is one of the users, or its primary group one of
/// the groups (the kernel reports no supplementary groups of a peer).
///
/// ```
/// use k8s_envelope_kms_plugin::AllowedPeers;
///
/// // The plugin's user, and root (a kube-apiserver running as root).
/// let peers = AllowedPeers::default().with_user(0);
/// assert!(peers.admits(0, 1000));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct AllowedPeers {
    users: Vec<u32>,
    groups: Vec<u32>,
}

impl Default for AllowedPeers {
    /// The plugin's own effective user.
    fn default() -> Self {
        Self::nobody().with_user(rustix::process::geteuid().as_raw())
    }
}

impl AllowedPeers {
    /// No one yet; add users and groups with [`with_user`](Self::with_user)
    /// and [`with_group`](Self::with_group).
    pub fn nobody() -> Self {
        Self {
            users: Vec::new(),
            groups: Vec::new(),
        }
    }

    /// These peers and the user `uid`.
    #[must_use]
    pub fn with_user(mut self, uid: u32) -> Self {
        if !self.users.contains(&uid) {
            self.users.push(uid);
        }
        self
    }

    /// These peers and the processes whose primary group is `gid`.
    #[must_use]
    pub fn with_group(mut self, gid: u32) -> Self {
        if !self.groups.contains(&gid) {
            self.groups.push(gid);
        }
        self
    }

    /// Whether a process of user `uid` and primary group `gid` may connect.
    pub fn admits(&self, uid: u32, gid: u32) -> bool {
        self.users.contains(&uid) || self.groups.contains(&gid)
    }

    fn admits_stream(&self, stream: &UnixStream) -> bool {
        // Credentials that cannot be read admit no one.
        stream
            .peer_cred()
            .is_ok_and(|cred| self.admits(cred.uid(), cred.gid()))
    }
}

impl fmt::Debug for AllowedPeers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AllowedPeers")
            .field("users", &self.users)
            .field("groups", &self.groups)
            .finish()
    }
}

/// The connections of `listener` whose peers `allowed` admits; the others
/// are closed as soon as they are accepted, before a byte is read.
pub(super) fn admitted(
    listener: UnixListener,
    allowed: AllowedPeers,
) -> impl Stream<Item = io::Result<UnixStream>> {
    stream::unfold(
        (listener, allowed, 0u64),
        |(listener, allowed, mut refusals)| async move {
            loop {
                match listener.accept().await {
                    Ok((connection, _)) if allowed.admits_stream(&connection) => {
                        return Some((Ok(connection), (listener, allowed, refusals)));
                    }
                    Ok((refused, _)) => {
                        refusals += 1;
                        // Logged on the 1st, 2nd, 4th, 8th... refusal: a peer
                        // connecting in a loop cannot flood the log.
                        if refusals.is_power_of_two() {
                            let who = refused
                                .peer_cred()
                                .map(|c| format!("uid {} gid {}", c.uid(), c.gid()))
                                .unwrap_or_else(|_| "unknown credentials".to_owned());
                            tracing::warn!(
                                peer = %who,
                                refusals,
                                "refused a connection from a peer not allowed"
                            );
                        }
                        drop(refused);
                    }
                    Err(e) => return Some((Err(e), (listener, allowed, refusals))),
                }
            }
        },
    )
}
