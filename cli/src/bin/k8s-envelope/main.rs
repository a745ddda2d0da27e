//! `k8s-envelope`: validate EncryptionConfigurations, generate keys, and
//! encrypt or decrypt values exactly as kube-apiserver does.
//!
//! Exit status: 0 success; 1 a value could not be transformed; 2 bad usage or
//! an invalid config.

#![forbid(unsafe_code)]

mod bench;
mod cli;
mod configuration;
mod export;
mod export_tree;
mod failure;
mod fingerprint;
mod get;
mod jsonl;
mod kms_check;
mod progress_log;
mod reencrypt;
mod rotate;
mod scan;
mod session;
mod shown;
mod store_args;
mod verify;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            if !failure.message.is_empty() {
                eprintln!("k8s-envelope: {}", failure.message);
            }
            ExitCode::from(failure.status as u8)
        }
    }
}
