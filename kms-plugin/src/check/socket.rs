//! `socket_permissions`: who else can connect to the plugin.

use super::CheckResult;
use k8s_envelope::kms::KmsEndpoint;

/// `socket_permissions` (advice): the socket file admits only its owner.
///
/// Connecting to a unix socket needs write permission on it; a socket that
/// its group or others can write lets them ask the plugin to decrypt every
/// DEK in the cluster's storage.
pub(super) fn permissions(endpoint: &KmsEndpoint) -> CheckResult {
    let id = "socket_permissions";
    let Some(path) = endpoint.socket_path() else {
        return CheckResult::advisory(
            id,
            Err("an abstract socket has no permissions: any process in the network namespace can connect, unless the plugin checks its peers' credentials".into()),
        );
    };
    mode_verdict(id, path)
}

#[cfg(unix)]
fn mode_verdict(id: &'static str, path: &std::path::Path) -> CheckResult {
    use std::os::unix::fs::PermissionsExt;

    match std::fs::symlink_metadata(path) {
        Err(e) => CheckResult::advisory(id, Err(format!("cannot read the socket's mode: {e}"))),
        Ok(meta) => {
            let mode = meta.permissions().mode() & 0o7777;
            if mode & 0o022 == 0 {
                CheckResult::advisory(
                    id,
                    Ok(format!("mode {mode:04o}: only its owner can connect")),
                )
            } else {
                CheckResult::advisory(
                    id,
                    Err(format!(
                        "mode {mode:04o}: its group or others can connect and have DEKs decrypted (0600 is usual; check the directory too)"
                    )),
                )
            }
        }
    }
}
