//! The manual: wire formats, design choices, and differences from
//! kube-apiserver. This module has no code.
//!
//! # Wire formats
//!
//! A stored value is `PREFIX || BODY`:
//!
//! | provider  | prefix                               | body |
//! |-----------|--------------------------------------|------|
//! | identity  | (none)                               | the plaintext |
//! | aescbc    | `k8s:enc:aescbc:v1:<keyname>:`       | IV(16) ‖ AES-CBC(PKCS#7(plaintext)) |
//! | aesgcm    | `k8s:enc:aesgcm:v1:<keyname>:`       | nonce(12) ‖ ciphertext ‖ tag(16), AAD = storage key |
//! | secretbox | `k8s:enc:secretbox:v1:<keyname>:`    | nonce(24) ‖ tag(16) ‖ ciphertext (XSalsa20-Poly1305) |
//! | kms v1    | `k8s:enc:kms:v1:<providername>:`     | len(2, big-endian) ‖ encrypted DEK ‖ aesgcm body (AES-CBC read for old data) |
//! | kms v2    | `k8s:enc:kms:v2:<providername>:`     | protobuf `EncryptedObject` (see [`crate::kms`]) |
//!
//! # Dependencies
//!
//! - AES-GCM: RustCrypto `aes-gcm` 0.11 (about 1.75x the throughput of 0.10 at
//!   1 KiB on AES-NI machines). AES-CBC: `aes` + `cbc`. Secretbox:
//!   `salsa20` 0.11 (XSalsa20) and `poly1305` 0.9, composed as NaCl's
//!   `crypto_secretbox` defines it. Not `xsalsa20poly1305` 0.9: it pins
//!   `poly1305` 0.8; and its successor `crypto_secretbox` is only published
//!   as a pre-release pinned to release candidates that conflict with
//!   `aes-gcm` 0.11.
//! - `poly1305`'s AVX2 backend is slower than its portable one under current
//!   rustc (its intrinsics are called, not inlined: a 1 KiB MAC takes 1.22
//!   us against 0.41 us), so this repository's `.cargo/config.toml` selects
//!   the portable one with `--cfg poly1305_backend="soft"`. That file applies
//!   to builds inside this repository (the CLI, tests, benches) only: a
//!   program that depends on this crate and uses secretbox gets the same
//!   speed-up by putting that flag in its own `.cargo/config.toml`
//!   (`[build] rustflags`) or `RUSTFLAGS`. Correctness does not depend on it.
//! - YAML: `serde-saphyr` (see [`crate::config`] for why).
//! - Randomness: `chacha20` (its `rng` feature) seeded by `getrandom`, with
//!   `forkguard` for fork detection; see [Randomness](#randomness).
//! - Optionally, AES-GCM and AES-CBC from AWS-LC (`aws-lc-rs`); see
//!   [The `aws-lc` feature](#the-aws-lc-feature).
//!
//! # Randomness
//!
//! Nonces (aesgcm, secretbox, KMS), IVs (aescbc), DEKs and seeds (KMS) and
//! generated keys come from a ChaCha20 generator per thread, seeded with 32
//! bytes from the operating system (`getrandom`):
//!
//! - Why not the OS for every value: a `getrandom` system call costs about
//!   250 ns on the 2-core CI machine, more than a whole AES-256-GCM seal of 1
//!   KiB with AWS-LC; a draw from the thread's buffered keystream costs a few
//!   nanoseconds and needs no lock, so threads do not contend.
//! - Why ChaCha20: the keystream of a 256-bit key is a CSPRNG as strong as
//!   the cipher (the Linux kernel's generator is built the same way), and the
//!   RustCrypto `chacha20` crate generates four blocks at once with AVX2. Its
//!   state is zeroized when the thread exits.
//! - Reseeding: from the OS after every 64 KiB of output (a snapshot of one
//!   state reveals at most that much), and in a child process after `fork`,
//!   before its first value: a `pthread_atfork` child handler (from the
//!   `forkguard` crate, so that this crate keeps `#![forbid(unsafe_code)]`)
//!   bumps a counter that every draw compares with the one its state was
//!   seeded under. The check is one load of a value nobody writes, where
//!   comparing process IDs would cost a `getpid` system call (about 120 ns
//!   here) per value; should the handler fail to register, process IDs are
//!   compared anyway. A child that forked through a raw `clone` system call
//!   (bypassing libc) is not detected; `std::process::Command`, libc's
//!   `fork` and `posix_spawn` are all fine. `tests/random_fork.rs` checks
//!   that a forked child and its parent draw different nonces.
//! - Requests over 256 bytes (generated keys) go to the OS directly.
//!
//! `rand`'s `ThreadRng` was the other candidate: also ChaCha, reseeded every
//! 64 KiB, but by its own documentation not reseeded after `fork`.
//!
//! # The `aws-lc` feature
//!
//! Off by default: the default build is pure Rust (RustCrypto). With
//! `--features aws-lc`, AES-GCM (aesgcm, KMS v1 and v2 data, the local-KEK
//! plugin) and AES-CBC (aescbc, old KMS v1 data) run on AWS-LC through
//! `aws-lc-rs`, behind the same internal interface (`src/primitive/`); the
//! bytes on the wire are the same and every vector passes with either
//! backend. [`AES_BACKEND`](crate::AES_BACKEND) says which one a build uses.
//! Secretbox, HKDF, SHA-256 and the random generator stay as they are.
//!
//! What it changes: AWS-LC's AES-GCM is hand-written assembly that fuses
//! AES-CTR with GHASH (VAES and VPCLMULQDQ on AVX-512 machines); on the CI
//! machine a raw AES-256-GCM seal of 1 KiB takes 154 ns against
//! RustCrypto's 453, and at 64 KiB it runs at 22 GB/s against 3.5 (one
//! criterion run); through the aesgcm provider a 1 KiB write or read takes
//! about 40% of the default build's time. Seal and open are out of place, so the
//! plaintext is not copied before encryption. Key schedules are held by
//! AWS-LC, which cleanses them when they are freed.
//!
//! Build requirements: a C compiler (`cc`; Debian's `gcc` or `clang`) for
//! `aws-lc-sys`, which builds AWS-LC from its bundled sources with the `cc`
//! crate and ships pre-generated bindings and assembly for the common
//! targets (x86_64 and aarch64 Linux and macOS), so neither CMake, Go,
//! Perl, NASM nor libclang is needed there. The first build takes about a
//! minute on two cores. `.ci/perf` runs the test suite with the feature.
//!
//! ## FIPS 140-3
//!
//! `aws-lc-rs` also has a FIPS mode (its `fips` feature, building
//! `aws-lc-fips-sys`, AWS-LC's FIPS 140-3 validated module). This crate does
//! not offer it; enabling it would take:
//!
//! - build requirements of the validated module: CMake, Go and Perl (and a
//!   C compiler), on one of the operating environments its certificate
//!   lists, with the module built exactly as its security policy says;
//! - moving every approved function into the module: SHA-256 and HKDF (KMS
//!   v2 seeds), the random generator (AWS-LC's DRBG instead of ChaCha20),
//!   and AES-GCM nonce generation: in FIPS mode an AES-GCM key may only
//!   seal with a nonce the module generates (`RandomizedNonceKey`), which
//!   fits aesgcm, KMS v1 and KMS v2 seed mode (random nonces) but not KMS
//!   v2 `AES_GCM_KEY` writes (4 random bytes and a counter, which this crate
//!   must reproduce), and not the out-of-place seal used here;
//! - giving up what is not approved: secretbox (XSalsa20-Poly1305) would be
//!   read-only at best, and aescbc (no integrity) should be read-only too;
//! - and for a claim of FIPS compliance, a review of the whole service, not
//!   only of the cryptographic module.
//!
//! # Deliberate differences from kube-apiserver
//!
//! - An aescbc body that is only an IV is an error; the apiserver panics.
//! - The aescbc padding check accepts exactly what the apiserver accepts, but
//!   runs in constant time and reports every failure as the same
//!   [`Error::Decrypt`](crate::Error::Decrypt) (the apiserver distinguishes
//!   "invalid PKCS7 data" from "invalid padding on input", a padding oracle).
//! - Reading a `k8s:enc:` value of a resource that no rule covers gives
//!   [`Error::NoMatchingPrefix`](crate::Error::NoMatchingPrefix); the apiserver
//!   says "identity transformer tried to read encrypted data". Both refuse.
//! - KMS plugin client ([`GrpcClient`](crate::kms::GrpcClient)): with no
//!   plugin listening, calls fail at once as unavailable instead of waiting
//!   for the plugin until the timeout; a call that lost its connection is
//!   retried once on a new one, within the same timeout; answers over 4 MiB
//!   are refused.
//! - KMS endpoints ([`KmsEndpoint`](crate::kms::KmsEndpoint)): a host
//!   (`unix://host/path`), a relative or empty path, a query or a fragment
//!   are rejected when parsed; the apiserver accepts them and fails to dial.
//! - A [`Transformer`](crate::Transformer) refuses to read stored values
//!   above [`MAX_STORED_VALUE_LEN`](crate::MAX_STORED_VALUE_LEN) (16 MiB) and
//!   to write plaintexts above [`MAX_PLAINTEXT_LEN`](crate::MAX_PLAINTEXT_LEN);
//!   the apiserver has no limit of its own, only etcd's (1.5 MiB by default).
//! - Opt-in only: KMS v2 in seed mode can seal several values with one
//!   derived key
//!   ([`KmsV2Options::writes_per_derived_key`](crate::kms::KmsV2Options::writes_per_derived_key),
//!   default 1: a fresh derived key per value, as the apiserver does). The
//!   values are the same format and the apiserver reads them; the option's
//!   documentation gives the security cost.
//!
//! # Rotation and re-encryption
//!
//! - The rotation steps ([`crate::rotation`]) follow Kubernetes' documented
//!   procedure for several apiservers: add as a reader, roll out, promote,
//!   roll out, re-encrypt, retire. They cannot see whether a configuration
//!   has reached every server; that stays the operator's job, and `plan`
//!   says so between the steps.
//! - etcd client: the crate speaks etcd's v3 gRPC API itself, with code
//!   generated (by the same `codegen` binary and `protox` as the KMS code,
//!   committed) from `proto/etcd/kv.proto`, a wire-compatible subset of
//!   etcd's `rpc.proto` (package, method names and field numbers; only
//!   Range, Put and Txn). The maintained `etcd-client` crate was the other
//!   choice; it runs `protoc` in its build script, which would have put the
//!   etcd store behind a feature and its tests outside `cargo test`. This
//!   way the default build needs no `protoc`, shares tonic, prost and
//!   rustls with the KMS client, and every test runs with `cargo test`. The
//!   cost is a small client to keep: no watch, lease, auth or maintenance
//!   APIs, and no username/password authentication (kube-apiserver uses
//!   client certificates, which are supported).
//! - A re-encryption writes with an etcd transaction that compares the key's
//!   `mod_revision` with the one read, and puts with `ignore_lease` (events
//!   keep their TTL); a value changed in between is read again. This is
//!   what kube-apiserver's own updates do, so the two never overwrite each
//!   other; `kubectl get secrets -A -o json | kubectl replace -f -` is the
//!   alternative through the apiserver.
//! - The resource (and so the rule) of a key is told from kube-apiserver's
//!   etcd layout ([`KeyLayout`](crate::rotation::KeyLayout)): a table of the
//!   built-in resources (from Kubernetes' own storage-path test data), and
//!   `/registry/<group>/<resource>/` for custom and aggregated resources.
//!   Keys it cannot place are reported, never guessed at; resources stored
//!   in another etcd through `--etcd-servers-overrides` need a run against
//!   that etcd.
//!
//! # Threat model
//!
//! The library protects values at rest in etcd against someone who can read
//! (aesgcm, secretbox, KMS: and modify) the store but not the configuration or
//! the KMS. aescbc gives confidentiality only. Values are bound to their
//! storage key by every AES-GCM based provider, so a value cannot be moved to
//! another object unnoticed; aescbc and secretbox do not bind it.
//!
//! Whatever the store, a configuration file or a plugin hands over is
//! hostile input: it may fail, never panic, and cost memory in proportion to
//! its size, never to a length written inside it (see "Untrusted input" in
//! the [crate documentation](crate)). The fuzz targets in `fuzz/` check this
//! on every CI run.
