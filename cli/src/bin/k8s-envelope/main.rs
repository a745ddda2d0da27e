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
use densa_alloc::CountingAllocator;
use mimalloc::MiMalloc;

// mimalloc (without transparent huge pages, which cost 5 MB of resident
// memory for nothing here), with per-thread counters of what `bench` reports as
// allocations per op (its ops run on the calling thread, so that thread's
// count is theirs). No unsafe code here: the `GlobalAlloc` impls are the
// crates'.
//
// - mimalloc, not glibc's malloc: export's worker threads free what the
//   listing thread allocated and the other way round, and glibc serialises
//   those frees on its arenas' locks (a sixth of export's worker time went
//   to futex waits); mimalloc frees across threads without a lock. Export
//   of 50,000 Secrets from a snapshot: 0.28 to 0.19 s.
// - Counters per thread (a thread-local cell), not global atomics
//   (`stats_alloc`, before): every allocation of two worker threads fought
//   over one cache line, a third of export's time on 2 cores.
#[global_allocator]
static GLOBAL: CountingAllocator<MiMalloc> = CountingAllocator::new(MiMalloc);

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
