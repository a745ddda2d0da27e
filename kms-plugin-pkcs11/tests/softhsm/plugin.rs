//! kms-plugin-pkcs11 as a process on a token of its own (test-support's
//! `PluginProcess`: its socket and log in a private directory).

use std::process::{Command, ExitStatus};

use k8s_envelope::kms::KmsEndpoint;
use k8s_envelope_test_support::plugin_process::PluginProcess;

use k8s_envelope_test_support::softhsm::{SoftHsm, TOKEN_LABEL};

pub const PLUGIN: &str = env!("CARGO_BIN_EXE_kms-plugin-pkcs11");

/// A running plugin, killed on drop.
pub struct Plugin(PluginProcess);

/// The plugin's command on `hsm` with the key `key_label`, and `extra`.
pub fn command(hsm: &SoftHsm, key_label: &str, extra: &[&str]) -> Command {
    let mut command = hsm.command(PLUGIN);
    command
        .arg("--module")
        .arg(hsm.module())
        .args(["--token-label", TOKEN_LABEL, "--key-label", key_label])
        .args(extra);
    command
}

impl Plugin {
    /// Starts the plugin with the PIN file and waits until it serves.
    pub fn start(hsm: &SoftHsm, key_label: &str, extra: &[&str]) -> Self {
        let mut command = command(hsm, key_label, extra);
        command.arg("--pin-file").arg(hsm.pin_file());
        Self::spawn(command)
    }

    /// Starts `command` (a [`command`] with the PIN given some way) and
    /// waits until it says it serves.
    pub fn spawn(command: Command) -> Self {
        Self(PluginProcess::spawn(command))
    }

    pub fn endpoint(&self) -> KmsEndpoint {
        KmsEndpoint::parse(&self.0.endpoint()).expect("endpoint")
    }

    /// What the plugin wrote to stderr.
    pub fn log(&self) -> String {
        self.0.log()
    }

    /// SIGTERM, then the exit; the socket must be gone.
    pub fn terminate(mut self) -> ExitStatus {
        self.0.terminate()
    }
}
