//! Regenerates the protobuf messages and gRPC code that the workspace
//! commits, so that users need neither `protoc` nor a build script: the
//! clients of the library (`src/kms/generated/`, `src/store/etcd/generated/`)
//! and the servers of the plugin kit (`kms-plugin/src/generated/`).
//!
//! ```text
//! cargo codegen           # rewrite the generated files
//! cargo codegen --check # fail if the committed files are stale
//! ```
//!
//! The `.proto` files in `proto/` are compiled with `protox` (a protobuf
//! compiler written in Rust) and turned into Rust by `prost-build` and
//! `tonic-prost-build`. `cargo test --manifest-path codegen/Cargo.toml` runs the check too.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// One `.proto` file and the Rust file it becomes.
struct Unit {
    /// The `.proto` file, relative to `proto/`.
    proto: &'static str,
    /// Its protobuf package: prost-build names its output `<package>.rs`.
    package: &'static str,
    /// The directory of the generated file, relative to the repository root.
    dir: &'static str,
    /// The file written into `dir`.
    output: &'static str,
    /// Which end of the gRPC service to generate: the library is a client
    /// of the KMS plugins and of etcd, the plugin kit a KMS server.
    side: Side,
    /// Messages that carry plaintext DEKs or seeds: no derived `Debug` (the
    /// hand-written one in `generated/mod.rs` prints lengths only), and
    /// zeroized on drop.
    secret_messages: &'static [&'static str],
}

/// The end of a gRPC service a package speaks.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Client,
    Server,
}

/// Every generated file. The KMS v2 API and the EncryptedObject envelope
/// share the protobuf package `v2`, so they are compiled separately (prost
/// would otherwise merge them into one `v2.rs`) and land in two Rust modules.
const UNITS: &[Unit] = &[
    Unit {
        proto: "kmsv2/api.proto",
        package: "v2",
        dir: KMS_CLIENT_DIR,
        side: Side::Client,
        output: "v2.rs",
        secret_messages: KMS_V2_SECRETS,
    },
    Unit {
        proto: "kmsv1beta1/api.proto",
        package: "v1beta1",
        dir: KMS_CLIENT_DIR,
        side: Side::Client,
        output: "v1beta1.rs",
        secret_messages: KMS_V1_SECRETS,
    },
    Unit {
        proto: "encryptedobject/api.proto",
        package: "v2",
        dir: KMS_CLIENT_DIR,
        side: Side::Client,
        output: "encrypted_object.rs",
        secret_messages: &[],
    },
    Unit {
        proto: "etcd/kv.proto",
        package: "etcdserverpb",
        dir: "src/store/etcd/generated",
        side: Side::Client,
        output: "etcdserverpb.rs",
        secret_messages: &[],
    },
    Unit {
        proto: "kmsv2/api.proto",
        package: "v2",
        dir: KMS_SERVER_DIR,
        side: Side::Server,
        output: "v2.rs",
        secret_messages: KMS_V2_SECRETS,
    },
    Unit {
        proto: "kmsv1beta1/api.proto",
        package: "v1beta1",
        dir: KMS_SERVER_DIR,
        side: Side::Server,
        output: "v1beta1.rs",
        secret_messages: KMS_V1_SECRETS,
    },
];

/// The KMS v2 messages that carry a plaintext DEK or seed.
const KMS_V2_SECRETS: &[&str] = &[".v2.EncryptRequest", ".v2.DecryptResponse"];

/// The KMS v1 messages that carry a plaintext DEK.
const KMS_V1_SECRETS: &[&str] = &[".v1beta1.EncryptRequest", ".v1beta1.DecryptResponse"];

/// Where the library's KMS client files live, relative to the repository root.
const KMS_CLIENT_DIR: &str = "src/kms/generated";

/// Where the plugin kit's KMS server files live.
const KMS_SERVER_DIR: &str = "kms-plugin/src/generated";

