//! A fresh SoftHSM2 token in a temporary directory.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::gate::require;

/// The user PIN of every test token.
pub const PIN: &str = "31415926";
const SO_PIN: &str = "27182818";

/// The label of every test token.
pub const TOKEN_LABEL: &str = "k8s-envelope-test";

/// A SoftHSM2 token of its own: its configuration, token directory and PIN
/// file in a temporary directory, removed on drop.
pub struct SoftHsm {
    dir: tempfile::TempDir,
    conf: PathBuf,
    module: PathBuf,
    pin_file: PathBuf,
}

fn runs(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

fn module() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(path) = std::env::var_os("SOFTHSM2_MODULE") {
        candidates.push(path.into());
    }
    candidates.push("/usr/lib/softhsm/libsofthsm2.so".into());
    candidates.push("/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so".into());
    candidates.push("/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so".into());
    candidates.into_iter().find(|p| p.is_file())
}

impl SoftHsm {
    /// A new initialised token (fails when SoftHSM2 or pkcs11-tool is
    /// missing: the tests that use one are `#[ignore = "needs SoftHSM2 ..."]`).
    pub fn new_token() -> Self {
        let tools = runs("softhsm2-util", "--version") && runs("pkcs11-tool", "--help");
        let module = require(
            module().filter(|_| tools),
            "SoftHSM2 (libsofthsm2.so, softhsm2-util) and opensc's pkcs11-tool",
            "apt-get install softhsm2 opensc, or set SOFTHSM2_MODULE",
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let tokens = dir.path().join("tokens");
        fs::create_dir(&tokens).expect("token dir");
        let conf = dir.path().join("softhsm2.conf");
        fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
                tokens.display()
            ),
        )
        .expect("conf");
        let pin_file = dir.path().join("pin");
        fs::write(&pin_file, format!("{PIN}\n")).expect("pin");
        fs::set_permissions(&pin_file, fs::Permissions::from_mode(0o600)).expect("chmod");
        let hsm = Self {
            dir,
            conf,
            module,
            pin_file,
        };
        let out = hsm
            .command("softhsm2-util")
            .args(["--init-token", "--free", "--label", TOKEN_LABEL])
            .args(["--pin", PIN, "--so-pin", SO_PIN])
            .output()
            .expect("softhsm2-util");
        assert!(out.status.success(), "init-token: {out:?}");
        hsm
    }

    /// `program` with `SOFTHSM2_CONF` pointing at this token.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new(program);
        command.env("SOFTHSM2_CONF", &self.conf);
        command
    }

    /// `pkcs11-tool` on this token, logged in.
    pub fn pkcs11_tool(&self, args: &[&str]) -> Output {
        self.command("pkcs11-tool")
            .arg("--module")
            .arg(&self.module)
            .args(["--token-label", TOKEN_LABEL, "--login", "--pin", PIN])
            .args(args)
            .output()
            .expect("pkcs11-tool")
    }

    /// The module.
    pub fn module(&self) -> &Path {
        &self.module
    }

    /// The PIN file (mode 0600).
    pub fn pin_file(&self) -> &Path {
        &self.pin_file
    }

    /// The temporary directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The token's own directory (`tokens/<uuid>`), to take it away.
    pub fn token_dir(&self) -> PathBuf {
        let mut entries: Vec<_> = fs::read_dir(self.dir.path().join("tokens"))
            .expect("tokens")
            .map(|e| e.expect("entry").path())
            .collect();
        assert_eq!(entries.len(), 1, "{entries:?}");
        entries.remove(0)
    }
}