fn main() -> ExitCode {
    let mut check = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--check" => check = true,
            "-h" | "--help" => {
                println!("usage: cargo codegen [--check]");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("codegen: unknown argument {other:?} (usage: codegen [--check])");
                return ExitCode::from(2);
            }
        }
    }
    let root = repository_root();
    let result = if check {
        check_committed(&root)
    } else {
        write_generated(&root)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("codegen: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The `k8s-envelope` repository: the parent of this crate's directory.
fn repository_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// What can go wrong.
#[derive(Debug)]
enum CodegenError {
    /// protox could not compile a `.proto` file.
    Compile(String, String),
    /// Reading or writing a file failed.
    Io(String, io::Error),
    /// `--check` found committed files that differ from fresh output.
    Stale(Vec<String>),
}

impl fmt::Display for CodegenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodegenError::Compile(proto, e) => write!(f, "compiling {proto}: {e}"),
            CodegenError::Io(what, e) => write!(f, "{what}: {e}"),
            CodegenError::Stale(files) => write!(
                f,
                "generated code is out of date: {}; run `cargo codegen` and commit the result",
                files.join(", ")
            ),
        }
    }
}

/// Generates every unit and returns `(directory, file name, contents)`.
fn generate(root: &Path) -> Result<Vec<(&'static str, &'static str, String)>, CodegenError> {
    let proto_dir = root.join("proto");
    let mut out = Vec::new();
    for unit in UNITS {
        let fds = protox::compile([unit.proto], [&proto_dir])
            .map_err(|e| CodegenError::Compile(unit.proto.to_string(), e.to_string()))?;
        let tmp = tempfile::tempdir()
            .map_err(|e| CodegenError::Io("creating a temporary directory".into(), e))?;
        let mut builder = tonic_prost_build::configure()
            .build_client(unit.side == Side::Client)
            .build_server(unit.side == Side::Server)
            // No `connect(addr)` constructor: the crate dials unix sockets
            // itself (src/kms/grpc.rs).
            .build_transport(false)
            .btree_map(".")
            .out_dir(tmp.path());
        if !unit.secret_messages.is_empty() {
            builder = builder.skip_debug(unit.secret_messages.iter().copied());
        }
        for message in unit.secret_messages {
            builder = builder.message_attribute(
                message,
                "#[derive(::zeroize::Zeroize, ::zeroize::ZeroizeOnDrop)]",
            );
        }
        builder
            .compile_fds_with_config(fds, prost_build::Config::new())
            .map_err(|e| CodegenError::Compile(unit.proto.to_string(), e.to_string()))?;
        let produced = tmp.path().join(format!("{}.rs", unit.package));
        let body = fs::read_to_string(&produced)
            .map_err(|e| CodegenError::Io(format!("reading {}", produced.display()), e))?;
        let header = format!(
            "// @generated from proto/{} by `cargo codegen`; do not edit.\n",
            unit.proto
        );
        out.push((unit.dir, unit.output, header + &body));
    }
    Ok(out)
}

/// Regenerates and overwrites the committed files.
fn write_generated(root: &Path) -> Result<(), CodegenError> {
    for (dir, name, contents) in generate(root)? {
        let dir = root.join(dir);
        fs::create_dir_all(&dir)
            .map_err(|e| CodegenError::Io(format!("creating {}", dir.display()), e))?;
        let path = dir.join(name);
        fs::write(&path, contents)
            .map_err(|e| CodegenError::Io(format!("writing {}", path.display()), e))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// Regenerates in memory and compares with the committed files.
fn check_committed(root: &Path) -> Result<(), CodegenError> {
    let mut stale = Vec::new();
    for (dir, name, contents) in generate(root)? {
        let path = root.join(dir).join(name);
        match fs::read_to_string(&path) {
            Ok(committed) if committed == contents => {}
            Ok(_) => stale.push(format!("{dir}/{name} differs")),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                stale.push(format!("{dir}/{name} is missing"))
            }
            Err(e) => return Err(CodegenError::Io(format!("reading {}", path.display()), e)),
        }
    }
    if stale.is_empty() {
        println!("generated code is up to date");
        Ok(())
    } else {
        Err(CodegenError::Stale(stale))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed generated code matches what the `.proto` files produce.
    #[test]
    fn committed_code_is_up_to_date() {
        if let Err(e) = check_committed(&repository_root()) {
            panic!("{e}");
        }
    }
}
